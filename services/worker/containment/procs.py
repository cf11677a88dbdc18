"""Keeping a mission's agent processes inside the run that started them.

An agent may fork, leave its process group, even call ``setsid()``; none of
that may let it outlive its run, its worker's term, or its worker. Linux gives
several handles, used together:

* every agent process gets ``VP_RUN_TOKEN`` (one per run) and
  ``VP_WORKER_TOKEN`` (one per worker incarnation) in its environment, which its
  descendants inherit whatever group or session they move to; a run's
  processes are its process group, the descendants of its child, and every
  process whose environment carries its run token (found in /proc);
* the child gets ``PR_SET_PDEATHSIG`` = SIGKILL (set by a small exec shim,
  ``die_with_parent``), so it dies with the worker even on ``kill -9``;
* the worker is a child subreaper (``PR_SET_CHILD_SUBREAPER``), so an escaped
  descendant whose parent exited is re-parented to the worker, not to init:
  it stays findable (and the worker reaps it, ``reap_orphans``);
* each run is recorded on disk (``<records_dir>/<run_token>.json``) while it
  runs; a restarted worker kills whatever a previous incarnation left behind
  (``sweep_leftovers``) before it takes work.

A descendant that scrubs its environment AND escapes the tree of its run is
only found as an orphan re-parented to the worker, and is stopped when every
run is stopped (term over, drain, exit), not by the cancel of one run.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from services.worker.containment.cgroups import CgroupTree

log = logging.getLogger(__name__)

RUN_TOKEN_ENV = "VP_RUN_TOKEN"
WORKER_TOKEN_ENV = "VP_WORKER_TOKEN"
#: The default worker token of this process (a worker passes its own).
WORKER_TOKEN = uuid.uuid4().hex

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_PROC = Path("/proc")

_PR_GET_DUMPABLE = 3
_SIGKILL = int(signal.SIGKILL)
try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _prctl = _libc.prctl
    _prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    _prctl.restype = ctypes.c_int
    # One harmless call now: the first call prepares the foreign call (and may
    # allocate), which a freshly forked child of a threaded process must not do.
    _prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0)
except (OSError, AttributeError):  # not Linux: no prctl, the /proc scans find nothing
    _prctl = None

#: Pids of children an asyncio subprocess transport owns (and reaps).
_managed: set[int] = set()
#: Whether this process became a subreaper: only then are its other children
#: orphans of agents (an in-process worker in a test shares its process).
_subreaper = False


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux >= 3.4)."""
    global _subreaper
    if _prctl is not None and _prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0:
        _subreaper = True
    return _subreaper


#: Runs as the agent's process before it becomes the agent: sets the
#: parent-death signal, checks the worker is still its parent, joins the run's
#: cgroup (--containment cgroup; failing to is fatal), then execs the command. (A preexec_fn would run Python in a child forked from a threaded
#: process -- gRPC's -- which is not safe.) PDEATHSIG survives execve.
_SHIM = (
    "import ctypes, os, sys\n"
    "ctypes.CDLL(None).prctl(1, 9, 0, 0, 0)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    os._exit(137)\n"
    "if sys.argv[2] != '-':\n"
    "    with open(sys.argv[2], 'w') as procs:\n"
    "        procs.write(str(os.getpid()))\n"
    "argv = sys.argv[3:]\n"
    "try:\n"
    "    os.execvp(argv[0], argv)\n"
    "except OSError as exc:\n"
    "    sys.stderr.write(f'cannot start {argv[0]!r}: {exc}\\n')\n"
    "    os._exit(127)\n"
)


def die_with_parent(argv: list[str], python: str = sys.executable, cgroup_procs: str = "") -> list[str]:
    """argv wrapped so that the process gets SIGKILL when the worker dies (and,
    with ``cgroup_procs``, joins that cgroup before it runs anything)."""
    if _prctl is None:
        return list(argv)
    return [python, "-I", "-S", "-c", _SHIM, str(os.getpid()), cgroup_procs or "-", *argv]


