"""Keeping agent processes inside their run, their term and their worker.

procs.py: process tokens, the parent-death shim, the subreaper, per-run records
on disk and the restart sweep; cgroups.py: the optional cgroup v2 mode;
watchdog.py: the separate process that kills a frozen or dead worker's agents.
Standard library only, so the watchdog starts fast.
"""
