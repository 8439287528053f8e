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


def ratio(a, b):
    return a / b if a is not None and b else None


# One row per metric: label, unit, key suffix, better ("hi"/"lo"), target text, target test.
seq_limit = min(x for x in (num("link.seq"), num("disk.seq")) if x is not None)
ROWS = [
    ("seq 1M QD16 write", "MiB/s", "seq", "hi"),
    ("4K QD1 write+flush", "IOPS", "qd1", "hi"),
    ("  cycle p50", "us", "p50", "lo"),
    ("  cycle p99", "us", "p99", "lo"),
    ("4K QD32 random write", "IOPS", "qd32", "hi"),
    ("CPU per GiB, daemons", "s", "cpu", "lo"),
    ("CPU per GiB, machine", "s", "syscpu", "lo"),
    ("peak RSS, daemons", "MiB", "rss", "lo"),
    ("initial full sync", "MiB/s", "fullsync", "hi"),
    ("resync after disconnect", "MiB/s", "resync", "hi"),
]
TARGETS = {
    "seq": ("xm/peer >= 3.0, xm/min(link,disk) >= 0.85",
            lambda xm, peer: xm is not None and peer and xm / peer >= 3 and xm / seq_limit >= 0.85),
    "p50": ("xm/peer <= 0.5", lambda xm, peer: xm is not None and peer and xm / peer <= 0.5),
    "cpu": ("xm/peer <= 0.33", lambda xm, peer: xm is not None and peer and xm / peer <= 0.33),
    "resync": ("xm/link >= 0.85",
               lambda xm, peer: xm is not None and num("link.resync") and
               xm / num("link.resync") >= 0.85),
}


def fmt(v):
    if v is None:
        return "-"
    if v >= 100 or v == int(v):
        return "%d" % round(v)
    return "%.2f" % v


def fratio(v):
    return "-" if v is None else "%.2fx" % v


lines = []
lines.append("xdpmirror bench: Linux %s, %s CPUs, fio %s, MTU %s, disks %s, %s s per workload"
             % (R.get("kernel"), R.get("cpus"), R.get("fio"), R.get("mtu"), R.get("disk_size"),
                R.get("secs")))
lines.append("link: %s frames/s of %s bytes (AF_XDP %s mode) = %s MiB/s of mirror payload "
             "(%s bytes per frame)" % (R.get("link.fps"), R.get("link.frame"), R.get("link.mode"),
                                      R.get("link.seq"), R.get("xdpmirror.payload")))
lines.append("")
hdr = "%-26s %-6s %8s %8s %8s %10s %8s %8s  %s" % (
    "", "unit", "link", "disk", "peer", "xdpmirror", "xm/peer", "xm/limit", "target")
lines.append(hdr)
lines.append("-" * len(hdr))
csv_rows = [["metric", "unit", "link", "disk", "peer", "xdpmirror", "xm_per_peer", "xm_per_limit",
             "target", "target_met"]]
for label, unit, key, better in ROWS:
    link, disk = num("link." + key), num("disk." + key)
    peer, xm = num("peer." + key), num("xdpmirror." + key)
    limit = None
    if key == "seq":
        limit = seq_limit
    elif key in ("qd1", "qd32", "p50", "p99"):
        limit = disk
    elif key == "resync":
        limit = link
    target, met = "", ""
    if key in TARGETS:
        target = TARGETS[key][0]
        met = "met" if TARGETS[key][1](xm, peer) else "NOT met"
    lines.append("%-26s %-6s %8s %8s %8s %10s %8s %8s  %s" % (
        label, unit, fmt(link), fmt(disk), fmt(peer), fmt(xm), fratio(ratio(xm, peer)),
        fratio(ratio(xm, limit)), (target + ": " + met) if target else ""))
    csv_rows.append([label, unit] + ["" if v is None else v for v in (link, disk, peer, xm)] +
                    ["" if ratio(xm, peer) is None else round(ratio(xm, peer), 3),
                     "" if ratio(xm, limit) is None else round(ratio(xm, limit), 3), target, met])
lines.append("")
lines.append("secondary == primary afterwards: peer %s, xdpmirror %s" % (
    R.get("peer.equal", "?"), R.get("xdpmirror.equal", "?")))
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
lines.append("xm/limit: against min(link, disk) for seq, the disk for the 4K rows, the link for "
             "resync.  Latency and CPU: lower is better.")
print("\n".join(lines))
with open(os.path.join(out, "results.csv"), "w", newline="") as f:
    csv.writer(f).writerows(csv_rows)

# The plot: six panels, one bar per system that has the number.
panels = [("seq", "sequential 1M QD16 write, MiB/s"), ("p50", "4K write+flush p50, us (lower is better)"),
          ("qd32", "4K QD32 random write, IOPS"), ("cpu", "CPU s per GiB, daemons"),
          ("fullsync", "initial full sync, MiB/s"), ("resync", "resync after disconnect, MiB/s")]
dat = os.path.join(out, "plot.dat")
with open(dat, "w") as f:
    for key, title in panels:
        f.write('# %s\n' % title)
        for sysname in ("link", "disk", "peer", "xdpmirror"):
            v = num(sysname + "." + key)
            f.write('"%s" %s\n' % (sysname, "NaN" if v is None else v))
        f.write("\n\n")
gp = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench-plot.gp")
try:
    subprocess.run(["gnuplot", "-e", "dat='%s'; png='%s'; title='%s'" % (
        dat, os.path.join(out, "bench.png"),
        "xdpmirror vs peer (qemu mirror over TCP), MTU %s, %s CPUs" % (R.get("mtu"), R.get("cpus"))),
        gp], check=True)
    print("\nresults: %s/{table.txt,results.csv,bench.png}" % out)
except (OSError, subprocess.CalledProcessError) as e:
    print("\nbench-report: no plot (%s); results: %s/{table.txt,results.csv}" % (e, out))
