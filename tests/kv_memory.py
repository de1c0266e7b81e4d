"""An in-memory KV version 2 store with the semantics secret-contract relies on: versions,
check-and-set, soft delete, destroy, expiry through delete_version_after, custom metadata
with merge patches, metadata-only entries, listing, and a policy.

It exists for millisecond tests of the core. It is trusted only because the behavioural
suite (test_behaviour.py) runs every case against it and against a real OpenBao server.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from secret_contract.errors import CasConflict, VaultPermissionDenied, VaultRequestFailed
from secret_contract.store import Entry, Version, WriteCheck, kv_path


@dataclass
class _Version:
    data: dict[str, str]
    created: float
    deleted_at: float | None = None  # soft delete, or expiry through delete_version_after
    destroyed: bool = False


@dataclass
class _Secret:
    versions: dict[int, _Version] = field(default_factory=dict)
    current: int = 0
    custom: dict[str, str] = field(default_factory=dict)
    delete_version_after: float = 0.0


Policy = Callable[[str, str], bool]  # (capability, API path) -> allowed


@dataclass
class Clock:
    """Time that passes only when a test says so: expiry is tested without sleeping."""

    now: float = field(default_factory=time.time)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class MemoryKV:
    """A `SecretStore` over dicts; thread-safe. `policy` decides which writes are allowed;
    `clock` (the wall clock unless given) dates versions, deletions and expiry."""

    def __init__(
        self,
        mounts: tuple[str, ...] = ("secret",),
        policy: Policy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.mounts = set(mounts)
        self.policy = policy
        self.clock = clock
        self._secrets: dict[tuple[str, str], _Secret] = {}
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    @property
    def request_counts(self) -> dict[str, int]:
        return dict(self.counts)

    # --- SecretStore --------------------------------------------------------------------------

    def check_mount(self, mount: str) -> None:
        self._count("GET")
        if mount not in self.mounts:
            raise VaultPermissionDenied(f"memory: mount '{mount}' does not exist")

    def read(self, mount: str, path: str) -> Entry | None:
        self._require("read", kv_path(mount, "data", path))
        with self._lock:
            self._count("GET")
            secret = self._secrets.get((mount, path))
            if secret is None:
                return None
            if secret.current == 0:
                return Entry({}, 0, dict(secret.custom), "none")
            latest = secret.versions[secret.current]
            deleted_at = latest.deleted_at
            if latest.destroyed:
                return Entry({}, secret.current, dict(secret.custom), "destroyed", _stamp(deleted_at))
            if deleted_at is not None and deleted_at <= self.clock():
                return Entry({}, secret.current, dict(secret.custom), "deleted", _stamp(deleted_at))
            return Entry(dict(latest.data), secret.current, dict(secret.custom))

    def read_version(self, mount: str, path: str, version: int) -> Version:
        self._require("read", kv_path(mount, "data", path))
        with self._lock:
            self._count("GET")
            secret = self._secrets.get((mount, path))
            found = secret.versions.get(version) if secret else None
            if found is None:
                return Version("none")
            if found.destroyed:
                return Version("destroyed")
            if found.deleted_at is not None and found.deleted_at <= self.clock():
                return Version("deleted")
            return Version("live", dict(found.data))

    def list(self, mount: str, folder: str) -> list[str] | None:
        if self.policy is not None and not self.policy("list", kv_path(mount, "metadata", folder)):
            return None
        with self._lock:
            self._count("GET")
            names = set()
            for m, path in self._secrets:
                if m == mount and path.startswith(folder):
                    rest = path[len(folder) :]
                    head, sep, _ = rest.partition("/")
                    names.add(head + sep)
            return sorted(names)

    def write(self, mount: str, path: str, data: Mapping[str, str], cas: int) -> int:
        self._allow(WriteCheck("update" if (mount, path) in self._secrets else "create", mount, path))
        with self._lock:
            self._count("POST")
            secret = self._secrets.setdefault((mount, path), _Secret())
            if cas != secret.current:
                raise CasConflict(f"{mount}/{path}", cas)
            return self._add_version(secret, data)

    def _add_version(self, secret: _Secret, data: Mapping[str, str]) -> int:
        now = self.clock()
        expiry = now + secret.delete_version_after if secret.delete_version_after > 0 else None
        secret.current += 1
        secret.versions[secret.current] = _Version(dict(data), now, expiry)
        return secret.current

    def update_metadata(self, mount: str, path: str, changes: Mapping[str, str | None]) -> None:
        self._allow(WriteCheck("metadata", mount, path))
        with self._lock:
            self._count("PATCH")
            secret = self._secrets.get((mount, path))
            if secret is None:
                raise VaultRequestFailed(f"memory: not found: write metadata of {mount}/{path} (HTTP 404)")
            for key, value in changes.items():
                if value is None:
                    secret.custom.pop(key, None)
                else:
                    secret.custom[key] = value

    def delete(self, mount: str, path: str) -> None:
        self._allow(WriteCheck("delete", mount, path))
        with self._lock:
            self._count("DELETE")
            self._secrets.pop((mount, path), None)

    def denied(self, checks: list[WriteCheck]) -> list[WriteCheck]:
        self._count("POST")
        return [c for c in checks if self.policy is not None and not self.policy(c.capability, c.api_path)]

    # --- what an operator does by hand (the tests' side) -----------------------------------

    def seed(self, mount: str, path: str, data: Mapping[str, str], custom: Mapping[str, str] | None = None) -> None:
        with self._lock:
            secret = self._secrets.setdefault((mount, path), _Secret())
            self._add_version(secret, data)
            if custom is not None:
                secret.custom = dict(custom)

    def reserve(self, mount: str, path: str, custom: Mapping[str, str]) -> None:
        """Metadata without a version (what a PushSecret writes before its data)."""
        with self._lock:
            self._secrets.setdefault((mount, path), _Secret()).custom.update(custom)

    def soft_delete(self, mount: str, path: str) -> None:
        with self._lock:
            secret = self._secrets[(mount, path)]
            secret.versions[secret.current].deleted_at = self.clock()

    def destroy(self, mount: str, path: str) -> None:
        with self._lock:
            secret = self._secrets[(mount, path)]
            for version in secret.versions.values():
                version.destroyed = True

    def expire_after(self, mount: str, path: str, seconds: float) -> None:
        """delete_version_after on the path: versions written from now on expire (as in Vault)."""
        with self._lock:
            self._secrets.setdefault((mount, path), _Secret()).delete_version_after = seconds

    def versions(self, mount: str, path: str) -> int:
        secret = self._secrets.get((mount, path))
        return secret.current if secret else 0

    def data(self, mount: str, path: str, version: int | None = None) -> dict[str, str] | None:
        secret = self._secrets.get((mount, path))
        if secret is None or secret.current == 0:
            return None
        return dict(secret.versions[version or secret.current].data)

    def custom(self, mount: str, path: str) -> dict[str, str]:
        secret = self._secrets.get((mount, path))
        return dict(secret.custom) if secret else {}

    def paths(self, mount: str) -> list[str]:
        return sorted(p for m, p in self._secrets if m == mount)

    def _allow(self, check: WriteCheck) -> None:
        self._require(check.capability, check.api_path)

    def _require(self, capability: str, api_path: str) -> None:
        if self.policy is not None and not self.policy(capability, api_path):
            raise VaultPermissionDenied(f"memory: permission denied to {capability} {api_path}")

    def _count(self, method: str) -> None:
        self.counts[method] += 1


def _stamp(when: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when)) if when else ""
