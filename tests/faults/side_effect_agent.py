"""An agent for fault tests that acts only on the outside world: it appends to a
side-effect file (never to stdout), and so does a grandchild that left its
session (setsid) and was orphaned. Each line: time, tag, attempt, role, pid.

    side_effect_agent.py SIDE_FILE TAG SECONDS [SECONDS_FROM_ATTEMPT_2]
"""

import os
import signal
import sys
import time

side, tag, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
attempt = int(os.environ.get("VP_ATTEMPT", "1"))
if attempt >= 2 and len(sys.argv) > 4:
    seconds = float(sys.argv[4])


def write(role: str, what: str = "tick") -> None:
    with open(side, "a") as fh:
        fh.write(f"{time.time():.6f} {tag} attempt={attempt} {role} {os.getpid()} {what}\n")


def run(role: str) -> None:
    def on_term(signum, frame):
        write(role, "sigterm")
        os._exit(143)

    signal.signal(signal.SIGTERM, on_term)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        write(role)
        time.sleep(0.05)


if os.fork() == 0:
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    run("grandchild")
    os._exit(0)
run("agent")