def resolve_executable(name: str, path: str | None) -> str | None:
    """Where ``name`` would be executed from (None: it cannot be)."""
    if os.sep in name:
        return name if os.path.isfile(name) and os.access(name, os.X_OK) else None
    return shutil.which(name, path=path)


def manage(pid: int) -> None:
    _managed.add(pid)


def unmanage(pid: int) -> None:
    _managed.discard(pid)


# -- /proc ---------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    pid: int
    state: str
    ppid: int
    pgid: int
    starttime: int

    @property
    def live(self) -> bool:
        return self.state not in ("Z", "X")


def _stat(pid: int) -> Proc | None:
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    #  cutime cstime priority nice num_threads itrealvalue starttime ..." (comm may hold spaces, parens)
    fields = text[text.rfind(")") + 2:].split()
    try:
        return Proc(pid=pid, state=fields[0], ppid=int(fields[1]), pgid=int(fields[2]), starttime=int(fields[19]))
    except (IndexError, ValueError):
        return None


def processes() -> list[Proc]:
    if not _PROC.is_dir():
        return []
    out = []
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            proc = _stat(int(entry.name))
            if proc is not None:
                out.append(proc)
    return out


def environ_has(pid: int, needle: bytes) -> bool:
    try:
        data = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return False
    return needle in data.split(b"\0")


