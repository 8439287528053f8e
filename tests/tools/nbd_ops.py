# SPDX-License-Identifier: GPL-2.0
# Description: a scripted NBD client on libnbd for the integration tests: runs requests one after
# the other on one connection and prints a line as each is issued and as it completes, so a test
# can watch from outside what a request waits for.
#
#   nbd_ops.py URI OP...       ops: write:OFF:LEN:SEED  fua-write:OFF:LEN:SEED  zero:OFF:LEN
#                                   trim:OFF:LEN  flush  hold:PATH (wait until PATH exists)
#   nbd_ops.py pattern LEN SEED         the bytes write:OFF:LEN:SEED sends, on stdout
#   nbd_ops.py pause-control SOCKET p|r nbdkit's pause filter: pause or resume its requests
#
# Output per op: "N OP issued", then "N OP done" or "N OP error TEXT".  Exit 0 when every op
# succeeded, 1 when one failed (the rest are not run), 2 on usage errors.
import os
import random
import socket
import sys
import time


def pattern(length, seed):
    return random.Random(seed).randbytes(length)


def say(*words):
    print(*words, flush=True)


def parse_op(text):
    parts = text.split(":")
    name, args = parts[0], parts[1:]
    wants = {"write": 3, "fua-write": 3, "zero": 2, "trim": 2, "flush": 0, "hold": 1}
    if name not in wants or len(args) != wants[name]:
        raise ValueError(f"bad op '{text}'")
    if name == "hold":
        return name, args
    return name, [int(a, 0) for a in args]


def run_op(h, nbd, name, args):
    if name in ("write", "fua-write"):
        off, length, seed = args
        flags = nbd.CMD_FLAG_FUA if name == "fua-write" else 0
        h.pwrite(pattern(length, seed), off, flags)
    elif name == "zero":
        h.zero(args[1], args[0])
    elif name == "trim":
        h.trim(args[1], args[0])
    elif name == "flush":
        h.flush()
    elif name == "hold":
        while not os.path.exists(args[0]):
            time.sleep(0.01)


def run(uri, texts):
    import nbd

    ops = [parse_op(t) for t in texts]
    h = nbd.NBD()
    h.connect_uri(uri)
    for n, (name, args) in enumerate(ops, 1):
        say(n, name, "issued")
        try:
            run_op(h, nbd, name, args)
        except nbd.Error as e:
            say(n, name, "error", e.string.replace("\n", " "))
            return 1
        say(n, name, "done")
    h.shutdown()
    return 0


def pause_control(path, cmd):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        s.sendall(cmd.encode())
        answer = s.recv(1).decode()
    if answer != cmd.upper():
        say(f"pause-control: sent '{cmd}', got '{answer}'")
        return 1
    return 0


def main(argv):
    try:
        if len(argv) == 4 and argv[1] == "pattern":
            sys.stdout.buffer.write(pattern(int(argv[2], 0), int(argv[3], 0)))
            return 0
        if len(argv) == 4 and argv[1] == "pause-control" and argv[3] in ("p", "r"):
            return pause_control(argv[2], argv[3])
        if len(argv) >= 3:
            return run(argv[1], argv[2:])
    except ValueError as e:
        print(f"nbd_ops: {e}", file=sys.stderr)
        return 2
    print("usage: nbd_ops.py URI OP... | pattern LEN SEED | pause-control SOCKET p|r",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
