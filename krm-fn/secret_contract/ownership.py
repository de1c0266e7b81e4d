"""How ownership is written into a Vault secret's custom metadata, and read back.

Keys (custom metadata values are strings, at most 64 keys):
- `managed-by: secret-contract`, the marker ESO's PushSecret also uses (`external-secrets`);
- `secret-contract-owner: <stack>`, the contract that created or adopted the secret;
- `secret-contract-origin`: `created` (this tool wrote its first version), `adopted:<N>`
  (versions 1..N existed before: written by another tool or by hand) or `migrated:<path>`;
- `secret-contract-declared-by.<hash>: <digest> <stack>`, one key per declaring contract, so
  that contracts sharing a secret record themselves with merge patches that never overwrite
  each other. The digest identifies the declaration: keys, generators, static values and
  the ExternalSecret it is delivered by (a digest of an earlier release covers the keys alone,
  and is compared as such);
- `secret-contract-dropped-keys: <key>,...`, keys `prune` dropped: their values in older
  versions were left behind on purpose, so declaring such a key again generates it anew;
- `secret-contract-provided-keys: <key>,...`, keys a person writes (`provided: true`): a secret
  holding one is never destroyed by `remove` or `prune`, only released;
- `secret-contract-released-by: <stack>`, on a secret kept after its last declarer left
  (`release`, which always keeps the values; or `remove` where this tool did not write every
  version): that stack may take it back by building it, or delete it with `remove`, and
  `migrate` may adopt it.

Secrets recorded by earlier releases carry only `managed-by` and `secret-contract-owner`;
they read as declared by the owner with an unknown digest. The rules that decide what a
build may do with a secret live in `plan`; this module only encodes and decodes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

MANAGED_BY_KEY = "managed-by"
MANAGED_BY = "secret-contract"
OWNER_KEY = "secret-contract-owner"
ORIGIN_KEY = "secret-contract-origin"
DECLARED_PREFIX = "secret-contract-declared-by."
MIGRATED_TO_KEY = "secret-contract-migrated-to"
RELEASED_KEY = "secret-contract-released-by"
DROPPED_KEY = "secret-contract-dropped-keys"  # keys `prune` dropped: older versions hold them on purpose
PROVIDED_KEY = "secret-contract-provided-keys"  # keys a person writes: `remove` never destroys them
MAX_VALUE = 512  # characters of a custom metadata value
DIGEST_VERSION = "2-"  # digests without it were recorded by earlier releases, over the keys alone

CREATED = "created"
ADOPTED = "adopted"
MIGRATED = "migrated"


def declared_key(stack: str) -> str:
    """A metadata key per stack: stack names can be longer than a metadata key may be."""
    return DECLARED_PREFIX + hashlib.sha256(stack.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Ownership:
    """Who holds a secret, as its custom metadata says."""

    managed_by: str | None = None
    owner: str | None = None
    origin: str | None = None
    declarations: Mapping[str, str | None] = field(default_factory=dict)  # stack -> digest
    migrated_to: str | None = None
    released_by: str | None = None
    dropped: frozenset[str] = frozenset()
    provided: frozenset[str] = frozenset()

    @property
    def foreign_tool(self) -> str | None:
        """Another tool's marker (e.g. `external-secrets` for a PushSecret), if any."""
        return self.managed_by if self.managed_by and self.managed_by != MANAGED_BY else None

    @property
    def unowned(self) -> bool:
        """No contract declares it and none released it: the older script's data, or a hand's."""
        return not self.foreign_tool and not self.declarations and self.released_by is None

    @property
    def created_here(self) -> bool:
        """Whether every version was written by this tool (only then may it destroy them)."""
        return self.origin == CREATED

    def declared_by(self, stack: str) -> bool:
        return stack in self.declarations


def read(custom: Mapping[str, str]) -> Ownership:
    declarations: dict[str, str | None] = {}
    for key, value in custom.items():
        if key.startswith(DECLARED_PREFIX) and isinstance(value, str) and " " in value:
            digest, stack = value.split(" ", 1)
            declarations[stack] = digest
    owner = custom.get(OWNER_KEY) or None
    if owner and owner not in declarations:
        declarations[owner] = None  # recorded by an earlier release: the declaration is unknown
    return Ownership(
        managed_by=custom.get(MANAGED_BY_KEY) or None,
        owner=owner,
        origin=custom.get(ORIGIN_KEY) or None,
        declarations=declarations,
        migrated_to=custom.get(MIGRATED_TO_KEY) or None,
        released_by=custom.get(RELEASED_KEY) or None,
        dropped=_key_set(custom.get(DROPPED_KEY)),
        provided=_key_set(custom.get(PROVIDED_KEY)),
    )


def _key_set(text: str | None) -> frozenset[str]:
    return frozenset(k for k in (text or "").split(",") if k)


def _key_list(keys: set[str] | frozenset[str] | tuple[str, ...]) -> str | None:
    """Key names as one metadata value (None for none). Custom metadata values hold at most
    512 characters: a longer list keeps the keys that fit, in name order."""
    text = ""
    for key in sorted(keys):
        if len(text) + len(key) + 1 > MAX_VALUE:
            break
        text = f"{text},{key}" if text else key
    return text or None


def record_dropped(keys: set[str] | frozenset[str]) -> dict[str, str | None]:
    """The metadata change listing the keys `prune` dropped (None when there are none)."""
    return {DROPPED_KEY: _key_list(keys)}


def record_provided(keys: tuple[str, ...]) -> dict[str, str | None]:
    """The metadata change listing the keys a person provides (None when there are none)."""
    return {PROVIDED_KEY: _key_list(keys)}


def declare(stacks: Mapping[str, str]) -> dict[str, str | None]:
    """Metadata changes recording each stack's declaration (stack -> digest)."""
    return {declared_key(stack): f"{digest} {stack}" for stack, digest in sorted(stacks.items())}


def claim(stacks: Mapping[str, str], origin: str) -> dict[str, str | None]:
    """Metadata of a secret this tool takes charge of: marker, owner, origin, declarations."""
    return {
        MANAGED_BY_KEY: MANAGED_BY,
        OWNER_KEY: min(stacks),
        ORIGIN_KEY: origin,
        **declare(stacks),
    }


def release(current: Ownership, stack: str, remaining: list[str]) -> dict[str, str | None]:
    """Metadata changes that remove `stack`'s declaration while `remaining` stacks keep theirs.
    The last declarer leaves the marker and origin in place and records itself as the one
    that released it, so that it can come back (the values stay either way)."""
    changes: dict[str, str | None] = {declared_key(stack): None}
    if not remaining:
        changes.update({OWNER_KEY: None, RELEASED_KEY: stack})
    elif current.owner == stack or current.owner not in remaining:
        changes[OWNER_KEY] = sorted(remaining)[0]
    return changes
