"""Who may do what with a Vault secret, given who holds it: the ownership rules every command
applies (a build through `plan`, and remove, prune, rotate and migrate through `operations`).

Pure: each function takes what the secret's custom metadata says (`ownership.Ownership`) and
the stacks involved, and returns a decision; nothing here reads Vault. The rules:
- a secret another tool manages is never changed or destroyed;
- a stack may change (rotate, prune keys of) only a secret it is recorded as declaring;
- a secret is destroyed only when this tool wrote every version, no other stack claims it
  (declares it in Vault's record or, the same way, in the repository; or released it) and it
  holds no value a person provided; otherwise the stack's claim is released and the values
  stay, with the other claims intact so that any of them can build it again; `release` (a
  platform's `make down`) only ever releases;
- a stack's claim passes only to contracts that declare the secret as that stack recorded it
  (the same declaration digest): a contract that declares the path differently never gets
  another stack's credential;
- data any contract owns is never "legacy" data to migrate from: it is that contract's live
  credential, and copying or deleting it would fork or destroy it;
- a secret kept after its declarers left is taken back only by a stack that released it:
  otherwise any contract could claim a credential by naming its path, and `migrate` does not
  adopt it either. Each releasing stack is recorded with the version it left, and keeps its
  claim for `remove`, which deletes such a secret on the same terms as above and only if no
  version was written since;
- "this tool wrote every version" is the record's `created` origin and, where recorded, the
  last version this tool wrote (`secret-contract-written-version`) being the latest: a newer
  one holds values a person or another tool wrote, so the secret is released, never destroyed,
  and `prune` drops none of its keys. A record of an earlier release has no such version and
  is trusted as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from secret_contract import ownership
from secret_contract.ownership import Ownership


def contracts(stacks: Mapping[str, object] | list[str] | set[str] | tuple[str, ...]) -> str:
    """`contract 'a'` or `contracts 'a', 'b'`, sorted."""
    names = sorted(stacks)
    label = "contract" if len(names) == 1 else "contracts"
    return f"{label} " + ", ".join(f"'{s}'" for s in names)


def holder(owners: Ownership) -> str:
    """Who holds a secret, for messages."""
    if owners.foreign_tool:
        return f"managed by '{owners.foreign_tool}'"
    if owners.declarations:
        return f"recorded for {contracts(owners.declarations)}"
    if owners.releases:
        return f"released by {contracts(owners.releases)}, values kept"
    return "no owner recorded: written by the older script or by hand"


def refusal_to_change(owners: Ownership, stack: str) -> str | None:
    """Why `stack` may not change this secret's data, or None when it may."""
    if owners.foreign_tool:
        return f"managed by '{owners.foreign_tool}'"
    if not owners.declared_by(stack):
        return f"not owned by contract '{stack}' ({holder(owners)})"
    return None


def refusal_as_source(owners: Ownership, stacks: tuple[str, ...]) -> str | None:
    """Why a secret may not be taken as values to move to where `stacks` now resolve it, or
    None when it may.

    Only data nobody owns (an older layout's), or a secret these same stacks own at their
    former location, may be moved: a secret another contract declares is that contract's live
    credential, and copying or deleting it would fork or destroy it (contracts that disagree
    on where a Secret lives are fixed in the contracts, not by moving its values)."""
    if owners.foreign_tool:
        return f"it is managed by '{owners.foreign_tool}'"
    released = refusal_released(owners, stacks)
    if released:
        return released
    others = sorted(set(owners.declarations) - set(stacks))
    if others:
        return (
            f"it is the live secret of {contracts(others)}, not data to migrate: make the contracts agree on where "
            "this Secret lives (the same layout and prefix) instead"
        )
    return None


def refusal_released(owners: Ownership, stacks: tuple[str, ...]) -> str | None:
    """Why `stacks` may not build, adopt or move a secret kept after its declarers left, or None
    when they may (or it is not such a secret): only a stack that released it takes it back."""
    if owners.foreign_tool or owners.declarations or not owners.releases or may_take_back(owners, stacks):
        return None
    back = " ".join(sorted({*owners.releases, *stacks}))
    return (
        f"it was released by {contracts(owners.releases)} (values kept) and no contract declares it now; only a "
        f"stack that released it takes it back, by building it (together with {contracts(stacks)} to share it: "
        f"`secret-contract add {back}`)"
    )


def may_take_back(owners: Ownership, stacks: tuple[str, ...]) -> bool:
    """Whether a build of `stacks` may record itself on a secret no contract declares any more:
    only a stack that released it (a `make down` followed by a `make up`)."""
    return any(owners.released(s) for s in stacks)


Disposition = Literal["delete", "release", "keep"]


@dataclass(frozen=True)
class Disposal:
    """What removing `stack`'s claim does to one secret."""

    kind: Disposition
    metadata: Mapping[str, str | None] = field(default_factory=dict)
    note: str = ""


def holds_claim(owners: Ownership, stack: str) -> bool:
    """Whether `stack` has a claim on this secret: it declares it, or it released it and has
    not taken it back (`release`, then `remove` when the stack goes for good)."""
    if owners.foreign_tool:
        return False
    return owners.declared_by(stack) or owners.released(stack)


def dispose(
    owners: Ownership,
    stack: str,
    declared_elsewhere: Mapping[str, str],
    keys: frozenset[str],
    version: int,
) -> Disposal | None:
    """What `stack` leaving this secret for good (`remove`) does to it: None when the stack
    holds no claim on it.

    `declared_elsewhere` maps every stack whose contract (in the repository) declares the
    secret to its declaration digest: a claim that stands even where that stack never built,
    when it declares the secret as this stack recorded it. `keys` are the keys the secret
    holds now (one a person provided is never destroyed), `version` its latest version."""
    if not holds_claim(owners, stack):
        return None
    claims = _claims(owners, stack, declared_elsewhere)
    why = _not_destroyable(owners, stack, keys, version)
    if not claims.remaining and not claims.releasers and why is None:
        return Disposal("delete")
    return _leave(owners, stack, claims, version, returning=False, why=why or "")


