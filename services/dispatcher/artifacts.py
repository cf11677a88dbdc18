"""Reading a mission's result files without ever leaving its artifact directory.

The directory is the one the worker named in result_ref (a file:// URI on a
filesystem the dispatcher shares with its workers). Absolute paths, ".." and
symlinks that resolve outside it are refused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

import grpc

from services.common.errors import FieldViolation, InvalidArgument, VpError

DEFAULT_CHUNK = 64 * 1024
MAX_CHUNK = 1024 * 1024
MAX_FILES = 10_000


class NoArtifacts(VpError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "NO_ARTIFACTS"


@dataclass(frozen=True)
class Chunk:
    path: str
    offset: int
    data: bytes
    size: int
    eof: bool


def artifact_root(result_ref: str, mission_id: str) -> Path:
    if not result_ref:
        raise NoArtifacts(f"mission {mission_id} has no result artifacts yet", metadata={"mission_id": mission_id})
    parsed = urlparse(result_ref)
    if parsed.scheme != "file":
        raise NoArtifacts(f"result_ref {result_ref!r} is not a local file:// location",
                          metadata={"mission_id": mission_id})
    root = Path(unquote(parsed.path))
    if not root.is_dir():
        raise NoArtifacts(f"artifact directory of {mission_id} is gone", metadata={"mission_id": mission_id})
    return root.resolve()


def _refuse(path: str, why: str) -> InvalidArgument:
    return InvalidArgument(FieldViolation("path", f"{path!r}: {why}"), reason="PATH_NOT_ALLOWED")


def resolve_inside(root: Path, relative: str) -> Path:
    pure = PurePosixPath(relative)
    if pure.is_absolute() or relative.startswith("\\"):
        raise _refuse(relative, "must be relative to the artifact directory")
    if any(part == ".." for part in pure.parts):
        raise _refuse(relative, "must not contain '..'")
    candidate = (root / pure).resolve()
    if not candidate.is_relative_to(root):
        raise _refuse(relative, "resolves outside the artifact directory (symlink)")
    if not candidate.is_file():
        raise InvalidArgument(FieldViolation("path", f"{relative!r} is not a file in the artifact directory"))
    return candidate


def files_in(root: Path) -> list[tuple[str, Path]]:
    """Regular files under root, sorted; anything resolving outside is skipped."""
    found = []
    for path in sorted(root.rglob("*")):
        if len(found) >= MAX_FILES:
            break
        resolved = path.resolve()
        if resolved.is_file() and resolved.is_relative_to(root) and not path.is_symlink():
            found.append((path.relative_to(root).as_posix(), resolved))
    return found


def chunks(root: Path, relative: str, chunk_size: int) -> Iterator[Chunk]:
    if chunk_size < 0 or chunk_size > MAX_CHUNK:
        raise InvalidArgument(FieldViolation("chunk_size", f"must be within 0..{MAX_CHUNK}"))
    size_per_chunk = chunk_size or DEFAULT_CHUNK
    targets = [(relative, resolve_inside(root, relative))] if relative else files_in(root)
    for name, path in targets:
        size = path.stat().st_size
        with path.open("rb") as handle:
            offset = 0
            while True:
                data = handle.read(size_per_chunk)
                eof = offset + len(data) >= size or not data
                yield Chunk(name, offset, data, size, eof)
                offset += len(data)
                if eof:
                    break
