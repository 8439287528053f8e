#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
# Stands in for systemd's notify socket: binds a Unix datagram socket at PATH and appends each
# field of every message (READY=1, STATUS=..., WATCHDOG=1) to OUT, one a line, until killed.
# With MUST_EXIST: the moment READY=1 arrives, the sender is stopped (SIGSTOP, its pid from the
# message's credentials) and "ready-check: MUST_EXIST exists; with: FIELDS" (or "missing")
# follows, FIELDS being what came in the same message: what the daemon had made when it said
# READY is seen before it can make more.
import os
import signal
import socket
import struct
import sys

path, out = sys.argv[1], sys.argv[2]
must_exist = sys.argv[3] if len(sys.argv) > 3 else None
if os.path.exists(path):
    os.unlink(path)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
sock.bind(path)
creds_len = socket.CMSG_SPACE(struct.calcsize("3i"))
with open(out, "a", buffering=1) as f:
    while True:
        data, anc, _, _ = sock.recvmsg(4096, creds_len)
        fields = [x for x in data.decode(errors="replace").split("\n") if x]
        pid = None
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("3i", payload[:12])[0]
        check = None
        if must_exist and "READY=1" in fields and pid:
            os.kill(pid, signal.SIGSTOP)
            check = "exists" if os.path.exists(must_exist) else "missing"
            os.kill(pid, signal.SIGCONT)
        for field in fields:
            f.write(field + "\n")
        if check:
            others = " ".join(x for x in fields if x != "READY=1")
            f.write(f"ready-check: {must_exist} {check}; with: {others}\n")
