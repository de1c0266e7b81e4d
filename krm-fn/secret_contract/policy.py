"""Who may do what with a Vault secret, given who holds it: the ownership rules every command
applies (a build through `plan`, and remove, prune, rotate and migrate through `operations`).

Pure: each function takes what the secret's custom metadata says (`ownership.Ownership`) and
the stacks involved, and returns a decision; nothing here reads Vault. The rules:
- a secret another tool manages is never changed or destroyed;
- a stack may change (rotate, prune keys of) only a secret it is recorded as declaring;
- a secret is destroyed only when this tool wrote every version, no other contract declares it
  (in Vault's record or in the repository) and it holds no value a person provided; otherwise
  the stack's claim is released and the values stay, with the other declarers' records intact
  so that any of them can build it again; `release` (a platform's `make down`) only ever
  releases;
- data any contract owns is never "legacy" data to migrate from: it is that contract's live
  credential, and copying or deleting it would fork or destroy it;
- a secret kept after its last declarer left is taken back only by that stack (or adopted with
  `migrate`): otherwise any contract could claim a credential by naming its path. That stack
  keeps its claim for `remove`, which deletes such a secret on the same terms as above.
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
    if owners.released_by:
        return f"released by contract '{owners.released_by}', values kept"
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
    if not owners.declarations and owners.released_by and owners.released_by not in stacks:
        return f"it was kept when contract '{owners.released_by}' released it; only that stack takes it back"
    others = sorted(set(owners.declarations) - set(stacks))
    if others:
        return (
            f"it is the live secret of {contracts(others)}, not data to migrate: make the contracts agree on where "
            "this Secret lives (the same layout and prefix) instead"
        )
    return None


def may_take_back(owners: Ownership, stacks: tuple[str, ...]) -> bool:
    """Whether a build of `stacks` may record itself on a secret no contract declares any more:
    only the stack that released it last (a `make down` followed by a `make up`)."""
    return owners.released_by is not None and owners.released_by in stacks


Disposition = Literal["delete", "release"]


@dataclass(frozen=True)
class Disposal:
    """What removing `stack`'s claim does to one secret."""

    kind: Disposition
    metadata: Mapping[str, str | None] = field(default_factory=dict)
    note: str = ""


def holds_claim(owners: Ownership, stack: str) -> bool:
    """Whether `stack` has a claim on this secret: it declares it, or it released it last and
    no contract declares it since (`release`, then `remove` when the stack goes for good)."""
    if owners.foreign_tool:
        return False
    return owners.declared_by(stack) or (not owners.declarations and owners.released_by == stack)


def dispose(
    owners: Ownership, stack: str, declared_elsewhere: Mapping[str, str], keys: frozenset[str] = frozenset()
) -> Disposal | None:
    """What `stack` leaving this secret does to it: None when the stack holds no claim on it.

    `declared_elsewhere` maps every other stack whose contract (in the repository) declares
    the secret to its declaration digest: their claim stands even where they never built.
    `keys` are the keys the secret holds now: one a person provided is never destroyed."""
    if not holds_claim(owners, stack):
        return None
    by_hand = sorted(owners.provided & keys)
    others = _other_declarers(owners, stack, declared_elsewhere)
    if owners.created_here and not others and not by_hand:
        return Disposal("delete")
    if others or owners.declared_by(stack):
        return keep(owners, stack, declared_elsewhere, by_hand)
    return None  # released earlier and not this tool's to destroy: nothing left to do


def keep(
    owners: Ownership, stack: str, declared_elsewhere: Mapping[str, str], by_hand: list[str] | None = None
) -> Disposal | None:
    """`stack` forgets its claim and the values stay (`release`, and `remove` where it may not
    destroy): None when the stack holds no claim or released it already. With no other
    declarer the secret records who released it, so that a later build of that stack takes it
    back with the same values."""
    if not holds_claim(owners, stack):
        return None
    recorded = {s: d for s, d in owners.declarations.items() if s != stack}
    others = _other_declarers(owners, stack, declared_elsewhere)
    if others:
        # Record the repository's other declarers that never built, so that any of them (and
        # this stack, back again) finds the secret owned and joins it instead of being refused.
        unrecorded = {s: d for s, d in others.items() if s not in recorded and d}
        changes = {**ownership.release(owners, stack, remaining=sorted(others)), **ownership.declare(unrecorded)}
        if owners.released_by is not None:
            changes[ownership.RELEASED_KEY] = None
        return Disposal("release", changes, f"still declared by {', '.join(sorted(others))}")
    if not owners.declared_by(stack):
        return None  # already released by this stack
    if by_hand is None:
        why = "values kept"
    else:
        origin = owners.origin or "recorded by an earlier release, origin unknown"
        why = (
            f"it holds {', '.join(by_hand)}, provided by a person"
            if by_hand
            else f"not created by secret-contract ({origin})"
        )
        why += ": its versions stay; delete it by hand if meant"
    return Disposal("release", ownership.release(owners, stack, remaining=[]), why)


def _other_declarers(owners: Ownership, stack: str, declared_elsewhere: Mapping[str, str]) -> dict[str, str | None]:
    """Every stack besides `stack` that declares the secret, in Vault's record or in the
    repository (a repository's claim stands even where that stack never built)."""
    recorded = {s: d for s, d in owners.declarations.items() if s != stack}
    return {**{s: d for s, d in declared_elsewhere.items() if s != stack}, **recorded}


def may_drop_keys(owners: Ownership, stack: str) -> bool:
    """Whether `stack` may write a version without keys its contract no longer names: only on
    a secret this tool created and that no other contract declares."""
    return owners.created_here and set(owners.declarations) == {stack}
