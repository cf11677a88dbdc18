"""Where a session's workspace may be: the rule AcquireLease applies when it
creates a session. A workspace is where a worker writes and where artifacts are
later read from, so a caller naming "/" (or any directory outside the
configured root) must not get one."""

from __future__ import annotations

import os
from pathlib import PurePosixPath

from services.common.errors import FieldViolation

MAX_WORKSPACE_CHARS = 4096


def workspace_violations(value: str, root: str | None, field: str = "workspace_dir") -> list[FieldViolation]:
    """Problems with value as a new session's workspace under root (None: no root configured)."""
    if not value.startswith("/"):
        return [FieldViolation(field, "must be an absolute path")]
    if len(value) > MAX_WORKSPACE_CHARS:
        return [FieldViolation(field, f"at most {MAX_WORKSPACE_CHARS} characters")]
    if os.path.normpath(value) != value or value.startswith("//"):
        return [FieldViolation(field, "must be normalized (no '.', '..', repeated or trailing '/')")]
    if value == "/":
        return [FieldViolation(field, "must not be the filesystem root")]
    if root is not None and (value == root or not PurePosixPath(value).is_relative_to(root)):
        return [FieldViolation(field, f"must be a directory under the workspace root {root}")]
    return []


def normalized_root(value: str) -> str:
    """The configured root as an absolute, normalized path; "/" is refused."""
    root = os.path.normpath(os.path.abspath(os.path.expanduser(value)))
    if root == "/":
        raise ValueError("the workspace root must not be the filesystem root")
    return root
