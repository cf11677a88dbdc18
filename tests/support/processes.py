"""Start the real console scripts as subprocesses and learn the address they bound."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ADDRESS_LINE = re.compile(r"listening on (\S+:\d+)")
METRICS_LINE = re.compile(r"metrics on http://(\S+:\d+)/metrics")


def console_script(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"console script {name!r} is not installed (pip install -e .)")
    return found


class ServiceProcess:
    """A service subprocess whose stderr is collected; address is parsed from its log."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> None:
        self.argv = argv
        full_env = {**os.environ, **(env or {})}
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=full_env, cwd=cwd)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, pattern: str | re.Pattern, timeout: float = 20.0) -> re.Match:
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            while seen < len(self.lines):
                match = regex.search(self.lines[seen])
                seen += 1
                if match:
                    return match
            if self.proc.poll() is not None and seen >= len(self.lines):
                time.sleep(0.05)
                if seen >= len(self.lines):
                    raise AssertionError(f"{self.argv[0]} exited {self.proc.returncode}:\n{self.output}")
            time.sleep(0.02)
        raise AssertionError(f"no line matching {regex.pattern!r} within {timeout}s:\n{self.output}")

    def address(self, timeout: float = 20.0) -> str:
        return self.wait_for_line(ADDRESS_LINE, timeout).group(1)

    def metrics_url(self, timeout: float = 20.0) -> str:
        """The /metrics URL the process logged (it was started with --metrics-listen)."""
        return f"http://{self.wait_for_line(METRICS_LINE, timeout).group(1)}/metrics"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def __enter__(self) -> "ServiceProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.kill()
