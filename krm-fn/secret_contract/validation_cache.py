"""Contracts that already passed the JSON schema, remembered between runs.

A build of an unchanged contract then skips the schema check, and with it the import of
jsonschema, which is most of a small build's cold start. An entry is an empty file whose
name is a digest of the contract's canonical JSON, the schema's text and this release:
nothing of the contract is stored. The semantic rules run every time regardless.

The directory is `$XDG_CACHE_HOME/secret-contract/schema-ok` (else `~/.cache/...`), created
0700; where it cannot be created (a read-only container) nothing is remembered.
SECRET_CONTRACT_SCHEMA_CACHE=false turns it off. It holds at most MAX_ENTRIES entries (unless
given another bound): a hit refreshes an entry's mtime, and past the bound the least recently
used go first (entries of older releases and edited contracts are never hit again).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from secret_contract import __version__
from secret_contract.settings import flag

DISABLE_ENV = "SECRET_CONTRACT_SCHEMA_CACHE"
MAX_ENTRIES = 1000


def keep_entries(max_entries: int) -> int:
    """Pruned down to this many, so a full cache is not listed again at every new contract."""
    return max_entries * 3 // 4


class ValidationCache:
    def __init__(self, directory: str | None, schema_text: str, max_entries: int = MAX_ENTRIES) -> None:
        self.directory = directory
        self.max_entries = max_entries
        self._salt = hashlib.sha256(f"{__version__}\0{schema_text}".encode()).hexdigest()

    @classmethod
    def from_env(cls, env: Mapping[str, str], schema_text: str, max_entries: int = MAX_ENTRIES) -> ValidationCache:
        if not flag(env, DISABLE_ENV, default=True):
            return cls(None, schema_text, max_entries)
        base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".cache")
        return cls(os.path.join(base, "secret-contract", "schema-ok"), schema_text, max_entries)

    def key(self, obj: Any) -> str | None:
        if self.directory is None:
            return None
        try:
            text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        except (TypeError, ValueError):
            return None  # not plain JSON data (keys of mixed types): always checked
        return hashlib.sha256(f"{self._salt}\0{text}".encode()).hexdigest()

    def known(self, key: str | None) -> bool:
        if key is None or self.directory is None:
            return False
        entry = os.path.join(self.directory, key)
        try:
            os.utime(entry)  # recently used: kept when the cache is pruned
        except FileNotFoundError:
            return False
        except OSError:
            return os.path.exists(entry)  # a cache this user cannot write: still a hit
        return True

    def remember(self, key: str | None) -> None:
        if key is None or self.directory is None:
            return
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            os.close(os.open(os.path.join(self.directory, key), os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError:
            return  # nothing remembered; the next build checks again
        self._bound(self.directory)

    def _bound(self, directory: str) -> None:
        """Past max_entries, delete the least recently used entries down to three quarters of it."""
        try:
            with os.scandir(directory) as listing:
                entries = [(e.stat().st_mtime_ns, e.path) for e in listing if e.is_file()]
        except OSError:
            return
        if len(entries) <= self.max_entries:
            return
        entries.sort()
        for _, path in entries[: len(entries) - keep_entries(self.max_entries)]:
            # Gone already (another build pruning at once): nothing to do.
            with contextlib.suppress(OSError):
                os.unlink(path)
