# SPDX-License-Identifier: GPL-2.0
# Description: checks a Grafana dashboard against docs/metrics.md and real metrics, so it cannot
# rot: every metric name in every panel's PromQL (and in the template variables' queries) must be
# a family docs/metrics.md documents and a sample name the daemons really write; every label a
# matcher, a "by (...)" or a legend uses must be on those samples, and every literal label value
# a matcher wants must occur.  Usage:
#   dashboard_check.py DASHBOARD.json docs/metrics.md SAMPLES.json...
# where each SAMPLES.json is tests/tools/prom_json.py's output for one `xdpmirror metrics`.
# Prints one line per metric name checked; exit 1 with one line per problem.
import json
import re
import sys

# PromQL words that are neither metrics nor functions (functions are the words before a "(").
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
            "unless", "offset", "inf", "nan"}
# Clauses whose parentheses hold label names, not expressions.
LABEL_LISTS = r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)"
HIST_SUFFIXES = ("_bucket", "_sum", "_count")


def documented(path):
    """{family: type} from the tables of docs/metrics.md: | `name` | type | ..."""
    fams = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"\|\s*`(xdpmirror_[a-z0-9_]+)`\s*\|\s*([a-z]+)\s*\|", line)
            if m:
                fams[m.group(1)] = m.group(2)
    return fams


def samples(paths):
    """{sample name: {label: {values}}} over every file."""
    out = {}
    for p in paths:
        with open(p, encoding="utf-8") as f:
            for s in json.load(f):
                labels = out.setdefault(s["name"], {})
                for k, v in s["labels"].items():
                    labels.setdefault(k, set()).add(v)
    return out


def queries(dash):
    """(where, expr, legend) for every panel target and every query variable."""
    def walk(panels):
        for p in panels:
            yield p
            yield from walk(p.get("panels", []))

    for p in walk(dash.get("panels", [])):
        if p.get("type") == "row":
            continue
        where = f"panel {p.get('id')} '{p.get('title')}'"
        if not p.get("targets"):
            yield where, None, ""
        for t in p.get("targets", []):
            yield f"{where} {t.get('refId')}", t.get("expr"), t.get("legendFormat", "")
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            # label_values(METRIC, LABEL): the metric is a selector, the label one of its labels.
            m = re.fullmatch(r"\s*label_values\((.*),\s*([a-zA-Z_]\w*)\s*\)\s*", q or "")
            if m:
                yield f"variable '{v['name']}'", m.group(1), "{{" + m.group(2) + "}}"
            else:
                yield f"variable '{v['name']}'", q, ""


def metric_names(expr):
    """Every metric name in a PromQL expression: what is left of the identifiers once strings,
    label matchers, ranges, label lists, functions and keywords are taken out."""
    e = re.sub(r'"(\\.|[^"\\])*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(LABEL_LISTS, " ", e)
    names = []
    for m in re.finditer(r"(?<![\w$.])([a-zA-Z_:][\w:]*)(\s*\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in KEYWORDS:
            continue
        names.append(word)
    return names


def selectors(expr):
    """(metric, [(label, op, value)]) for every selector with matchers."""
    for m in re.finditer(r"([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}", expr):
        ms = re.findall(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:\\.|[^"\\])*)"', m.group(2))
        yield m.group(1), ms


def main():
    if len(sys.argv) < 4:
        print(__doc__ or "usage: dashboard_check.py DASHBOARD docs/metrics.md SAMPLES.json...",
              file=sys.stderr)
        return 2
    try:
        with open(sys.argv[1], encoding="utf-8") as f:
            dash = json.load(f)
    except ValueError as e:
        print(f"{sys.argv[1]}: not JSON: {e}", file=sys.stderr)
        return 1
    docs = documented(sys.argv[2])
    real = samples(sys.argv[3:])
    problems, checked = [], set()
    if not docs or not real:
        problems.append("nothing to check against (no documented families or no samples)")

    for where, expr, legend in queries(dash):
        if not expr:
            problems.append(f"{where}: no PromQL expression")
            continue
        if "__name__" in expr:
            problems.append(f"{where}: names a metric through __name__, which this check cannot see")
        names = metric_names(expr)
        if not names:
            problems.append(f"{where}: no metric name found in '{expr}'")
        for n in names:
            checked.add(n)
            fam = n
            for suf in HIST_SUFFIXES:
                if n.endswith(suf) and docs.get(n[: -len(suf)]) == "histogram":
                    fam = n[: -len(suf)]
            if fam not in docs:
                problems.append(f"{where}: {n}: not a family in docs/metrics.md")
            if n not in real:
                problems.append(f"{where}: {n}: no such sample in the real metrics output")
        known = {}  # labels of the metrics this query uses, for its by (...) and its legend
        for n in names:
            for k, vs in real.get(n, {}).items():
                known.setdefault(k, set()).update(vs)
        for metric, matchers in selectors(expr):
            have = real.get(metric, {})
            for label, op, value in matchers:
                if label not in have:
                    problems.append(f"{where}: {metric} has no label '{label}'")
                    continue
                if "$" in value or op in ("!=", "!~"):
                    continue
                if op == "=~" and not re.fullmatch(r"[\w-]+(\|[\w-]+)*", value):
                    continue
                for want in value.split("|") if op == "=~" else [value]:
                    if want not in have[label]:
                        problems.append(f"{where}: {metric}{{{label}=\"{want}\"}}: no such "
                                        f"sample (values: {', '.join(sorted(have[label]))})")
        used = [w.strip() for m in re.finditer(LABEL_LISTS, expr) for w in m.group(2).split(",")]
        used += re.findall(r"\{\{\s*(\w+)\s*\}\}", legend)
        for label in used:
            if label and label not in known:
                problems.append(f"{where}: label '{label}' is on none of {', '.join(names)}")

    for n in sorted(checked):
        print(n)
    for p in problems:
        print(f"dashboard_check: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
