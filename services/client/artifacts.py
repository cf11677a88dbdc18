"""Reassemble ReadResultArtifacts chunks, in memory or into a directory, never
trusting the server's paths: absolute paths, '..' and escapes through symlinks
already in the directory are refused before a byte is written."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

import grpc

from services.client.errors import ClientError


def _refused(path: str, why: str) -> ClientError:
    return ClientError(grpc.StatusCode.PERMISSION_DENIED, f"refused artifact path {path!r} from server: {why}",
                       reason="PATH_NOT_ALLOWED", metadata={"path": path})


def _broken(message: str) -> ClientError:
    return ClientError(grpc.StatusCode.DATA_LOSS, message, reason="BAD_ARTIFACT_STREAM")


def check_relative(path: str) -> tuple[str, ...]:
    """The parts of a server-sent relative path, or ClientError if it could escape."""
    if not path or "\x00" in path:
        raise _refused(path, "empty or contains NUL")
    if "\\" in path:
        raise _refused(path, "backslash")
    if PurePosixPath(path).is_absolute() or PureWindowsPath(path).drive or path.startswith("~"):
        raise _refused(path, "absolute")
    parts = tuple(p for p in PurePosixPath(path).parts if p != ".")
    if not parts or ".." in parts:
        raise _refused(path, "leaves the artifact directory")
    return parts


def safe_destination(root: Path, path: str) -> Path:
    """root/path, refused when it (after resolving symlinks) is not strictly inside root."""
    parts = check_relative(path)
    base = root.resolve()
    target = base.joinpath(*parts)
    resolved = target.resolve()
    if resolved == base or not resolved.is_relative_to(base):
        raise _refused(path, "resolves outside the output directory")
    return target


@dataclass(frozen=True)
class ArtifactFile:
    path: str          # relative path as the server named it
    size: int
    local_path: Path | None = None


class ChunkAssembler:
    """Checks chunk order (offsets contiguous, one file at a time, eof, size)."""

    def __init__(self) -> None:
        self.current: str | None = None
        self.received = 0
        self.done: list[str] = []

    def accept(self, chunk) -> bool:
        """Validate one chunk; True when it starts a new file."""
        new = False
        if self.current is None:
            check_relative(chunk.path)
            if chunk.path in self.done:
                raise _broken(f"artifact {chunk.path!r} sent twice")
            self.current, self.received, new = chunk.path, 0, True
        elif chunk.path != self.current:
            raise _broken(f"artifact {self.current!r} ended without eof before {chunk.path!r}")
        if chunk.offset != self.received:
            raise _broken(f"artifact {chunk.path!r}: chunk at offset {chunk.offset}, expected {self.received}")
        self.received += len(chunk.data)
        return new

    def finish_file(self, chunk) -> None:
        if chunk.size and self.received != chunk.size:
            raise _broken(f"artifact {chunk.path!r}: got {self.received} bytes, size says {chunk.size}")
        self.done.append(chunk.path)
        self.current = None

    def finish(self) -> None:
        if self.current is not None:
            raise _broken(f"artifact stream ended inside {self.current!r}")


class DirectoryWriter:
    """Writes each file to a temporary name next to it, renamed into place on eof."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = None
        self._tmp: str | None = None
        self._dest: Path | None = None
        self.written: list[ArtifactFile] = []

    def start(self, path: str) -> None:
        dest = safe_destination(self.root, path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        safe_destination(self.root, path)  # re-check now that the parents exist
        if dest.is_dir():
            raise _refused(path, "a directory of that name exists")
        self._fd, self._tmp = tempfile.mkstemp(dir=dest.parent, prefix=".vpctl-part-")
        self._dest = dest

    def write(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]

    def finish(self, path: str, size: int) -> None:
        assert self._fd is not None and self._tmp is not None and self._dest is not None
        os.close(self._fd)
        self._fd = None
        os.replace(self._tmp, self._dest)
        self._tmp = None
        self.written.append(ArtifactFile(path, size, self._dest))

    def abort(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._tmp is not None:
            try:
                os.unlink(self._tmp)
            except FileNotFoundError:
                pass
            self._tmp = None
