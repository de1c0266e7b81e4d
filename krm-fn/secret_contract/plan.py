"""Decide what a build may write to one Vault secret: pure, no I/O, no randomness.

The rules ("How a build treats Vault" in the README):
- a generated key that has a value keeps it; a key the contract gained is generated;
- a static key is set to the contract's value when it differs;
- keys the contract no longer names are kept (a build never deletes);
- nothing to change means no write, so a re-run creates no KV version;
- a secret whose latest version was deleted, destroyed or expired is never refilled with
  new generated values: that would silently rotate a credential (`rotate` does it on purpose);
  nor is a generated key that an earlier version holds and the latest lacks (a `kv put` of
  other keys, a `kv rollback` to before the key existed);
- a secret another tool manages, or that other contracts declare differently, is not touched;
- data nobody owns (the older script's, or written by hand) is never taken over by a build:
  a contract could otherwise claim any secret and then overwrite it; `migrate` adopts it
  explicitly, keeping its values. After a lost race to create a secret, the winner's data is
  joined only once its ownership record shows it was a build of this tool;
- values that already exist at another location of the same Secret (an older layout) are
  never forked into new ones: the build stops and names `migrate`.

This module applies these rules to a build; who may do what given the ownership record is
decided in `policy` (shared with the other commands), and `ownership` only encodes metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from secret_contract import generators, ownership, policy
from secret_contract.model import Desired, GeneratedKey
from secret_contract.ownership import Ownership
from secret_contract.policy import contracts as _contracts
from secret_contract.results import counted
from secret_contract.store import Entry

Action = Literal["create", "update", "claim", "noop", "conflict", "blocked"]


@dataclass(frozen=True)
class History:
    """What earlier versions hold of the generated keys the latest version lacks."""

    held: Mapping[str, int] = field(default_factory=dict)  # key -> newest earlier version holding it
    deleted: tuple[int, ...] = ()  # earlier versions that cannot be read and may be undeleted


@dataclass(frozen=True)
class Change:
    """What to do at one path. Data first (check-and-set on `cas`), then `metadata`."""

    action: Action
    cas: int = 0
    set_static: Mapping[str, str] = field(default_factory=dict, repr=False)
    generate: Mapping[str, GeneratedKey] = field(default_factory=dict)
    keep: Mapping[str, str] = field(default_factory=dict, repr=False)  # current data carried over unchanged
    metadata: Mapping[str, str | None] = field(default_factory=dict)
    reason: str = ""  # why a conflict or a block; what a recreation means
    recreated: bool = False
    # Unowned data that already satisfies this declaration: most likely a concurrent build
    # whose ownership record has not landed yet, so the caller re-reads before refusing.
    awaiting_owner: bool = False
    # Generated keys whose stored value another generator or length made: a build keeps them
    # (it never rotates), and says that the contract's change is not applied.
    unapplied: tuple[str, ...] = ()
    awaiting: tuple[str, ...] = ()  # provided keys nobody has written yet
    # Whether the version a data write makes is recorded as this tool's (`policy.records_write`):
    # then the ownership record always follows the data write, with that version in it.
    records_version: bool = False

    @property
    def writes_data(self) -> bool:
        return self.action in ("create", "update")

    @property
    def writes(self) -> bool:
        return self.writes_data or bool(self.metadata)

    @property
    def refused(self) -> bool:
        return self.action in ("conflict", "blocked")

    def summary(self) -> str:
        """Key names only, never values."""
        parts = []
        if self.generate:
            parts.append("generated " + ", ".join(sorted(self.generate)))
        if self.set_static:
            parts.append("set " + ", ".join(sorted(self.set_static)))
        return "; ".join(parts)


def diff(
    desired: Desired,
    current: Entry | None,
    former: Mapping[str, Entry | None] | None = None,
    raced: bool = False,
    history: History | None = None,
) -> Change:
    """What to write so that Vault satisfies `desired`, given what it holds now.

    `former` holds what the desired secret's former paths hold (read only when the path
    itself is empty). `raced` means the path was empty when first read and another writer
    filled it since. `history` says what earlier versions hold of the generated keys the
    latest version lacks.
    """
    if current is None:
        found = {path: entry for path, entry in (former or {}).items() if entry is not None and entry.ever_written}
        if found:
            return _found_at_former_path(desired, found)
        return _create(desired, 0)
    owners = ownership.read(current.custom_metadata)
    if owners.foreign_tool:
        return Change("conflict", reason=f"it is managed by '{owners.foreign_tool}', not by secret-contract")
    others = {s: d for s, d in owners.declarations.items() if s not in desired.stacks}
    ours = any(owners.declared_by(s) for s in desired.stacks)
    if not current.live:
        if others and not ours:
            return Change("conflict", reason=f"it is reserved by {_contracts(others)}")
        if not current.ever_written:
            return _create(desired, 0)  # metadata without a version: the path has never held data
        if not ours and not policy.may_take_back(owners, desired.stacks):
            # Its history is nobody's (or another stack released it): writing it again would
            # take it over. Restored, it is adopted with `migrate` or taken back by its stack.
            return Change("blocked", reason=_not_ours_deleted(desired, current, owners))
        return _deleted_history(desired, current, owners)
    if owners.unowned:
        return _adopt(desired, current, raced)
    if not owners.declarations:
        if not policy.may_take_back(owners, desired.stacks):
            return Change("blocked", reason=_released(desired, owners))
        return _update(desired, current, owners, [], history or History())
    disagreeing = sorted(s for s, digest in others.items() if digest is not None and not desired.agrees(digest))
    if disagreeing:
        return Change("conflict", reason=_disagreement(desired, current, disagreeing))
    if others and not ours:
        gaps = _mismatches(desired, current.data)
        if gaps:
            return Change("conflict", reason=f"{_contracts(others)} declares it differently ({'; '.join(gaps)})")
        metadata = {**ownership.declare(desired.declarations()), **ownership.taken_back(owners, desired.stacks)}
        return Change("claim", cas=current.version, metadata=metadata)
    unknown = sorted(s for s, digest in others.items() if digest is None)
    return _update(desired, current, owners, unknown, history or History())


def _create(desired: Desired, cas: int) -> Change:
    return Change(
        "create",
        cas=cas,
        set_static=dict(desired.static),
        generate=dict(desired.generated),
        metadata={
            **ownership.claim(desired.declarations(), ownership.CREATED),
            **(ownership.record_provided(desired.provided) if desired.provided else {}),
        },
        awaiting=desired.provided,
        records_version=True,
    )


def _update(desired: Desired, current: Entry, owners: Ownership, unknown: list[str], history: History) -> Change:
    data = current.data
    set_static = {k: v for k, v in desired.static.items() if data.get(k) != v}
    generate = {k: g for k, g in desired.generated.items() if k not in data}
    # A key `prune` dropped was left in older versions on purpose: declared again, it is new.
    missing = sorted(k for k in generate if k not in owners.dropped)
    held = {k: history.held[k] for k in missing if k in history.held}
    if held:
        return Change("blocked", reason=_held_earlier(desired, current, held))
    if missing and history.deleted:
        return Change("blocked", reason=_maybe_held(desired, missing, history.deleted))
    if unknown and (set_static or generate):
        # Another contract shares it, recorded by an earlier release without its declaration:
        # changing the data could undo what that contract relies on.
        gaps = _mismatches(desired, data)
        return Change("conflict", reason=f"it is shared with {_contracts(unknown)} ({'; '.join(gaps)})")
    unapplied = _unapplied(desired, data)
    awaiting = tuple(k for k in desired.provided if k not in data)
    metadata = _record(desired, owners)
    if owners.dropped & set(generate):
        metadata.update(ownership.record_dropped(owners.dropped - set(generate)))
    if not set_static and not generate:
        action: Action = "noop" if not metadata else "claim"
        return Change(action, cas=current.version, metadata=metadata, unapplied=unapplied, awaiting=awaiting)
    keep = {k: v for k, v in data.items() if k not in set_static}
    return Change(
        "update",
        cas=current.version,
        set_static=set_static,
        generate=generate,
        keep=keep,
        metadata=metadata,
        unapplied=unapplied,
        awaiting=awaiting,
        records_version=policy.records_write(owners, current.version),
    )


def _record(desired: Desired, owners: Ownership) -> dict[str, str | None]:
    """The metadata changes that make the record say what a build of `desired` holds: its
    declarations, the provided keys, and a stack that released it taking it back."""
    record = {s: d for s, d in desired.declarations().items() if owners.declarations.get(s) != d}
    metadata: dict[str, str | None] = dict(ownership.declare(record)) if record else {}
    if owners.managed_by is None:
        metadata = {ownership.MANAGED_BY_KEY: ownership.MANAGED_BY, **metadata}
    if owners.provided != frozenset(desired.provided):
        metadata.update(ownership.record_provided(desired.provided))
    metadata.update(ownership.taken_back(owners, desired.stacks))
    if owners.owner is None:
        metadata[ownership.OWNER_KEY] = min(desired.stacks)
    return metadata


def _unapplied(desired: Desired, data: Mapping[str, str]) -> tuple[str, ...]:
    """Generated keys whose stored value the declared generator and length could not make
    (the contract changed `generate` or `length` after the value was made)."""
    return tuple(
        sorted(
            k
            for k, g in desired.generated.items()
            if k in data and generators.implausible(g.generator, g.length, data[k]) is not None
        )
    )


def _adopt(desired: Desired, current: Entry, raced: bool) -> Change:
    """Data nobody owns is never taken over. When it satisfies this declaration it may be a
    concurrent build's whose ownership record has not landed yet: the caller re-reads for a
    moment before refusing. After a lost race to create the path, that is the only way to join
    it: data another writer put there without a record (by hand, say) is not this tool's."""
    gaps = _mismatches(desired, current.data)
    if raced:
        what = f"with other values ({gaps[0]})" if gaps else f"in {counted(current.version, 'version')}"
        return Change(
            "conflict",
            reason=f"another writer created it at the same time {what} and recorded no ownership; a build never "
            "takes over a secret it did not create: adopt it with `secret-contract migrate` if it is meant for "
            "this contract",
            awaiting_owner=not gaps,
        )
    how = f"that differ from this contract ({'; '.join(gaps)})" if gaps else "that match this contract"
    return Change(
        "blocked",
        reason=f"it holds values no contract owns (written by another tool or by hand) {how}; a build never takes "
        "over a secret it did not create: adopt it with `secret-contract migrate` (its values are kept)"
        + ("" if gaps else " if it is meant for this contract"),
        awaiting_owner=not gaps,
    )


