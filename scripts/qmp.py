#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""A tiny QMP client for qemu-storage-daemon (python3 standard library only).

Used by scripts/bench-peer.sh to drive the TCP reference mirror.  Every call opens its own
connection (a QMP socket chardev serves one client at a time and takes the next one after
a disconnect), negotiates capabilities and does one thing:

  qmp.py SOCK wait [--timeout S] [--pid PID]
        until the daemon answers QMP; with --pid, fail at once when that process is gone
  qmp.py SOCK exec COMMAND [ARGUMENTS-JSON]
        run one command, print its "return" as JSON
  qmp.py SOCK mirror --job J --device NODE --target NODE [--sync full]
        [--copy-mode write-blocking] [--timeout S] [--extra JSON]
        start blockdev-mirror and wait for the job to be ready; print a JSON summary
  qmp.py SOCK cancel --job J [--timeout S] [--force]
        cancel the job (a ready mirror finishes its last copy) and wait until it is gone;
        no such job is success, so the call can be repeated
  qmp.py SOCK quit [--timeout S]
        ask the daemon to exit, wait until it closes the socket

Errors go to stderr as one line "qmp: ..." with exit status 1.
"""

import argparse
import json
import os
import socket
import sys
import time


class QMPError(Exception):
    pass


class QMP:
    def __init__(self, path, timeout, pid=None):
        self.events = []
        self.buf = b""
        deadline = time.monotonic() + timeout
        # The socket appears when the daemon listens, but it answers only once its main loop
        # runs, i.e. after every command-line option (every node and export) is in place.
        while True:
            if pid is not None and not pid_alive(pid):
                raise QMPError("process %d exited before QMP came up" % pid)
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.sock.close()
                if time.monotonic() >= deadline:
                    raise QMPError("no QMP server on %s after %g s" % (path, timeout))
                time.sleep(0.01)
        greeting = self.recv(deadline)
        if "QMP" not in greeting:
            raise QMPError("not a QMP greeting: %s" % json.dumps(greeting))
        self.cmd("qmp_capabilities", timeout=max(1.0, deadline - time.monotonic()))

    def recv(self, deadline):
        """One JSON message, or QMPError when none arrives before deadline."""
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise QMPError("timed out waiting for the daemon")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise QMPError("timed out waiting for the daemon") from None
            if not data:
                raise EOFError
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, args=None, timeout=10.0):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        deadline = time.monotonic() + timeout
        while True:
            resp = self.recv(deadline)
            if "event" in resp:
                self.events.append(resp)
            elif "error" in resp:
                e = resp["error"]
                raise QMPError("%s: %s: %s" % (name, e.get("class"), e.get("desc")))
            elif "return" in resp:
                return resp["return"]

    def event(self, deadline):
        """The next event (queued ones first), or None at deadline."""
        if self.events:
            return self.events.pop(0)
        try:
            while True:
                msg = self.recv(deadline)
                if "event" in msg:
                    return msg
        except QMPError:
            return None

    def job(self, job_id):
        for j in self.cmd("query-block-jobs"):
            if j["device"] == job_id:
                return j
        return None

    def job_error(self, job_id):
        """The error text query-jobs keeps for a failed job, if it still lists it."""
        for j in self.cmd("query-jobs"):
            if j["id"] == job_id and "error" in j:
                return j["error"]
        return None


def pid_alive(pid):
    # A zombie has exited too: it only waits for its parent to reap it.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def ts(ev):
    t = ev["timestamp"]
    return t["seconds"] + t["microseconds"] / 1e6


def do_mirror(q, a):
    args = {"job-id": a.job, "device": a.device, "target": a.target, "sync": a.sync,
            "copy-mode": a.copy_mode}
    if a.extra:
        args.update(json.loads(a.extra))
    t0 = time.monotonic()
    q.cmd("blockdev-mirror", args)
    deadline = t0 + a.timeout
    start = ready = None
    polls = 0
    next_poll = time.monotonic() + 0.5
    while ready is None:
        now = time.monotonic()
        if now >= deadline:
            j = q.job(a.job)
            raise QMPError("job %s not ready after %g s (%s)" % (
                a.job, a.timeout, json.dumps(j) if j else "job gone"))
        # Events carry the daemon's own timestamps, so the copy is timed from the moment the
        # job started running to the moment it reported ready, whatever the client's latency.
        # The periodic query is only a safety net for a job that ends without an event.
        ev = q.event(min(deadline, next_poll))
        if ev is None:
            polls += 1
            next_poll = time.monotonic() + 0.5
            # Events that arrived during the query are looked at first: they say why.
            if q.job(a.job) is None and not q.events:
                raise QMPError("job %s vanished before it was ready" % a.job)
            continue
        data = ev.get("data", {})
        name = ev["event"]
        if name == "JOB_STATUS_CHANGE" and data.get("id") == a.job:
            if data["status"] == "running" and start is None:
                start = ev
            elif data["status"] in ("aborting", "concluded", "null"):
                err = q.job_error(a.job)
                raise QMPError("job %s ended before it was ready%s" % (
                    a.job, ": " + err if err else ""))
        elif name in ("BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED") and data.get("device") == a.job:
            raise QMPError("job %s ended before it was ready%s" % (
                a.job, ": " + data["error"] if "error" in data else ""))
        elif name == "BLOCK_JOB_ERROR" and data.get("device") == a.job:
            raise QMPError("job %s: %s error (%s)" % (a.job, data.get("operation"),
                                                       data.get("action")))
        elif name == "BLOCK_JOB_READY" and data.get("device") == a.job:
            ready = ev
    wall = time.monotonic() - t0
    # Without a "running" event (not seen so far) the client's own clock is the fallback.
    if start is not None:
        secs, how = ts(ready) - ts(start), "events"
    else:
        secs, how = wall, "client"
    print(json.dumps({"job": a.job, "secs": round(secs, 6), "bytes": ready["data"]["len"],
                      "offset": ready["data"]["offset"], "wall_secs": round(wall, 6),
                      "timed_by": how, "polls": polls}))


def do_cancel(q, a):
    if q.job(a.job) is None:
        return
    try:
        q.cmd("block-job-cancel", {"device": a.job, "force": a.force})
    except QMPError as e:
        # It may have ended between the query and the cancel.
        if q.job(a.job) is not None:
            raise e
        return
    deadline = time.monotonic() + a.timeout
    next_poll = time.monotonic() + 0.2
    while True:
        if time.monotonic() >= deadline:
            raise QMPError("job %s still there %g s after block-job-cancel" % (a.job, a.timeout))
        ev = q.event(min(deadline, next_poll))
        if ev is None:
            next_poll = time.monotonic() + 0.2
            if q.job(a.job) is None:
                return
            continue
        data = ev.get("data", {})
        if ev["event"] in ("BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED") \
                and data.get("device") == a.job:
            # Reported, but not fatal: after a cancel the target may simply be gone.
            if "error" in data:
                print("qmp: job %s ended with: %s" % (a.job, data["error"]), file=sys.stderr)
            # With auto-dismiss (the default) the job leaves the list right after this event.
            while q.job(a.job) is not None:
                if time.monotonic() >= deadline:
                    raise QMPError("job %s not dismissed" % a.job)
                time.sleep(0.01)
            return


def do_quit(q, a):
    # The daemon may close the socket before or after its reply, and with a reset rather
    # than an orderly close: either way it is on its way out.
    try:
        q.cmd("quit")
        deadline = time.monotonic() + a.timeout
        while True:
            q.recv(deadline)
    except (EOFError, ConnectionResetError, BrokenPipeError):
        return


def main():
    p = argparse.ArgumentParser(description="tiny QMP client")
    p.add_argument("socket")
    sub = p.add_subparsers(dest="op", required=True)
    w = sub.add_parser("wait")
    w.add_argument("--timeout", type=float, default=10)
    w.add_argument("--pid", type=int)
    e = sub.add_parser("exec")
    e.add_argument("command")
    e.add_argument("arguments", nargs="?")
    e.add_argument("--timeout", type=float, default=10)
    m = sub.add_parser("mirror")
    m.add_argument("--job", required=True)
    m.add_argument("--device", required=True)
    m.add_argument("--target", required=True)
    m.add_argument("--sync", default="full")
    m.add_argument("--copy-mode", default="write-blocking")
    m.add_argument("--extra", help="more blockdev-mirror arguments as a JSON object")
    m.add_argument("--timeout", type=float, default=120)
    c = sub.add_parser("cancel")
    c.add_argument("--job", required=True)
    c.add_argument("--force", action="store_true")
    c.add_argument("--timeout", type=float, default=30)
    qu = sub.add_parser("quit")
    qu.add_argument("--timeout", type=float, default=10)
    a = p.parse_args()

    try:
        q = QMP(a.socket, a.timeout if a.op == "wait" else min(a.timeout, 10), a.pid
                if a.op == "wait" else None)
        if a.op == "exec":
            args = json.loads(a.arguments) if a.arguments else None
            print(json.dumps(q.cmd(a.command, args, timeout=a.timeout)))
        elif a.op == "mirror":
            do_mirror(q, a)
        elif a.op == "cancel":
            do_cancel(q, a)
        elif a.op == "quit":
            do_quit(q, a)
    except QMPError as e:
        sys.exit("qmp: %s" % e)
    except EOFError:
        sys.exit("qmp: the daemon closed the connection")
    except (OSError, ValueError) as e:
        sys.exit("qmp: %s: %s" % (a.socket, e))


if __name__ == "__main__":
    main()
