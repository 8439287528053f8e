#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The bench's report: reads OUT/numbers.txt (key=value, written by scripts/bench.sh), prints
the table with ratios and targets, writes OUT/results.csv and OUT/bench.png (gnuplot).
Run it again on an old results folder to redraw: scripts/bench-report.py bench-results"""
import csv
import os
import subprocess
import sys

out = sys.argv[1] if len(sys.argv) > 1 else "bench-results"
R = {}
with open(os.path.join(out, "numbers.txt")) as f:
    for line in f:
        k, _, v = line.rstrip("\n").partition("=")
        R[k] = v


def num(key):
    try:
        return float(R[key])
    except (KeyError, ValueError):
        return None


# The write+flush cycle rows' link column is the link's round trip at the same percentile: with
# the disk's cycle it makes the floor a synchronous mirror cannot go below.
LINK_ALIAS = {"link.p50": "link.rtt_us", "link.p99": "link.rtt_p99_us",
              "link.p999": "link.rtt_p999_us"}


def val(sysname, key):
    k = sysname + "." + key
    return num(LINK_ALIAS.get(k, k))


def ratio(a, b):
    return a / b if a is not None and b else None


def floor(key):
    """disk + link round trip at one percentile of the cycle (key p50, p99, p999)."""
    d, l = val("disk", key), val("link", key)
    return d + l if d is not None and l is not None else None


SYSTEMS = ("link", "disk", "peer", "peerds", "xdpmirror")
# One row per metric: label, unit, key suffix, better ("hi"/"lo").
seq_limit = min(x for x in (num("link.seq"), num("disk.seq")) if x is not None)
ROWS = [
    ("seq 1M QD16 write", "MiB/s", "seq", "hi"),
    ("4K QD1 write+flush", "IOPS", "qd1", "hi"),
    ("  cycle p50", "us", "p50", "lo"),
    ("  cycle p99", "us", "p99", "lo"),
    ("  cycle p99.9", "us", "p999", "lo"),
    ("4K QD32 random write", "IOPS", "qd32", "hi"),
    ("CPU per GiB, daemons", "s", "cpu", "lo"),
    ("CPU per GiB, machine", "s", "syscpu", "lo"),
    ("peak RSS, daemons", "MiB", "rss", "lo"),
    ("initial full sync", "MiB/s", "fullsync", "hi"),
    ("resync after disconnect", "MiB/s", "resync", "hi"),
]


def all_le(values, bound):
    return all(v is not None for v in values) and all(v <= bound for v in values)


xm = lambda key: num("xdpmirror." + key)
# Issue 18's latency targets, each a ratio of this run's numbers: (name, text, value, bound).
LATENCY_TARGETS = [
    ("p50_peer", "cycle p50, xdpmirror / peer", ratio(xm("p50"), num("peer.p50")), 0.5),
    ("p50_peerds", "cycle p50, xdpmirror / peer ds", ratio(xm("p50"), num("peerds.p50")), 0.5),
    ("p50_floor", "cycle p50, xdpmirror / (disk + link RTT)", ratio(xm("p50"), floor("p50")),
     1.3),
    ("p99_peer", "cycle p99, xdpmirror / peer", ratio(xm("p99"), num("peer.p99")), 0.7),
    ("p99_peerds", "cycle p99, xdpmirror / peer ds", ratio(xm("p99"), num("peerds.p99")), 0.7),
]
TARGETS = {
    "seq": ("xm/peer >= 3.0, xm/min(link,disk) >= 0.85",
            lambda: xm("seq") is not None and num("peer.seq") and xm("seq") / num("peer.seq") >= 3
            and xm("seq") / seq_limit >= 0.85),
    "p50": ("xm/peer, xm/pds <= 0.5, xm/limit <= 1.3",
            lambda: all_le([t[2] for t in LATENCY_TARGETS[:2]], 0.5)
            and all_le([LATENCY_TARGETS[2][2]], 1.3)),
    "p99": ("xm/peer, xm/pds <= 0.7", lambda: all_le([t[2] for t in LATENCY_TARGETS[3:]], 0.7)),
    "cpu": ("xm/peer <= 0.33",
            lambda: xm("cpu") is not None and num("peer.cpu") and
            xm("cpu") / num("peer.cpu") <= 0.33),
    "resync": ("xm/link >= 0.85",
               lambda: xm("resync") is not None and num("link.resync") and
               xm("resync") / num("link.resync") >= 0.85),
}


def fmt(v):
    if v is None:
        return "-"
    if v >= 100 or v == int(v):
        return "%d" % round(v)
    return "%.2f" % v


def fratio(v):
    return "-" if v is None else "%.2fx" % v


def rtt_line(name, what):
    return "  %-44s p50 %7s   p99 %7s   p99.9 %7s   lost %s" % ((what,) + tuple(
        R.get("link.%s%s" % (name, s), "-") for s in ("_us", "_p99_us", "_p999_us", "_lost")))


lines = []
lines.append("xdpmirror bench: Linux %s, %s CPUs, fio %s, MTU %s, disks %s, %s s per workload"
             % (R.get("kernel"), R.get("cpus"), R.get("fio"), R.get("mtu"), R.get("disk_size"),
                R.get("secs")))
lines.append("boxes pinned: " + ("primary box on CPU 0, secondary box on CPU 1 (BENCH_PIN=1)"
                                 if R.get("pin") == "1" else "no (BENCH_PIN=0)"))
lines.append("link: %s frames/s of %s bytes (AF_XDP %s mode) = %s MiB/s of mirror payload "
             "(%s bytes per frame)" % (R.get("link.fps"), R.get("link.frame"), R.get("link.mode"),
                                      R.get("link.seq"), R.get("xdpmirror.payload")))
lines.append("link round trip at QD1, us (AF_XDP ping-pong, %s round trips each, a bare header "
             "back):" % R.get("link.rtt_count"))
lines.append(rtt_line("rtt", "62 B, both asleep in poll() (link.rtt_us)"))
lines.append(rtt_line("rtt_spin", "62 B, both spinning on the ring"))
lines.append(rtt_line("rtt_data", "DATA with %s B payload, asleep" %
                      R.get("link.rtt_data_payload", "?")))
lines.append("peer: qemu-nbd cache=%s on the secondary (its flush never reaches that image); "
             "peer ds: cache=%s (every write durable there, as protocol C)" % (
                 R.get("peer.cache", "?"), R.get("peerds.cache", "?")))
lines.append("")
hdr = "%-24s %-5s %7s %7s %7s %7s %9s %7s %7s %8s  %s" % (
    "", "unit", "link", "disk", "peer", "peer ds", "xdpmirror", "xm/peer", "xm/pds", "xm/limit",
    "target")
lines.append(hdr)
lines.append("-" * len(hdr))
csv_rows = [["metric", "unit", "link", "disk", "peer", "peer_ds", "xdpmirror", "xm_per_peer",
             "xm_per_peer_ds", "xm_per_limit", "target", "target_met"]]
for label, unit, key, better in ROWS:
    v = {s: val(s, key) for s in SYSTEMS}
    limit = None
    if key == "seq":
        limit = seq_limit
    elif key in ("qd1", "qd32"):
        limit = v["disk"]
    elif key in ("p50", "p99", "p999"):
        limit = floor(key)
    elif key == "resync":
        limit = v["link"]
    target, met = "", ""
    if key in TARGETS:
        target = TARGETS[key][0]
        met = "met" if TARGETS[key][1]() else "NOT met"
    rs = [ratio(v["xdpmirror"], v["peer"]), ratio(v["xdpmirror"], v["peerds"]),
          ratio(v["xdpmirror"], limit)]
    lines.append(("%-24s %-5s %7s %7s %7s %7s %9s %7s %7s %8s  %s" % (
        (label, unit) + tuple(fmt(v[s]) for s in SYSTEMS) + tuple(fratio(r) for r in rs) +
        ((target + ": " + met) if target else "",))).rstrip())
    csv_rows.append([label, unit] + ["" if v[s] is None else v[s] for s in SYSTEMS] +
                    ["" if r is None else round(r, 3) for r in rs] + [target, met])
lines.append("")
lines.append("issue 18 latency targets, QD1 write+flush cycle, this run (%s cycles each):" %
             "/".join(R.get(s + ".cycles", "?") for s in ("disk", "peer", "peerds", "xdpmirror")))
fl = floor("p50")
for name, text, r, bound in LATENCY_TARGETS:
    if name == "p50_floor":
        parts = "%s / (%s + %s us)" % (fmt(xm("p50")), fmt(val("disk", "p50")),
                                       R.get("link.rtt_us", "-"))
    else:
        other = "peerds" if name.endswith("peerds") else "peer"
        parts = "%s / %s us" % (fmt(xm(name[:3])), fmt(num(other + "." + name[:3])))
    R["target." + name] = "" if r is None else "%.3f" % r
    lines.append("  %-42s %-22s = %-6s <= %.1f: %s" % (
        text, parts, "-" if r is None else "%.2f" % r, bound,
        "-" if r is None else ("met" if r <= bound else "NOT met")))
if fl is not None:
    R["floor.p50_us"] = "%.1f" % fl
# Context, not a target: this machine's two images share one virtual disk, so the mirror's two
# write+fdatasync contend there; disk2 is the primary image's cycle while the secondary's runs too.
fl2 = [val("disk2", k) for k in ("p50", "p99")]
if None not in fl2 and val("link", "p50") is not None:
    lines.append("  context: both images at once (they share one virtual disk here): cycle p50 %s, "
                 "p99 %s us; xdpmirror / (that + link RTT) = %.2f at p50" % (
                     fmt(fl2[0]), fmt(fl2[1]), xm("p50") / (fl2[0] + val("link", "p50"))))
    R["floor2.p50_us"] = "%.1f" % (fl2[0] + val("link", "p50"))
lines.append("")
lines.append("secondary == primary afterwards: peer %s, peer ds %s, xdpmirror %s" % (
    R.get("peer.equal", "?"), R.get("peerds.equal", "?"), R.get("xdpmirror.equal", "?")))
lines.append("resync after disconnect moved: peer %s bytes (a new full mirror), xdpmirror %s bytes "
             "(the regions written while the secondary was away: %s)" % (
                 R.get("peer.resync_bytes"), R.get("xdpmirror.resync_bytes"), R.get("dirty")))
if num("noauth.seq") is not None:
    lines.append("authentication (AES-256-GMAC on every frame) against --no-auth, same pair: seq "
                 "%s against %s MiB/s (%s), daemons' CPU %s against %s s per GiB (%s)" % (
                     fmt(num("xdpmirror.seq")), fmt(num("noauth.seq")),
                     fratio(ratio(num("xdpmirror.seq"), num("noauth.seq"))),
                     fmt(num("xdpmirror.cpu")), fmt(num("noauth.cpu")),
                     fratio(ratio(num("xdpmirror.cpu"), num("noauth.cpu")))))
lines.append("xm/limit: against min(link, disk) for seq, the disk for IOPS, disk + link round trip "
             "at the same percentile for the cycle rows (the link column; percentiles do not add, "
             "so beyond p50 it is a rough floor), the link for resync.  xm/pds: against peer ds.  "
             "Latency and CPU: lower is better.")
print("\n".join(lines))
with open(os.path.join(out, "results.csv"), "w", newline="") as f:
    csv.writer(f).writerows(csv_rows)
# The targets' ratios go back into numbers.txt (target.*, floor.*), for scripts that compare
# runs; written again on every report, so a redraw leaves the same file.
with open(os.path.join(out, "numbers.txt"), "w") as f:
    for k in sorted(R):
        f.write("%s=%s\n" % (k, R[k]))

# The plot: six panels, one bar per system that has the number.
panels = [("seq", "sequential 1M QD16 write, MiB/s"),
          ("p50", "4K write+flush p50, us (lower is better)"),
          ("qd32", "4K QD32 random write, IOPS"), ("cpu", "CPU s per GiB, daemons"),
          ("fullsync", "initial full sync, MiB/s"), ("resync", "resync after disconnect, MiB/s")]
dat = os.path.join(out, "plot.dat")
with open(dat, "w") as f:
    for key, title in panels:
        f.write('# %s\n' % title)
        for sysname in SYSTEMS:
            v = val(sysname, key)
            f.write('"%s" %s\n' % (sysname, "NaN" if v is None else v))
        f.write("\n\n")
gp = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench-plot.gp")
try:
    subprocess.run(["gnuplot", "-e", "dat='%s'; png='%s'; title='%s'" % (
        dat, os.path.join(out, "bench.png"),
        "xdpmirror vs peer (qemu mirror over TCP; ds: durable target), MTU %s, %s CPUs" % (R.get("mtu"), R.get("cpus"))),
        gp], check=True)
    print("\nresults: %s/{table.txt,results.csv,bench.png}" % out)
except (OSError, subprocess.CalledProcessError) as e:
    print("\nbench-report: no plot (%s); results: %s/{table.txt,results.csv}" % (e, out))