def _released(desired: Desired, owners: Ownership) -> str:
    return policy.refusal_released(owners, desired.stacks) or policy.holder(owners)


def _not_ours_deleted(desired: Desired, current: Entry, owners: Ownership) -> str:
    return (
        f"its latest version (v{current.version}) is {current.latest} and no declaration of "
        f"{_contracts(desired.stacks)} is recorded on it ({policy.holder(owners)}); a build does not write over a "
        f"history it does not own. Restore it (`bao kv undelete -mount={desired.mount} -versions={current.version} "
        f"{desired.path}`), then adopt it with `secret-contract migrate`"
    )


def _maybe_held(desired: Desired, keys: list[str], deleted: tuple[int, ...]) -> str:
    names = ", ".join(repr(k) for k in keys)
    versions = ("version " if len(deleted) == 1 else "versions ") + ", ".join(f"v{v}" for v in deleted)
    were = "was" if len(deleted) == 1 else "were"
    return (
        f"{_generated_keys(len(keys))} {names} {_are(len(keys))} missing from its latest version, and earlier "
        f"{versions} {were} deleted (or expired) and may hold them: a new value could replace a credential "
        f"in use. Undelete them so the build can look (`bao kv undelete -mount={desired.mount} -versions="
        f"{','.join(str(v) for v in deleted)} {desired.path}`), destroy them if they do not matter, or replace the "
        "keys on purpose with `secret-contract rotate`"
    )


