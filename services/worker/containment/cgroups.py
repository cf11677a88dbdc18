"""Optional cgroup v2 containment (``vp-worker --cgroup``), the stronger mode.

Every run gets its own cgroup, ``<the worker's cgroup>/vp-worker-<token>/run-<token>``.
The agent joins it before it execs (the start shim writes its own pid into
``cgroup.procs``), so each of its descendants is born inside, whatever group,
session or environment it ends up with. A run's processes are then exactly
the cgroup's, and stopping it kills the whole cgroup at once (``cgroup.kill``,
Linux 5.14+; otherwise SIGKILL to every member until it is empty).

``CgroupTree.create`` returns None where cgroup v2 is not mounted, or the
worker's cgroup is not writable, or a process cannot be moved into a child
(e.g. controllers enabled under a cgroup that holds processes): the worker then
runs with the token/subreaper containment alone and says so in its log.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

_PROC_MOUNTS = Path("/proc/self/mounts")
_PROC_CGROUP = Path("/proc/self/cgroup")


def cgroup2_mount() -> Path | None:
    try:
        lines = _PROC_MOUNTS.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) >= 3 and fields[2] == "cgroup2":
            return Path(fields[1])
    return None


def own_cgroup() -> str:
    """This process's cgroup v2 path ("0::/path" in /proc/self/cgroup)."""
    try:
        for line in _PROC_CGROUP.read_text().splitlines():
            if line.startswith("0::"):
                return line[3:] or "/"
    except OSError:
        pass
    return "/"


class CgroupTree:
    """The worker's cgroup subtree: one child cgroup per run."""

    def __init__(self, base: Path) -> None:
        self.base = base

    @classmethod
    def create(cls, worker_token: str) -> "CgroupTree | None":
        mount = cgroup2_mount()
        if mount is None:
            log.warning("--cgroup: no cgroup v2 hierarchy is mounted; using process tokens only")
            return None
        parent = mount / own_cgroup().lstrip("/")
        base = parent / f"vp-worker-{worker_token[:16]}"
        try:
            base.mkdir(exist_ok=True)
        except OSError as exc:
            log.warning("--cgroup: cannot create %s (%s); using process tokens only", base, exc)
            return None
        tree = cls(base)
        if not tree._probe():
            tree.remove(base)
            return None
        return tree

    def _probe(self) -> bool:
        """Can a child process join a run cgroup? (Controllers enabled under a
        cgroup that holds processes, or a read-only cgroupfs, say no.)"""
        probe = self.run_cgroup("probe")
        if probe is None:
            return False
        try:
            done = subprocess.run(
                [sys.executable, "-I", "-S", "-c",
                 "import os, sys; open(sys.argv[1], 'w').write(str(os.getpid()))", str(probe / "cgroup.procs")],
                capture_output=True, timeout=10)
            ok = done.returncode == 0
            if not ok:
                log.warning("--cgroup: a process cannot join %s (%s); using process tokens only", probe,
                            done.stderr.decode(errors="replace").strip().splitlines()[-1:] or "?")
            return ok
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("--cgroup: probe failed (%s); using process tokens only", exc)
            return False
        finally:
            self.remove(probe)

    def run_cgroup(self, run_token: str) -> Path | None:
        path = self.base / f"run-{run_token[:16]}"
        try:
            path.mkdir(exist_ok=True)
        except OSError as exc:
            log.warning("cannot create cgroup %s: %s", path, exc)
            return None
        return path

    @staticmethod
    def members(path: Path | str | None) -> set[int]:
        """Every process in the cgroup and its descendants' cgroups."""
        if not path:
            return set()
        found: set[int] = set()
        for procs in Path(path).rglob("cgroup.procs"):
            try:
                found |= {int(line) for line in procs.read_text().split()}
            except (OSError, ValueError):
                continue
        return found

    @classmethod
    def kill_now(cls, path: Path | str | None) -> None:
        """One SIGKILL of everything in the cgroup, without waiting."""
        if not path or not Path(path).is_dir():
            return
        try:
            (Path(path) / "cgroup.kill").write_text("1")
            return
        except OSError:
            pass
        for pid in cls.members(path):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    @classmethod
    def kill(cls, path: Path | str | None, timeout: float = 5.0) -> set[int]:
        """Kill everything in the cgroup; returns what is still there at the end."""
        if not path or not Path(path).is_dir():
            return set()
        path = Path(path)
        deadline = time.monotonic() + timeout
        killer = path / "cgroup.kill"
        while True:
            left = cls.members(path)
            if not left or time.monotonic() > deadline:
                return left
            try:
                killer.write_text("1")
            except OSError:
                for pid in left:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
            time.sleep(0.02)

    @staticmethod
    def remove(path: Path | str | None) -> None:
        """Remove an empty cgroup and its empty children (best effort)."""
        if not path or not Path(path).is_dir():
            return
        for child in sorted((p for p in Path(path).rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            try:
                child.rmdir()
            except OSError:
                pass
        try:
            Path(path).rmdir()
        except OSError:
            pass

    def close(self) -> None:
        self.kill(self.base)
        self.remove(self.base)
