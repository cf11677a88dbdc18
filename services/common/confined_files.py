"""Reading files inside one directory without ever leaving it.

Paths are walked one component at a time relative to an open directory file
descriptor, every open with O_NOFOLLOW: a symlink anywhere on the way is
refused by the kernel, not by a check that a racing writer could undo. A file
is served only when it is a regular file with exactly one hard link (a second
link may be a way in from outside). Special files (FIFOs, devices, sockets) are
never opened for reading: O_NONBLOCK keeps a FIFO from blocking, fstat refuses it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

MAX_PATH_CHARS = 1024
MAX_NAME_BYTES = 255
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class PathRefused(ValueError):
    """The relative path is malformed or leads somewhere a reader must not go."""


class NotAServableFile(ValueError):
    """The path names no regular, singly linked file inside the directory."""


@dataclass(frozen=True)
class OpenFile:
    name: str
    fd: int
    size: int


def check_relative(relative: str) -> tuple[str, ...]:
    """The components of a relative path, or PathRefused saying why not."""
    if "\x00" in relative:
        raise PathRefused("must not contain NUL characters")
    if len(relative) > MAX_PATH_CHARS:
        raise PathRefused(f"must be at most {MAX_PATH_CHARS} characters")
    pure = PurePosixPath(relative)
    if pure.is_absolute() or relative.startswith("\\"):
        raise PathRefused("must be relative to the directory")
    parts = tuple(part for part in pure.parts if part != ".")
    if not parts:
        raise PathRefused("names no file")
    for part in parts:
        if part == "..":
            raise PathRefused("must not contain '..'")
        if len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            raise PathRefused(f"a component is longer than {MAX_NAME_BYTES} bytes")
    return parts


@contextmanager
def open_root(root: Path) -> Iterator[int]:
    fd = os.open(root, _DIR_FLAGS)
    try:
        yield fd
    finally:
        os.close(fd)


def _servable(fd: int, name: str) -> OpenFile:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise NotAServableFile(f"{name!r} is not a regular file")
    if info.st_nlink != 1:
        raise NotAServableFile(f"{name!r} has {info.st_nlink} hard links")
    return OpenFile(name, fd, info.st_size)


def open_file(root_fd: int, relative: str) -> OpenFile:
    """Open relative under root_fd; the caller closes .fd. PathRefused / NotAServableFile otherwise."""
    parts = check_relative(relative)
    dir_fd = root_fd
    opened: list[int] = []
    try:
        for part in parts[:-1]:
            try:
                dir_fd = os.open(part, _DIR_FLAGS, dir_fd=dir_fd)
            except OSError as exc:
                raise NotAServableFile(f"{relative!r}: {part!r} is not a directory inside ({exc.strerror})") from None
            opened.append(dir_fd)
        try:
            fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            raise NotAServableFile(f"{relative!r} cannot be opened inside ({exc.strerror})") from None
    finally:
        for fd_ in opened:
            os.close(fd_)
    try:
        return _servable(fd, "/".join(parts))
    except NotAServableFile:
        os.close(fd)
        raise


def servable_files(root_fd: int, *, limit: int) -> list[str]:
    """Relative names of every servable file under root_fd, sorted, at most limit.
    Symlinks, special files and multiply linked files are left out."""
    found: list[str] = []

    def walk(dir_fd: int, prefix: str) -> None:
        with os.scandir(dir_fd) as entries:
            children = sorted(entries, key=lambda e: e.name)
        for entry in children:
            if len(found) >= limit:
                return
            name = f"{prefix}{entry.name}"
            if entry.is_symlink():
                continue
            if entry.is_dir(follow_symlinks=False):
                try:
                    child = os.open(entry.name, _DIR_FLAGS, dir_fd=dir_fd)
                except OSError:
                    continue
                try:
                    walk(child, f"{name}/")
                finally:
                    os.close(child)
            elif entry.is_file(follow_symlinks=False):
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
                    found.append(name)

    walk(root_fd, "")
    return sorted(found)
