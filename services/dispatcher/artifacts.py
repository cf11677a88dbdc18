"""Reading a mission's result files without ever leaving its artifact directory.

The directory is the one the worker named in result_ref (a file:// URI on a
filesystem the dispatcher shares with its workers). Absolute paths, "..",
symlinks, hard links and special files are refused (services/common/confined_files.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

import grpc

from services.common import confined_files
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


def _read(handle, name: str, size: int, size_per_chunk: int) -> Iterator[Chunk]:
    offset = 0
    while True:
        data = handle.read(size_per_chunk)
        eof = offset + len(data) >= size or not data
        yield Chunk(name, offset, data, size, eof)
        offset += len(data)
        if eof:
            return


def chunks(root: Path, relative: str, chunk_size: int) -> Iterator[Chunk]:
    """Every chunk of one file (relative) or of every servable file; see confined_files
    for what is served. A malformed or refused path is INVALID_ARGUMENT / PATH_NOT_ALLOWED."""
    if chunk_size < 0 or chunk_size > MAX_CHUNK:
        raise InvalidArgument(FieldViolation("chunk_size", f"must be within 0..{MAX_CHUNK}"))
    size_per_chunk = chunk_size or DEFAULT_CHUNK
    if relative:
        try:
            confined_files.check_relative(relative)
        except confined_files.PathRefused as exc:
            raise _refuse(relative, str(exc)) from None
    return _chunks(root, relative, size_per_chunk)


def _chunks(root: Path, relative: str, size_per_chunk: int) -> Iterator[Chunk]:
    with confined_files.open_root(root) as root_fd:
        names = [relative] if relative else confined_files.servable_files(root_fd, limit=MAX_FILES)
        for name in names:
            try:
                opened = confined_files.open_file(root_fd, name)
            except confined_files.NotAServableFile as exc:
                if relative:
                    raise _refuse(relative, str(exc)) from None
                continue  # replaced since the listing: skip it
            with os.fdopen(opened.fd, "rb") as handle:
                yield from _read(handle, opened.name, opened.size, size_per_chunk)