def keep(owners: Ownership, stack: str, declared_elsewhere: Mapping[str, str], version: int) -> Disposal | None:
    """`stack` forgets its declaration and the values stay (`release`): None when it declares
    nothing here (it holds no claim, or released it already). The stack records that it
    released the secret at `version`, so that a later build of it takes the secret back with
    the same values and nobody else destroys them meanwhile."""
    if owners.foreign_tool or not owners.declared_by(stack):
        return None
    claims = _claims(owners, stack, declared_elsewhere)
    return _leave(owners, stack, claims, version, returning=True, why="values kept")


@dataclass(frozen=True)
class _Claims:
    """Who besides the leaving stack holds a claim on a secret."""

    remaining: list[str]  # declarers that keep it: recorded, and the repository's joining ones
    joining: dict[str, str]  # repository declarers not recorded yet that declare it the same way
    releasers: list[str]  # other stacks that released it
    differing: list[str]  # repository declarers that declare it otherwise: never given it


def _claims(owners: Ownership, stack: str, declared_elsewhere: Mapping[str, str]) -> _Claims:
    """The other claims on a secret `stack` leaves. A repository declaration counts only where
    it matches the leaving stack's recorded one: a contract that names the path with other
    values (its own build is refused while the stack holds it) must not inherit the stack's
    credential and then write its values into it."""
    mine = owners.declarations.get(stack)
    if mine is None or not mine.startswith(ownership.DIGEST_VERSION):
        mine = declared_elsewhere.get(stack)  # recorded without a comparable digest: the contract's own
    unrecorded = {s: d for s, d in declared_elsewhere.items() if s != stack and s not in owners.declarations}
    joining = {s: d for s, d in unrecorded.items() if mine is not None and d == mine}
    recorded = [s for s in owners.declarations if s != stack]
    return _Claims(
        remaining=sorted({*recorded, *joining}),
        joining=joining,
        releasers=sorted(s for s in owners.releases if s != stack and s not in owners.declarations),
        differing=sorted(s for s in unrecorded if s not in joining),
    )


def _leave(owners: Ownership, stack: str, claims: _Claims, version: int, returning: bool, why: str) -> Disposal:
    """The stack's declaration goes; where no other claim remains, or where it means to come
    back (`release`), it records that it released the secret at `version`. Repository
    declarers that declare it the same way are recorded, so that any of them (and this stack,
    back again) finds the secret owned and joins it instead of being refused."""
    record = returning or not (claims.remaining or claims.releasers)
    notes = []
    if claims.remaining:
        notes.append(f"still declared by {', '.join(claims.remaining)}")
    elif claims.releasers:
        notes.append(f"kept for {contracts(claims.releasers)}, which released it")
    if claims.differing:
        notes.append(f"{contracts(claims.differing)} declares it differently and is not given it")
    if not claims.remaining and not claims.releasers and why:
        notes.append(why)
    note = "; ".join(notes)
    if not owners.declared_by(stack) and record:
        return Disposal("keep", note=note)  # released already: nothing to change
    changes = {
        **ownership.release(owners, stack, remaining=claims.remaining, at=version if record else None),
        **ownership.declare(claims.joining),
    }
    return Disposal("release", changes, note)


def _not_destroyable(owners: Ownership, stack: str, keys: frozenset[str], version: int) -> str | None:
    """Why `remove` may not destroy the secret even where no other claim remains, or None."""
    by_hand = sorted(owners.provided & keys)
    foreign = foreign_version(owners, version)
    if by_hand:
        why = f"it holds {', '.join(by_hand)}, provided by a person"
    elif not owners.created_here:
        why = f"not created by secret-contract ({owners.origin or 'recorded by an earlier release, origin unknown'})"
    elif owners.released(stack) and owners.releases[stack] != version:
        at = owners.releases[stack]
        since = f"at v{at}" if at is not None else "by an earlier release, which recorded no version"
        why = f"v{version} may have been written by someone else after contract '{stack}' released it {since}"
    elif foreign:
        why = foreign
    else:
        return None
    return why + ": its versions stay; delete it by hand if meant"


def foreign_version(owners: Ownership, version: int) -> str | None:
    """Why the secret's latest `version` holds values this tool did not write, or None when
    the record says this tool wrote it (or, recorded by an earlier release, says nothing)."""
    if owners.written is None or owners.written == version:
        return None
    return (
        f"v{version} is not v{owners.written}, the last version secret-contract recorded writing: a person or another "
        "tool wrote a version since (a `kv put` or `kv patch`), so it holds values this tool did not write"
    )


def records_write(owners: Ownership, version: int) -> bool:
    """Whether a data write over `version` is recorded as this tool's (`ownership.wrote`): only
    over a version it wrote, or one a record of an earlier release trusts. Over another's, the
    new version carries that one's values forward and the record stays where it is."""
    return foreign_version(owners, version) is None


def may_drop_keys(owners: Ownership, stack: str, version: int) -> bool:
    """Whether `stack` may write a version without keys its contract no longer names: only on
    a secret this tool created and wrote the latest `version` of, and that no other contract
    declares (a key added by hand is a person's, not a key that left the contract)."""
    return owners.created_here and set(owners.declarations) == {stack} and foreign_version(owners, version) is None
