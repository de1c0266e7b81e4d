"""Decide, per Vault secret, what a build must write: pure, no I/O, no randomness.

The rules (docs: "What idempotent means here"):
- a generated key that has a value keeps it; a missing one is generated;
- a static key is set to the contract's value when it differs;
- keys in Vault that the contract no longer names are kept (a build never deletes);
- nothing to change means no write at all, so a re-run creates no KV version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

MANAGED_BY_KEY = "managed-by"
MANAGED_BY = "secret-contract"
OWNER_KEY = "secret-contract-owner"

Action = Literal["create", "update", "noop", "conflict"]


@dataclass(frozen=True)
class GeneratedKey:
    generator: str
    length: int | None = None


@dataclass(frozen=True)
class Desired:
    """One Vault secret as a contract declares it."""

    path: str  # inside the mount
    owner: str  # the contract's stack name
    static: Mapping[str, str] = field(default_factory=dict)
    generated: Mapping[str, GeneratedKey] = field(default_factory=dict)

    def key_names(self) -> list[str]:
        return [*self.static, *self.generated]


@dataclass(frozen=True)
class Current:
    """What Vault holds at a path. `version` is the KV version a CAS write must name."""

    data: Mapping[str, object]
    version: int
    custom_metadata: Mapping[str, str] = field(default_factory=dict)
    deleted: bool = False  # the latest version was soft-deleted or destroyed

    @property
    def owner(self) -> str | None:
        return self.custom_metadata.get(OWNER_KEY)

    @property
    def managed_by(self) -> str | None:
        return self.custom_metadata.get(MANAGED_BY_KEY)


@dataclass(frozen=True)
class Change:
    path: str
    action: Action
    cas: int = 0
    set_static: Mapping[str, str] = field(default_factory=dict)
    generate: Mapping[str, GeneratedKey] = field(default_factory=dict)
    keep: Mapping[str, object] = field(default_factory=dict)  # current data carried over unchanged
    claim: bool = False  # record ownership in custom metadata
    recreated: bool = False
    reason: str = ""  # why a conflict

    @property
    def writes_data(self) -> bool:
        return self.action in ("create", "update")

    @property
    def writes(self) -> bool:
        """Whether applying it sends anything to Vault: data, or the ownership record."""
        return self.writes_data or self.claim

    def summary(self) -> str:
        """Key names only, never values."""
        parts = []
        if self.generate:
            parts.append("generated " + ", ".join(sorted(self.generate)))
        if self.set_static:
            parts.append("set " + ", ".join(sorted(self.set_static)))
        return "; ".join(parts)


def ownership_metadata(owner: str) -> dict[str, str]:
    return {MANAGED_BY_KEY: MANAGED_BY, OWNER_KEY: owner}


def diff(desired: Desired, current: Current | None) -> Change:
    """What to write so that Vault satisfies `desired`, given what it holds now."""
    if current is not None and (problem := _ownership_problem(desired, current)):
        return Change(desired.path, "conflict", reason=problem)
    if current is None:
        return Change(
            desired.path,
            "create",
            cas=0,
            set_static=dict(desired.static),
            generate=dict(desired.generated),
            claim=True,
        )
    data = current.data
    set_static = {k: v for k, v in desired.static.items() if data.get(k) != v}
    generate = {k: g for k, g in desired.generated.items() if k not in data}
    claim = current.owner != desired.owner or current.managed_by != MANAGED_BY
    if not set_static and not generate and not current.deleted:
        return Change(desired.path, "noop", cas=current.version, claim=claim)
    keep = {k: v for k, v in data.items() if k not in set_static}
    return Change(
        desired.path,
        "update",
        cas=current.version,
        set_static=set_static,
        generate=generate,
        keep=keep,
        claim=claim,
        recreated=current.deleted,
    )


def _ownership_problem(desired: Desired, current: Current) -> str:
    managed_by, owner = current.managed_by, current.owner
    if managed_by and managed_by != MANAGED_BY:
        return f"it is managed by '{managed_by}', not by secret-contract"
    if owner and owner != desired.owner:
        return f"it belongs to contract '{owner}'"
    return ""


def gaps(desired: Desired, current: Current | None) -> list[str]:
    """What Vault lacks of `desired`: a missing secret or key, or a differing static value."""
    if current is None or (current.deleted and not current.data):
        return ["missing secret"]
    found = []
    for key in desired.key_names():
        if key not in current.data:
            found.append(f"missing key '{key}'")
        elif key in desired.static and current.data[key] != desired.static[key]:
            found.append(f"key '{key}' differs from the contract's value")
    return found