def _generated_keys(n: int) -> str:
    return "generated key" if n == 1 else "generated keys"


def _are(n: int) -> str:
    return "is" if n == 1 else "are"


def _held_earlier(desired: Desired, current: Entry, held: Mapping[str, int]) -> str:
    keys = ", ".join(f"'{k}' (v{v})" for k, v in held.items())
    newest = max(held.values())
    return (
        f"{_generated_keys(len(held))} {keys} {_are(len(held))} missing from its latest version "
        f"(v{current.version}) but an earlier version holds them (a `kv put` without them, or a `kv rollback`); "
        "a new value would replace a credential in use. "
        f"Restore them (`bao kv rollback -mount={desired.mount} -version={newest} {desired.path}`, or "
        f"`bao kv patch -mount={desired.mount} {desired.path} KEY=VALUE` with the value of that version), or replace "
        "them on purpose with `secret-contract rotate`"
    )


def _deleted_history(desired: Desired, current: Entry, owners: Ownership) -> Change:
    how = {"deleted": "was deleted", "destroyed": "was destroyed", "none": "is gone"}[current.latest]
    when = f" at {current.deletion_time}" if current.deletion_time else ""
    if desired.generated:
        return Change(
            "blocked",
            reason=f"its latest version (v{current.version}) {how}{when} (soft delete or delete_version_after); "
            f"new values for {', '.join(sorted(desired.generated))} would replace a credential in use. Restore it "
            f"(`bao kv undelete -mount={desired.mount} -versions={current.version} {desired.path}`, or "
            "`kv rollback` to an older version), or replace it on purpose with `secret-contract rotate`",
        )
    # Static values only: writing them again restores exactly what was there.
    return Change(
        "update",
        cas=current.version,
        set_static=dict(desired.static),
        metadata=_record(desired, owners),
        records_version=policy.records_write(owners, current.version),
        recreated=True,
        reason=f"its latest version {how}{when}; the contract's static values were written again",
    )


