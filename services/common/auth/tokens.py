"""Bearer tokens. The credentials file the services read holds only each token's
SHA-256, never the token: a leaked file grants nothing. Tokens are 256 random
bits, so a plain hash (no salt, no slow KDF) is enough to make them unguessable
from the file.

File format (JSON)::

    {"version": 1, "principals": [
        {"name": "simone", "role": "client", "token_sha256": "<hex>"},
        {"name": "coder", "role": "worker", "vp_ids": ["vp.coder.primary"], "token_sha256": "<hex>"}]}
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from services.common.auth.principals import Principal, Role

TOKEN_PREFIX = "vpt_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass
class TokenEntry:
    principal: Principal
    token_sha256: str

    def to_json(self) -> dict:
        entry = {"name": self.principal.name, "role": str(self.principal.role), "token_sha256": self.token_sha256}
        if self.principal.vp_ids:
            entry["vp_ids"] = sorted(self.principal.vp_ids)
        return entry


class TokenStore:
    """Token hash -> principal. Lookups hash the presented token; the dict lookup on a
    hash of a 256-bit secret leaks nothing useful through timing."""

    def __init__(self, entries: list[TokenEntry] = ()) -> None:
        self._by_hash: dict[str, Principal] = {}
        for entry in entries:
            self.add(entry)

    def add(self, entry: TokenEntry) -> None:
        self._by_hash[entry.token_sha256] = entry.principal

    def lookup(self, token: str) -> Principal | None:
        return self._by_hash.get(token_hash(token))

    @classmethod
    def load(cls, path: str | Path) -> "TokenStore":
        """ValueError with the reason when the file is malformed."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read credentials file {path}: {exc}") from None
        entries = []
        for index, item in enumerate(data.get("principals", []) if isinstance(data, dict) else []):
            try:
                role = Role(item["role"])
                digest = str(item["token_sha256"]).lower()
                if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                    raise ValueError("token_sha256 must be 64 hex digits")
                vp_ids = frozenset(item.get("vp_ids", [])) if role == Role.WORKER else frozenset()
                entries.append(TokenEntry(Principal(str(item["name"]), role, vp_ids), digest))
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}: principal #{index}: {exc}") from None
        return cls(entries)


def write_store(path: Path, entries: list[TokenEntry]) -> None:
    """Write the hashes-only credentials file (0644: it holds no secret)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"version": 1, "principals": [e.to_json() for e in entries]}, indent=2) + "\n")
    os.replace(tmp, path)


def write_secret(path: Path, text: str) -> None:
    """A token or key file readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
