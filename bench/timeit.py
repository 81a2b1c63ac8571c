#!/usr/bin/env python3
"""Runs a command; prints its wall-clock seconds and the CPU seconds (user +
system) of the command and its children, from wait4's rusage."""
import os
import sys
import time

t0 = time.monotonic()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[1], sys.argv[1:])
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
wall = time.monotonic() - t0
# wait4 reports the child itself; grandchildren it waited for are in
# RUSAGE_CHILDREN of the child, which wait4 includes.
print(f"{wall:.4f} {ru.ru_utime + ru.ru_stime:.4f} {ru.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status))
