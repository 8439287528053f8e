#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
# The layout rules of user/ (docs/design.md), checked by `make lint`: no .c file over 800 lines; no
# circle of includes between units (a unit is name.c + name.h); a role (primary/, secondary/) never
# includes the daemon's headers, and the daemon names a role only through its ops table.
import os
import re
import sys

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
USER = os.path.join(TOP, "user")
MAX_LINES = 800
INCLUDE = re.compile(r'^#include "([a-z_]+/[a-z_0-9]+)\.h"', re.M)


def units():
    """Every unit "folder/name" with the units its .c and .h include."""
    deps = {}
    for folder in sorted(os.listdir(USER)):
        path = os.path.join(USER, folder)
        if not os.path.isdir(path):
            continue
        for f in sorted(os.listdir(path)):
            if not f.endswith((".c", ".h")):
                continue
            unit = folder + "/" + f[:-2]
            text = open(os.path.join(path, f)).read()
            deps.setdefault(unit, set()).update(u for u in INCLUDE.findall(text) if u != unit)
    return deps


def cycles(deps):
    """The circles of includes, each as a list of units (Tarjan's strongly connected parts)."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(u):
        index[u] = low[u] = n[0]
        n[0] += 1
        stack.append(u)
        on.add(u)
        for v in deps.get(u, ()):
            if v not in index:
                visit(v)
                low[u] = min(low[u], low[v])
            elif v in on:
                low[u] = min(low[u], index[v])
        if low[u] == index[u]:
            part = []
            while True:
                v = stack.pop()
                on.discard(v)
                part.append(v)
                if v == u:
                    break
            if len(part) > 1:
                out.append(sorted(part))

    for u in sorted(deps):
        if u not in index:
            visit(u)
    return out


def main():
    problems = []
    deps = units()
    for unit in sorted(deps):
        c = os.path.join(USER, unit + ".c")
        if os.path.exists(c):
            n = sum(1 for _ in open(c))
            if n > MAX_LINES:
                problems.append(f"user/{unit}.c: {n} lines (at most {MAX_LINES})")
    for part in cycles(deps):
        problems.append("include circle: " + " -> ".join(part))
    for unit, uses in sorted(deps.items()):
        if unit.split("/")[0] in ("primary", "secondary"):
            for u in sorted(uses):
                if u.startswith("daemon/"):
                    problems.append(f"user/{unit}: a role includes the daemon's {u}.h")
    for p in problems:
        print("check-layout: " + p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
