#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
# Stands in for systemd's notify socket: binds a Unix datagram socket at PATH and appends each
# field of every message (READY=1, STATUS=..., WATCHDOG=1) to OUT, one a line, until killed.
import os
import socket
import sys

path, out = sys.argv[1], sys.argv[2]
if os.path.exists(path):
    os.unlink(path)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
with open(out, "a", buffering=1) as f:
    while True:
        msg = sock.recv(4096).decode(errors="replace")
        for field in msg.split("\n"):
            if field:
                f.write(field + "\n")