def descendants(roots: Iterable[int], procs: list[Proc]) -> set[int]:
    children: dict[int, list[int]] = {}
    for proc in procs:
        children.setdefault(proc.ppid, []).append(proc.pid)
    found: set[int] = set()
    stack = [r for r in roots if r > 0]
    while stack:
        pid = stack.pop()
        for child in children.get(pid, ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def members(*, token: str = "", pgids: Iterable[int] = (), roots: Iterable[int] = (),
            worker_token: str = "") -> set[int]:
    """Live (non-zombie) processes of a run: its groups, the descendants of its
    roots, and every process whose environment carries the token."""
    procs = processes()
    me = os.getpid()
    pgids = {g for g in pgids if g > 0}
    roots = {r for r in roots if r > 0}
    by_pid = {p.pid: p for p in procs}
    found = {p.pid for p in procs if p.pgid in pgids}
    found |= roots & set(by_pid)
    found |= descendants(found | roots, procs)
    needles = [f"{RUN_TOKEN_ENV}={token}".encode()] if token else []
    if worker_token:
        needles.append(f"{WORKER_TOKEN_ENV}={worker_token}".encode())
    if needles:
        for proc in procs:
            if proc.pid not in found and proc.pid != me and proc.live:
                if any(environ_has(proc.pid, n) for n in needles):
                    found.add(proc.pid)
        found |= descendants(found, procs)
    found.discard(me)
    return {pid for pid in found if pid in by_pid and by_pid[pid].live}


def signal_all(pids: Iterable[int], sig: int, pgids: Iterable[int] = ()) -> None:
    for pgid in pgids:
        if pgid > 1:
            try:
                os.killpg(pgid, sig)
            except (ProcessLookupError, PermissionError):
                pass
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def orphans() -> set[int]:
    """Live processes re-parented to this (subreaper) worker that no executor owns."""
    if not _subreaper:
        return set()
    me = os.getpid()
    return {p.pid for p in processes() if p.ppid == me and p.live and p.pid not in _managed}


def reap_orphans() -> int:
    """Reap zombies re-parented to this worker (never an executor's own child:
    its transport reaps it and needs the exit status)."""
    if not _subreaper:
        return 0
    me = os.getpid()
    reaped = 0
    for proc in processes():
        if proc.ppid == me and not proc.live and proc.pid not in _managed:
            try:
                if os.waitpid(proc.pid, os.WNOHANG)[0]:
                    reaped += 1
            except ChildProcessError:
                pass
    return reaped


def kill_and_wait(find, timeout: float = 5.0, pgids: Iterable[int] = ()) -> set[int]:
    """SIGKILL whatever ``find()`` returns until it returns nothing (bounded);
    returns what was still alive at the end."""
    deadline = time.monotonic() + timeout
    left = find()
    while left and time.monotonic() < deadline:
        signal_all(left, signal.SIGKILL, pgids)
        time.sleep(0.02)
        reap_orphans()
        left = find()
    return left


# -- per-run records on disk ---------------------------------------------------


class RunRecords:
    """``<dir>/<run_token>.json`` for every agent running now."""

    def __init__(self, directory: Path | str | None, worker_token: str = WORKER_TOKEN) -> None:
        self.directory = Path(directory) if directory else None
        self.worker_token = worker_token

    def write(self, token: str, **fields) -> None:
        if self.directory is None:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = self.directory / f".{token}.tmp"
            tmp.write_text(json.dumps({"run_token": token, "worker_token": self.worker_token,
                                       "worker_pid": os.getpid(), "worker_starttime": _OWN_STARTTIME,
                                       "host": socket.gethostname(), **fields}))
            os.replace(tmp, self.directory / f"{token}.json")
        except OSError as exc:
            log.warning("cannot record run %s in %s: %s", token, self.directory, exc)

    def remove(self, token: str) -> None:
        if self.directory is None:
            return
        try:
            (self.directory / f"{token}.json").unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot remove run record %s: %s", token, exc)

    def load(self) -> list[dict]:
        if self.directory is None or not self.directory.is_dir():
            return []
        out = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                out.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                log.warning("unreadable run record %s; removing it", path)
                path.unlink(missing_ok=True)
        return out


def sweep_leftovers(directory: Path | str | None, own_token: str = WORKER_TOKEN, timeout: float = 5.0) -> int:

    """Kill what runs recorded in ``directory`` by another incarnation left
    behind, then drop their records. Returns how many processes were killed."""
    records = RunRecords(directory, own_token)
    killed = 0
    for record in records.load():
        if record.get("worker_token") == own_token:
            continue  # ours and still running
        if record.get("host", socket.gethostname()) != socket.gethostname():
            continue  # another host's worker (a shared workspace root): not ours to judge
        worker_pid = int(record.get("worker_pid") or 0)
        recorder = _stat(worker_pid) if worker_pid else None
        if recorder is not None and recorder.live and recorder.starttime == int(record.get("worker_starttime") or -1):
            continue  # its worker is alive (e.g. the one this standby waits for): not a leftover
        pid, starttime = int(record.get("pid") or 0), int(record.get("starttime") or 0)
        same = _stat(pid) if pid else None
        # A recycled pid is somebody else's process: only the same start time counts.
        roots = [pid] if same is not None and same.starttime == starttime else []
        pgids = [int(record.get("pgid") or 0)] if roots else []
        token = str(record.get("run_token") or "")

        def find(token=token, roots=roots, pgids=pgids):
            return members(token=token, roots=roots, pgids=pgids)

        cgroup = str(record.get("cgroup") or "")
        if cgroup:
            killed += len(CgroupTree.members(cgroup))
            CgroupTree.kill(cgroup, timeout)
            CgroupTree.remove(cgroup)
        found = find()
        if found:
            log.warning("run %s of mission %s (worker pid %s) left %d process(es) behind; killing them",
                        record.get("run_id", "?"), record.get("mission_id", "?"), record.get("worker_pid", "?"),
                        len(found))
            killed += len(found)
            left = kill_and_wait(find, timeout)
            if left:
                log.error("leftover processes %s of run %s survived SIGKILL", sorted(left), record.get("run_id"))
                continue
        records.remove(token)
    return killed


_OWN_STARTTIME = (_stat(os.getpid()) or Proc(0, "R", 0, 0, 0)).starttime


def new_run_token() -> str:
    return uuid.uuid4().hex


def starttime_of(pid: int) -> int:
    proc = _stat(pid)
    return proc.starttime if proc is not None else 0
