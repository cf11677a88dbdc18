"""The per-mission directory inside a VP's workspace.

Layout: ``<workspace>/missions/<mission_id>/``, holding whatever the executor
wrote plus two files written by finalize():

* ``mission_receipt.json``: who ran what, when, with which outcome, and every
  artifact file (relative path, size, sha256);
* ``sync_ready.json``: written LAST, atomically; its presence means the
  directory is complete and may be synced or read.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from services.common.errors import FieldViolation, InvalidArgument
from services.common.timeutil import require_utc
from services.worker.executors.base import OUTCOMES

MISSION_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
MISSIONS_SUBDIR = "missions"
RECEIPT_FILE = "mission_receipt.json"
SYNC_READY_FILE = "sync_ready.json"
RECEIPT_SCHEMA = "vp.mission_receipt.v1"
SYNC_READY_SCHEMA = "vp.sync_ready.v1"
_RESERVED = frozenset({RECEIPT_FILE, SYNC_READY_FILE})


def validate_mission_id(mission_id: str) -> str:
    if not isinstance(mission_id, str) or not MISSION_ID_RE.match(mission_id):
        raise InvalidArgument(
            FieldViolation("mission_id", "must match ^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$ (no '/', no leading '.')")
        )
    return mission_id


def mission_dir_for(workspace_dir: str | os.PathLike[str], mission_id: str) -> Path:
    """``workspace_dir/missions/<mission_id>``; the id is validated so it cannot escape."""
    return Path(workspace_dir) / MISSIONS_SUBDIR / validate_mission_id(mission_id)


def prepare(workspace_dir: str | os.PathLike[str], mission_id: str) -> Path:
    """Create the mission directory for a new attempt and return it.

    A directory left by an earlier attempt is reused, but its sync_ready.json
    and receipt are removed first so it no longer reads as complete."""
    workspace = Path(workspace_dir)
    directory = mission_dir_for(workspace, mission_id)
    directory.mkdir(parents=True, exist_ok=True)
    real_missions = (workspace / MISSIONS_SUBDIR).resolve()
    if directory.resolve().parent != real_missions:
        raise InvalidArgument(FieldViolation("mission_id", "mission directory resolves outside the workspace"))
    for name in (SYNC_READY_FILE, RECEIPT_FILE):
        try:
            (directory / name).unlink()
        except FileNotFoundError:
            pass
    _fsync_dir(directory)
    return directory


def is_ready(mission_dir: str | os.PathLike[str]) -> bool:
    return (Path(mission_dir) / SYNC_READY_FILE).is_file()


def read_receipt(mission_dir: str | os.PathLike[str]) -> dict[str, Any]:
    return json.loads((Path(mission_dir) / RECEIPT_FILE).read_text(encoding="utf-8"))


def finalize(
    mission_dir: str | os.PathLike[str],
    *,
    mission_id: str,
    vp_id: str,
    attempt: int,
    run_id: str,
    outcome: str,
    summary: str,
    error: Mapping[str, str] | Any | None,
    started_at: datetime,
    finished_at: datetime,
    artifacts: Iterable[str | os.PathLike[str]] | None = None,
) -> str:
    """Write mission_receipt.json, then sync_ready.json; return the file:// URI
    of the mission directory (the mission's result_ref).

    ``artifacts``: files inside the mission directory (relative to it or
    absolute); None lists every regular file in it (symlinks are skipped).
    ``error``: None, a {"code", "message"} mapping or anything with ``code``
    and ``message`` attributes (e.g. vp.v1.MissionError)."""
    directory = Path(mission_dir)
    validate_mission_id(mission_id)
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}; expected one of {sorted(OUTCOMES)}")
    started = require_utc(started_at)
    finished = require_utc(finished_at)
    if not directory.is_dir():
        raise FileNotFoundError(f"mission directory {str(directory)!r} does not exist")

    root = directory.resolve()
    receipt: dict[str, Any] = {
        "schema": RECEIPT_SCHEMA,
        "mission_id": mission_id,
        "vp_id": vp_id,
        "attempt": int(attempt),
        "run_id": run_id,
        "outcome": outcome,
        "summary": summary or "",
        "error": _error_dict(error),
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "duration_seconds": round((finished - started).total_seconds(), 6),
        "artifacts": [_describe(root, p) for p in _artifact_paths(root, artifacts)],
    }
    receipt_text = json.dumps(receipt, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
    _write_atomic(directory / RECEIPT_FILE, receipt_text)

    ready = {
        "schema": SYNC_READY_SCHEMA,
        "mission_id": mission_id,
        "attempt": int(attempt),
        "run_id": run_id,
        "outcome": outcome,
        "receipt": RECEIPT_FILE,
        "receipt_sha256": hashlib.sha256(receipt_text.encode("utf-8")).hexdigest(),
        "finished_at": finished.isoformat(),
    }
    _write_atomic(directory / SYNC_READY_FILE, json.dumps(ready, indent=2) + "\n")
    return root.as_uri()


def _error_dict(error: Any) -> dict[str, str] | None:
    if error is None:
        return None
    if isinstance(error, Mapping):
        code, message = error.get("code", ""), error.get("message", "")
    else:
        code, message = getattr(error, "code", ""), getattr(error, "message", "")
    if not code and not message:
        return None
    return {"code": str(code or ""), "message": str(message or "")}


def _artifact_paths(root: Path, artifacts: Iterable[str | os.PathLike[str]] | None) -> list[Path]:
    if artifacts is None:
        found = []
        for dirpath, dirnames, filenames in os.walk(root):  # does not follow symlinked dirs
            dirnames.sort()
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if path.parent == root and (name in _RESERVED or name.startswith(".") and name.endswith(".tmp")):
                    continue
                if path.is_symlink() or not path.is_file():
                    continue
                found.append(path)
        return found
    out = []
    for item in artifacts:
        path = Path(item)
        if not path.is_absolute():
            path = root / path
        real = path.resolve()
        if not real.is_relative_to(root) or real == root:
            raise ValueError(f"artifact {str(item)!r} is not a file inside the mission directory")
        if not real.is_file():
            raise ValueError(f"artifact {str(item)!r} is not a regular file")
        out.append(real)
    return sorted(set(out))


def _describe(root: Path, path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(chunk)
            size += len(chunk)
    return {"path": path.relative_to(root).as_posix(), "size": size, "sha256": digest.hexdigest()}


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
