# SPDX-License-Identifier: GPL-2.0
# Description: reads Prometheus text exposition on stdin with python3-prometheus-client's own
# parser and prints every sample as one JSON array, so a test can query it with jq:
#   [{"family": F, "type": T, "name": N, "labels": {...}, "value": V}, ...]
# (the parser names a counter's family without "_total"; its samples keep it).  Exit 1 with the
# reason on stderr when the text does not parse, or when a family comes in two pieces or has
# two HELP or TYPE lines (the parser takes those; Prometheus refuses the scrape).
import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    text = sys.stdin.read()
    out, seen = [], set()
    try:
        for kind in ("# HELP ", "# TYPE "):
            names = [line.split()[2] for line in text.splitlines() if line.startswith(kind)]
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"{kind.strip()} twice for {', '.join(twice)}")
        for fam in text_string_to_metric_families(text):
            if fam.name in seen:
                raise ValueError(f"family {fam.name} comes in two pieces")
            seen.add(fam.name)
            for s in fam.samples:
                # JSON has no infinities; no sample here should be one anyway.
                v = s.value if math.isfinite(s.value) else str(s.value)
                out.append({"family": fam.name, "type": fam.type, "name": s.name,
                            "labels": s.labels, "value": v})
    except Exception as e:  # the parser raises ValueError and friends on bad input
        print(f"prom_json: not the Prometheus text format: {e!r}", file=sys.stderr)
        return 1
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
