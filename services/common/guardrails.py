"""Where a mission may write: the target_path policy.

Used twice with the same rules: by the dispatcher when a mission is accepted
and by the worker right before executing it (the filesystem may have changed
in between). Depends on nothing but services.common.errors.

A target_path is accepted only if it is absolute, has no ".." component, and
after resolving symlinks lies inside one of the allowed roots and inside none
of the protected roots (protected wins). No allowed roots means no target_path
is accepted at all. An empty target_path means "no target" and gives None.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from services.common.errors import PathNotAllowed

RULE_INVALID = "invalid"
RULE_NOT_ABSOLUTE = "not_absolute"
RULE_PARENT_REFERENCE = "parent_reference"
RULE_NO_ALLOWED_ROOTS = "no_allowed_roots"
RULE_OUTSIDE_ALLOWED = "outside_allowed_roots"
RULE_PROTECTED = "protected_root"


def _as_roots(roots: Iterable[str | os.PathLike[str]], name: str) -> tuple[Path, ...]:
    if isinstance(roots, (str, bytes, os.PathLike)):
        roots = (roots,)  # type: ignore[assignment]
    out: list[Path] = []
    for root in roots:
        path = Path(root)
        if not path.is_absolute():
            raise ValueError(f"{name} must be absolute paths, got {str(root)!r}")
        out.append(path)
    return tuple(out)


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


@dataclass(frozen=True)
class PathPolicy:
    allowed_roots: tuple[Path, ...] = ()
    protected_roots: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_roots", _as_roots(self.allowed_roots, "allowed_roots"))
        object.__setattr__(self, "protected_roots", _as_roots(self.protected_roots, "protected_roots"))

    def check_target_path(self, path: str) -> Path | None:
        """The resolved target path, None for an empty one; PathNotAllowed if refused."""
        if path is None or path == "":
            return None
        if not isinstance(path, str) or "\x00" in path or not path.strip():
            self._refuse(path, RULE_INVALID, "target_path is not a valid path")
        if not os.path.isabs(path):
            self._refuse(path, RULE_NOT_ABSOLUTE, "target_path must be absolute")
        if ".." in PurePosixPath(path).parts:
            self._refuse(path, RULE_PARENT_REFERENCE, "target_path must not contain '..' components")

        lexical = Path(os.path.normpath(path))
        # realpath resolves every existing component, including a dangling
        # symlink at the end (writing through it would land at its target).
        resolved = Path(os.path.realpath(path))
        protected = [(root, Path(os.path.realpath(root))) for root in self.protected_roots]
        for root, real_root in protected:
            if _inside(resolved, real_root) or _inside(lexical, root):
                self._refuse(path, RULE_PROTECTED, f"target_path is inside protected root {str(root)!r}")
        if not self.allowed_roots:
            self._refuse(path, RULE_NO_ALLOWED_ROOTS, "no target_path is allowed for this lane (no allowed roots)")
        if not any(_inside(resolved, Path(os.path.realpath(root))) for root in self.allowed_roots):
            detail = "" if resolved == lexical else f" (resolves to {str(resolved)!r})"
            self._refuse(path, RULE_OUTSIDE_ALLOWED, f"target_path is outside every allowed root{detail}")
        return resolved

    @staticmethod
    def _refuse(path: object, rule: str, message: str) -> None:
        raise PathNotAllowed(f"{message}: {str(path)!r}", metadata={"target_path": str(path), "rule": rule})
