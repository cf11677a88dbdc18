"""Run a mission as a child process.

The command is a list of argv strings from configuration. Placeholders
``{objective}``, ``{mission_id}``, ``{mission_dir}``, ``{workspace_dir}``,
``{target_path}`` and ``{envelope_json}`` are replaced inside each argv element
(one pass, so a value containing another placeholder is not expanded again).
No shell is ever involved: an objective full of metacharacters arrives as one
argv element, verbatim.

The child also gets the envelope as JSON on stdin and in
``$VP_ENVELOPE_FILE`` (mission_dir/envelope.json), plus ``VP_MISSION_ID``,
``VP_MISSION_DIR``, ``VP_WORKSPACE_DIR``, ``VP_RUN_ID``, ``VP_ATTEMPT`` and
``VP_TARGET_PATH``; its cwd is the workspace. Each stdout line is reported as
progress and kept in mission_dir/stdout.log; the last 64 KiB of stderr go to
mission_dir/stderr.log.

The child leads its own process group (start_new_session=True), dies with the
worker (PR_SET_PDEATHSIG) and carries the run's containment tokens
(services/worker/containment). The run's processes are its group, the child's descendants
and every process carrying its run token, including ones that left the group
or the session. On cancel or when budget.max_duration runs out, they get
SIGTERM, then SIGKILL after ``kill_grace`` seconds; run() returns only once the
child is reaped and none of them is left. Processes still alive after a
normal exit of the child are stopped the same way. While the child runs, it is
recorded in ``run_records_dir`` so that a restarted worker can kill what a
dead one left behind.

``hooks`` (agent protocol v1, services/worker/agents) is a factory called per
run with (run, progress); the object it returns may change the argv and
environment, pass file descriptors, consume stdout lines, ask for the agent to
be stopped (``stop``, then the same SIGTERM/SIGKILL escalation as a cancel) and
decide the run's result (``finish``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

from services.worker.containment import procs as containment
from services.worker.containment.cgroups import CgroupTree
from services.worker.executors.base import (
    EXECUTOR_EXIT_NONZERO,
    EXECUTOR_START_FAILED,
    ExecutionResult,
    MissionRun,
    ProgressSink,
    envelope_to_json,
    format_seconds,
    max_duration_seconds,
    one_line,
)

log = logging.getLogger(__name__)

PLACEHOLDERS = frozenset({"objective", "mission_id", "mission_dir", "workspace_dir", "target_path", "envelope_json"})
_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

DEFAULT_KILL_GRACE = 5.0
MAX_LINE_BYTES = 64 * 1024
STDERR_TAIL_BYTES = 64 * 1024
STDOUT_LOG_LIMIT = 16 * 1024 * 1024
#: How much of the stderr tail goes into a failure message.
ERROR_TAIL_CHARS = 2000
_READ_CHUNK = 64 * 1024
_POLL = 0.02
#: After SIGKILL, how long to wait for the group to disappear before giving up.
_KILL_SETTLE = 5.0
#: How long to wait for stdout/stderr EOF once the group is gone (pipes held by
#: a process that escaped the group).
_DRAIN_TIMEOUT = 2.0


def validate_command(command: Sequence[str]) -> list[str]:
    if isinstance(command, (str, bytes)):
        raise ValueError("subprocess command must be a list of argv strings, not a single (shell) string")
    argv = list(command)
    if not argv:
        raise ValueError("subprocess command must not be empty")
    for i, arg in enumerate(argv):
        if not isinstance(arg, str):
            raise ValueError(f"subprocess command element {i} must be a string, got {type(arg).__name__}")
        for name in _PLACEHOLDER_RE.findall(arg):
            if name not in PLACEHOLDERS:
                raise ValueError(
                    f"subprocess command element {i} uses unknown placeholder {{{name}}}; "
                    f"known: {', '.join('{' + p + '}' for p in sorted(PLACEHOLDERS))}"
                )
    return argv


def substitute(argv: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """Replace known placeholders inside each element, in one pass."""

    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        return values[name] if name in values else match.group(0)

    return [_PLACEHOLDER_RE.sub(repl, arg) for arg in argv]


class SubprocessExecutor:
    def __init__(
        self,
        command: Sequence[str],
        *,
        kill_grace: float = DEFAULT_KILL_GRACE,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        default_max_duration: float | None = None,
        max_line_bytes: int = MAX_LINE_BYTES,
        stderr_tail_bytes: int = STDERR_TAIL_BYTES,
        stdout_log_limit: int = STDOUT_LOG_LIMIT,
        hooks=None,
        run_records_dir: str | Path | None = None,
        worker_token: str = "",
    ) -> None:
        self.command = validate_command(command)
        if kill_grace < 0:
            raise ValueError("kill_grace must be >= 0")
        if default_max_duration is not None and default_max_duration <= 0:
            raise ValueError("default_max_duration must be > 0 when set")
        if max_line_bytes < 1 or stderr_tail_bytes < 0 or stdout_log_limit < 0:
            raise ValueError("max_line_bytes must be >= 1; stderr_tail_bytes and stdout_log_limit >= 0")
        self.kill_grace = float(kill_grace)
        self.env = dict(env or {})
        self.inherit_env = inherit_env
        self.default_max_duration = default_max_duration
        self.max_line_bytes = max_line_bytes
        self.stderr_tail_bytes = stderr_tail_bytes
        self.stdout_log_limit = stdout_log_limit
        self.hooks = hooks
        #: Marks every agent of this worker incarnation (its watchdog kills by it).
        self.worker_token = worker_token or containment.WORKER_TOKEN
        self.records = containment.RunRecords(run_records_dir, self.worker_token)
        self.cgroups: CgroupTree | None = None

    def contain(self, run_records_dir: str | Path | None, worker_token: str, cgroups: CgroupTree | None = None) -> None:
        """Record runs in ``run_records_dir``, mark agents with ``worker_token``
        (one worker incarnation's; its watchdog kills by it) and, with
        ``cgroups``, run each one in a cgroup of its own (cgroups.py)."""
        self.worker_token = worker_token or containment.WORKER_TOKEN
        self.records = containment.RunRecords(run_records_dir, self.worker_token)
        self.cgroups = cgroups

    async def run(self, run: MissionRun, progress: ProgressSink) -> ExecutionResult:
        if run.cancel.is_set():
            return ExecutionResult.cancelled("cancelled before start")
        envelope_json = envelope_to_json(run.envelope)
        run.mission_dir.mkdir(parents=True, exist_ok=True)
        envelope_file = run.mission_dir / "envelope.json"
        envelope_file.write_text(envelope_json + "\n", encoding="utf-8")

        values = {
            "objective": run.envelope.objective,
            "mission_id": run.mission_id,
            "mission_dir": str(run.mission_dir),
            "workspace_dir": str(run.workspace_dir),
            "target_path": run.envelope.target_path,
            "envelope_json": envelope_json,
        }
        argv = substitute(self.command, values)
        env = dict(os.environ) if self.inherit_env else {}
        env.update(self.env)
        env.update(
            {
                "VP_MISSION_ID": run.mission_id,
                "VP_MISSION_DIR": str(run.mission_dir),
                "VP_WORKSPACE_DIR": str(run.workspace_dir),
                "VP_ENVELOPE_FILE": str(envelope_file),
                "VP_RUN_ID": run.run_id,
                "VP_ATTEMPT": str(run.attempt),
                "VP_TARGET_PATH": run.envelope.target_path,
            }
        )
        token = containment.new_run_token()
        env[containment.RUN_TOKEN_ENV] = token
        env[containment.WORKER_TOKEN_ENV] = self.worker_token
        timeout = max_duration_seconds(run.envelope, self.default_max_duration)
        hooks = self.hooks(run, progress) if self.hooks is not None else None
        pass_fds: tuple[int, ...] = ()
        if hooks is not None:
            argv, env, pass_fds = hooks.prepare(argv, env)

        if containment.resolve_executable(argv[0], env.get("PATH")) is None:
            if hooks is not None:
                hooks.abort()
            log.warning("mission %s: cannot start %r: not an executable file", run.mission_id, argv[0])
            return ExecutionResult.failed(EXECUTOR_START_FAILED,
                                          one_line(f"cannot start {argv[0]!r}: not found or not executable"))
        cgroup = self.cgroups.run_cgroup(token) if self.cgroups is not None else None
        stdout_log = open(run.mission_dir / "stdout.log", "wb")
        try:
            proc = await asyncio.create_subprocess_exec(
                *containment.die_with_parent(argv, cgroup_procs=str(cgroup / "cgroup.procs") if cgroup else ""),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=str(run.workspace_dir),
                env=env,
                start_new_session=True,
                pass_fds=pass_fds,
            )
        except (OSError, ValueError) as exc:
            stdout_log.close()
            CgroupTree.remove(cgroup)
            if hooks is not None:
                hooks.abort()
            log.warning("mission %s: cannot start %r: %s", run.mission_id, argv[0], exc)
            return ExecutionResult.failed(EXECUTOR_START_FAILED, one_line(f"cannot start {argv[0]!r}: {exc}"))
        containment.manage(proc.pid)
        self.records.write(token, pid=proc.pid, pgid=proc.pid, starttime=containment.starttime_of(proc.pid),
                           mission_id=run.mission_id, run_id=run.run_id, attempt=run.attempt,
                           cgroup=str(cgroup or ""))
        log.info("mission %s attempt %s: started pid %s: %s", run.mission_id, run.attempt, proc.pid, argv[0])
        try:
            if hooks is None:
                return await _Supervisor(self, run, proc, progress, envelope_json, timeout, stdout_log,
                                         token=token, cgroup=cgroup).supervise()
            hooks.started()
            try:
                result = await _Supervisor(self, run, proc, progress, envelope_json, timeout, stdout_log,
                                           hooks, token=token, cgroup=cgroup).supervise()
            except BaseException:
                hooks.abort()
                raise
            return await hooks.finish(result)
        finally:
            if proc.returncode is not None:
                containment.unmanage(proc.pid)
            if not containment.members(token=token, pgids=[proc.pid]) and not CgroupTree.members(cgroup):
                CgroupTree.remove(cgroup)
                self.records.remove(token)


class _Supervisor:
    """Everything about one child process, from start to reaped."""

    def __init__(
        self,
        executor: SubprocessExecutor,
        run: MissionRun,
        proc: asyncio.subprocess.Process,
        progress: ProgressSink,
        envelope_json: str,
        timeout: float | None,
        stdout_log,
        hooks=None,
        token: str = "",
        cgroup: Path | None = None,
    ) -> None:
        self.x = executor
        self.hooks = hooks
        self.token = token
        self.cgroup = cgroup
        self.run = run
        self.proc = proc
        self.pgid = proc.pid  # start_new_session: the child leads its own group
        self.progress = progress
        self.envelope_json = envelope_json
        self.timeout = timeout
        self.line_no = 0
        self.last_line = ""
        self.stderr_tail = bytearray()
        self.stderr_dropped = 0
        self.stdout_written = 0
        self.stdout_truncated = False
        self.stdout_log = stdout_log
        self.wait_task: asyncio.Task[int] = asyncio.ensure_future(proc.wait())

    async def supervise(self) -> ExecutionResult:
        run = self.run
        stdin_task = asyncio.ensure_future(self._feed_stdin())
        stdout_task = asyncio.ensure_future(self._read_stdout())
        stderr_task = asyncio.ensure_future(self._read_stderr())
        cancel_task = asyncio.ensure_future(run.cancel.wait())
        # proc.wait() only finishes once the pipes are closed too, which a
        # grandchild holding stdout can delay forever; the poller notices the
        # child itself exiting.
        exit_poll = asyncio.ensure_future(self._poll_exit())
        # The hooks ask for a stop when the agent crossed its budget or asked a question.
        stop_task = asyncio.ensure_future(self.hooks.stop.wait() if self.hooks is not None else asyncio.Future())
        reason = "exited"
        try:
            done, _ = await asyncio.wait(
                {self.wait_task, exit_poll, cancel_task, stop_task}, timeout=self.timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if cancel_task in done:
                reason = "cancelled"
            elif not done:
                reason = "timed_out"
            elif stop_task in done and self.proc.returncode is None:
                reason = "stopped"
            if reason != "exited":
                log.info("mission %s: %s, stopping pid %s", run.mission_id, reason, self.proc.pid)
            await self._stop_group(self.x.kill_grace)
            await self._drain(stdout_task, stderr_task)
        except BaseException:
            # Our own task was cancelled (worker shutdown) or something broke:
            # never leave the child behind.
            self._signal_group(signal.SIGKILL)
            for task in (stdout_task, stderr_task):
                task.cancel()
            try:
                await asyncio.wait_for(self._poll_exit(), _KILL_SETTLE)
            except BaseException:  # noqa: BLE001 - best effort while unwinding
                pass
            self._close_transport()
            raise
        finally:
            cancel_task.cancel()
            stop_task.cancel()
            exit_poll.cancel()
            stdin_task.cancel()
            if not self.wait_task.done():
                self.wait_task.cancel()
            self._write_logs()

        rc = self.proc.returncode
        if reason == "stopped":
            return ExecutionResult.failed(EXECUTOR_EXIT_NONZERO, f"stopped by the worker ({_describe_rc(rc)})",
                                          summary=self.last_line)
        if reason == "cancelled":
            return ExecutionResult.cancelled(f"cancelled ({_describe_rc(rc)})")
        if reason == "timed_out":
            return ExecutionResult.timed_out(
                f"max_duration {format_seconds(self.timeout or 0)} exceeded; process stopped ({_describe_rc(rc)})",
                summary=self.last_line,
            )
        if rc == 0:
            return ExecutionResult.completed(self.last_line)
        tail = self._stderr_text()[-ERROR_TAIL_CHARS:].strip()
        message = f"command {_describe_rc(rc)}"
        message += f"; stderr tail:\n{tail}" if tail else "; stderr empty"
        return ExecutionResult.failed(EXECUTOR_EXIT_NONZERO, message, summary=self.last_line)

    # -- process group --------------------------------------------------

    def _members(self) -> set[int]:
        """The run's live processes: group, descendants, token carriers."""
        return (containment.members(token=self.token, pgids=[self.pgid], roots=[self.proc.pid])
                | CgroupTree.members(self.cgroup))

    def _signal_group(self, sig: int) -> None:
        if sig == signal.SIGKILL and self.cgroup is not None:
            CgroupTree.kill_now(self.cgroup)
        containment.signal_all(self._members(), sig, [self.pgid])

    def _alive(self) -> bool:
        return self.proc.returncode is None or bool(self._members())

    async def _poll_exit(self) -> None:
        while self.proc.returncode is None:
            await asyncio.sleep(_POLL)

    def _close_transport(self) -> None:
        """Release the pipes when something outside the group still holds them."""
        transport = getattr(self.proc, "_transport", None)
        if transport is not None:
            transport.close()

    async def _stop_group(self, grace: float) -> None:
        """SIGTERM the group, SIGKILL after ``grace``; return once the child is
        reaped and no live member of the group is left (bounded)."""
        if not self._alive():
            return
        self._signal_group(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self._alive() and loop.time() < deadline:
            await asyncio.sleep(min(_POLL, max(0.0, deadline - loop.time())))
        if self._alive():
            log.info("mission %s: group %s still alive after %.2fs grace, sending SIGKILL",
                     self.run.mission_id, self.pgid, grace)
            self._signal_group(signal.SIGKILL)
        settle = loop.time() + _KILL_SETTLE
        while self._alive() and loop.time() < settle:
            await asyncio.sleep(_POLL)
            containment.reap_orphans()
            self._signal_group(signal.SIGKILL)
        left = self._members()
        if left:
            log.warning("mission %s: processes %s of the run did not disappear", self.run.mission_id, sorted(left))

    async def _drain(self, *tasks: asyncio.Task) -> None:
        """Wait for EOF on both pipes. Give up only when no line has arrived for
        _DRAIN_TIMEOUT (a process outside the group still holds the pipe)."""
        pending = set(tasks)
        seen = -1
        while pending and seen != self.line_no:
            seen = self.line_no
            _, pending = await asyncio.wait(pending, timeout=_DRAIN_TIMEOUT)
        done = set(tasks) - pending
        if pending:
            log.warning("mission %s: output pipe still open after the process group ended", self.run.mission_id)
            for task in pending:
                task.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(self.wait_task), 0 if pending else _DRAIN_TIMEOUT)
        except asyncio.TimeoutError:
            self._close_transport()
        for task in done:
            exc = task.exception()
            if exc is not None:
                log.warning("mission %s: output reader failed: %r", self.run.mission_id, exc)

    # -- streams ---------------------------------------------------------

    async def _feed_stdin(self) -> None:
        stdin = self.proc.stdin
        if stdin is None:
            return
        data = self.envelope_json.encode("utf-8") + b"\n"
        if self.hooks is not None:
            data = self.hooks.stdin(data)
        try:
            if data:
                stdin.write(data)
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            try:
                stdin.close()
            except Exception:  # noqa: BLE001
                pass

    async def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        async for raw, truncated in read_lines(self.proc.stdout, self.x.max_line_bytes):
            self.line_no += 1
            line = raw.decode("utf-8", errors="replace").rstrip("\r")
            self._log_stdout(line, truncated)
            if line.strip():
                self.last_line = line.strip()
            payload: dict = {"stream": "stdout", "line_no": self.line_no}
            if truncated:
                payload["truncated"] = True
            try:
                if self.hooks is not None and await self.hooks.stdout_line(line, payload):
                    continue
                await self.progress(line, payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a broken sink must not kill the mission
                log.warning("mission %s: progress sink failed on line %d: %r",
                            self.run.mission_id, self.line_no, exc)

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        limit = self.x.stderr_tail_bytes
        while True:
            chunk = await self.proc.stderr.read(_READ_CHUNK)
            if not chunk:
                return
            self.stderr_tail += chunk
            excess = len(self.stderr_tail) - limit
            if excess > 0:
                del self.stderr_tail[:excess]
                self.stderr_dropped += excess

    def _log_stdout(self, line: str, truncated: bool) -> None:
        if self.stdout_truncated:
            return
        data = (line + (" [line truncated]" if truncated else "") + "\n").encode("utf-8")
        if self.stdout_written + len(data) > self.x.stdout_log_limit:
            self.stdout_truncated = True
            self.stdout_log.write(b"[... stdout.log limit reached, further output not kept ...]\n")
            return
        self.stdout_log.write(data)
        self.stdout_written += len(data)

    def _stderr_text(self) -> str:
        return bytes(self.stderr_tail).decode("utf-8", errors="replace")

    def _write_logs(self) -> None:
        try:
            self.stdout_log.close()
        except OSError as exc:
            log.warning("mission %s: cannot close stdout.log: %s", self.run.mission_id, exc)
        try:
            with open(self.run.mission_dir / "stderr.log", "wb") as fh:
                if self.stderr_dropped:
                    fh.write(f"[... {self.stderr_dropped} earlier bytes dropped ...]\n".encode())
                fh.write(bytes(self.stderr_tail))
        except OSError as exc:
            log.warning("mission %s: cannot write stderr.log: %s", self.run.mission_id, exc)


async def read_lines(stream: asyncio.StreamReader, max_line: int):
    """Yield (line_bytes, truncated) for each line, without the newline.

    A line longer than ``max_line`` bytes is yielded once, cut to ``max_line``
    bytes, and the rest of it is skipped; memory stays bounded."""
    buf = bytearray()
    skipping = False  # inside the unread rest of an over-long line
    while True:
        chunk = await stream.read(_READ_CHUNK)
        if not chunk:
            break
        buf += chunk
        while True:
            nl = buf.find(b"\n")
            if nl == -1:
                if len(buf) > max_line:
                    if not skipping:
                        yield bytes(buf[:max_line]), True
                        skipping = True
                    buf.clear()
                break
            line = bytes(buf[:nl])
            del buf[: nl + 1]
            if skipping:
                skipping = False
                continue
            if len(line) > max_line:
                yield line[:max_line], True
            else:
                yield line, False
    if buf and not skipping:
        yield bytes(buf[:max_line]), len(buf) > max_line


def _describe_rc(rc: int | None) -> str:
    if rc is None:
        return "exit status unknown"
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        return f"killed by {name}"
    return f"exited with code {rc}"
