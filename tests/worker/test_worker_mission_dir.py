"""Mission directories: id validation, receipt and the sync_ready marker."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from services.common.contracts.vp.v1 import mission_pb2
from services.common.errors import InvalidArgument
from services.worker import mission_dir as md

STARTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
FINISHED = STARTED + timedelta(seconds=12.5)


def finalize(directory: Path, **overrides):
    kwargs = dict(
        mission_id="m-1", vp_id="vp.coder.primary", attempt=2, run_id="r-9", outcome="completed",
        summary="all good", error=None, started_at=STARTED, finished_at=FINISHED, artifacts=None,
    )
    kwargs.update(overrides)
    return md.finalize(directory, **kwargs)


@pytest.mark.parametrize("bad", ["a/b", "..", "../x", "x/../../y", "/abs", ".hidden", "", "a" * 129, "sp ace"])
def test_mission_ids_that_could_escape_are_refused(workspace, bad):
    with pytest.raises(InvalidArgument):
        md.mission_dir_for(workspace, bad)
    with pytest.raises(InvalidArgument):
        md.prepare(workspace, bad)


def test_mission_dir_layout(workspace):
    assert md.mission_dir_for(workspace, "m-abc:1.x_y") == workspace / "missions" / "m-abc:1.x_y"
    directory = md.prepare(workspace, "m-abc")
    assert directory.is_dir() and directory == workspace / "missions" / "m-abc"


def test_receipt_content(workspace):
    directory = md.prepare(workspace, "m-1")
    (directory / "result.md").write_text("hello\n")
    (directory / "sub").mkdir()
    (directory / "sub" / "data.bin").write_bytes(b"\x00" * 10)
    ref = finalize(directory)

    assert ref == directory.resolve().as_uri() and ref.startswith("file://")
    receipt = json.loads((directory / "mission_receipt.json").read_text())
    assert receipt["mission_id"] == "m-1"
    assert receipt["vp_id"] == "vp.coder.primary"
    assert receipt["attempt"] == 2 and receipt["run_id"] == "r-9"
    assert receipt["outcome"] == "completed" and receipt["summary"] == "all good"
    assert receipt["error"] is None
    assert receipt["started_at"] == "2026-01-02T03:04:05+00:00"
    assert receipt["finished_at"] == "2026-01-02T03:04:17.500000+00:00"
    assert datetime.fromisoformat(receipt["started_at"]).utcoffset() == timedelta(0)
    assert receipt["duration_seconds"] == 12.5
    assert receipt["artifacts"] == [
        {"path": "result.md", "size": 6, "sha256": hashlib.sha256(b"hello\n").hexdigest()},
        {"path": "sub/data.bin", "size": 10, "sha256": hashlib.sha256(b"\x00" * 10).hexdigest()},
    ]
    ready = json.loads((directory / "sync_ready.json").read_text())
    assert ready["mission_id"] == "m-1" and ready["receipt"] == "mission_receipt.json"
    assert ready["receipt_sha256"] == hashlib.sha256((directory / "mission_receipt.json").read_bytes()).hexdigest()
    assert md.is_ready(directory)
    assert not [p for p in directory.iterdir() if p.name.endswith(".tmp")]


def test_sync_ready_is_written_only_after_the_receipt(workspace, monkeypatch):
    directory = md.prepare(workspace, "m-1")
    order = []
    real_write = md._write_atomic

    def spy(path: Path, text: str) -> None:
        order.append(path.name)
        if path.name == md.SYNC_READY_FILE:
            assert (path.parent / md.RECEIPT_FILE).is_file(), "receipt must exist before the marker"
        else:
            assert not (path.parent / md.SYNC_READY_FILE).exists(), "marker must not exist before the receipt"
        real_write(path, text)

    monkeypatch.setattr(md, "_write_atomic", spy)
    finalize(directory)
    assert order == [md.RECEIPT_FILE, md.SYNC_READY_FILE]


def test_failed_receipt_with_error_and_explicit_artifacts(workspace):
    directory = md.prepare(workspace, "m-1")
    (directory / "stderr.log").write_text("boom")
    (directory / "other.txt").write_text("not listed")
    error = mission_pb2.MissionError(code="EXECUTOR_EXIT_NONZERO", message="exit 3")
    finalize(directory, outcome="failed", error=error, artifacts=["stderr.log"])
    receipt = md.read_receipt(directory)
    assert receipt["error"] == {"code": "EXECUTOR_EXIT_NONZERO", "message": "exit 3"}
    assert [a["path"] for a in receipt["artifacts"]] == ["stderr.log"]

    with pytest.raises(ValueError, match="inside the mission directory"):
        finalize(directory, artifacts=[str(workspace / "elsewhere.txt")])


def test_symlinks_are_not_listed_as_artifacts(workspace, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    directory = md.prepare(workspace, "m-1")
    (directory / "leak").symlink_to(secret)
    finalize(directory)
    assert md.read_receipt(directory)["artifacts"] == []


def test_prepare_clears_a_previous_attempts_marker(workspace):
    directory = md.prepare(workspace, "m-1")
    finalize(directory)
    assert md.is_ready(directory)
    again = md.prepare(workspace, "m-1")
    assert again == directory
    assert not md.is_ready(directory)
    assert not (directory / md.RECEIPT_FILE).exists()


def test_finalize_rejects_bad_input(workspace):
    directory = md.prepare(workspace, "m-1")
    with pytest.raises(ValueError):
        finalize(directory, started_at=datetime(2026, 1, 1))  # naive
    with pytest.raises(ValueError):
        finalize(directory, outcome="exploded")
    assert not md.is_ready(directory)