def _found_at_former_path(desired: Desired, found: Mapping[str, Entry]) -> Change:
    path, entry = next(iter(found.items()))
    owners = ownership.read(entry.custom_metadata)
    refusal = policy.refusal_as_source(owners, desired.stacks)
    if refusal:
        return Change(
            "conflict",
            reason=f"this Secret's values already exist at {desired.mount}/{path}: {refusal}; generating new ones here "
            "would fork a live credential",
        )
    return Change(
        "blocked",
        reason=f"this Secret's values already exist at {desired.mount}/{path} ({policy.holder(owners)}); generating "
        f"new ones here would fork a live credential. Move them with `secret-contract migrate "
        f"{' '.join(desired.stacks)}`",
    )


def _disagreement(desired: Desired, current: Entry, stacks: list[str]) -> str:
    gaps = _mismatches(desired, current.data)
    detail = "; ".join(gaps) if gaps else "a key, generator, length, static value or ExternalSecret field differs"
    return (
        f"{_contracts(stacks)} declares it differently ({detail}); make the declarations agree, then build them "
        f"together (`secret-contract add` with every stack that declares it)"
    )


def _mismatches(desired: Desired, data: Mapping[str, str]) -> list[str]:
    """How `data` falls short of `desired` (key names only)."""
    found = [f"no key '{k}'" for k in desired.written_keys() if k not in data]
    found += [f"key '{k}' holds another value" for k, v in desired.static.items() if k in data and data[k] != v]
    return found


def awaited(desired: Desired, key: str) -> str:
    """What to do about a provided key nobody has written yet."""
    return (
        f"provided by a person: secret-contract never writes it; write it with "
        f"`bao kv patch -mount={desired.mount} {desired.path} {key}=...`; ESO cannot deliver the Secret until then"
    )


def gaps(desired: Desired, current: Entry | None) -> list[str]:
    """What Vault lacks of `desired` (for `verify`): the secret, a key, a static value, or a
    generated value its generator could have produced. Key names only, never values."""
    if current is None:
        return ["missing secret"]
    if not current.live:
        when = f" at {current.deletion_time}" if current.deletion_time else ""
        return [f"latest version v{current.version} is {current.latest}{when}"]
    found = []
    for key in desired.key_names():
        value = current.data.get(key)
        if value is None:
            found.append(f"missing key '{key}'" + (f" ({awaited(desired, key)})" if key in desired.provided else ""))
        elif key in desired.static and value != desired.static[key]:
            found.append(f"key '{key}' differs from the contract's value")
        elif key in desired.generated:
            spec = desired.generated[key]
            problem = generators.implausible(spec.generator, spec.length, value)
            if problem:
                found.append(f"key '{key}' {problem}")
    return found
