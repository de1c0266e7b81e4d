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
- `secret-contract-released-by.<hash>: <version> <stack>`, one key per stack that released the
  secret (`release`, which always keeps the values; or `remove` where it may not destroy them
  and no other claim remains), with the version it held then: that stack may take it back by
  building it, or delete it with `remove` if nobody wrote a version since. Earlier releases
  wrote one `secret-contract-released-by: <stack>` key, read as that stack's release at an
  unknown version;
- `secret-contract-written-version: <N>`, the version of the last data write this tool made
  over versions it wrote itself: a later version holds values a person or another tool wrote
  (a `kv put`, a `kv patch`), and `remove` and `prune` then keep the secret. A write of this
  tool over such a version does not move it on (its data carries those values forward), and
  neither does one whose metadata write failed: both err on keeping. Secrets recorded by
  earlier releases have no such key (their history is trusted as before) until this tool
  next writes their data.

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
RELEASED_KEY = "secret-contract-released-by"  # one releaser, as earlier releases wrote it: read and cleared
RELEASED_PREFIX = "secret-contract-released-by."
DROPPED_KEY = "secret-contract-dropped-keys"  # keys `prune` dropped: older versions hold them on purpose
PROVIDED_KEY = "secret-contract-provided-keys"  # keys a person writes: `remove` never destroys them
WRITTEN_KEY = "secret-contract-written-version"  # the last version this tool wrote over its own versions
MAX_VALUE = 512  # characters of a custom metadata value
DIGEST_VERSION = "2-"  # digests without it were recorded by earlier releases, over the keys alone

CREATED = "created"
ADOPTED = "adopted"
MIGRATED = "migrated"


def declared_key(stack: str) -> str:
    """A metadata key per stack: stack names can be longer than a metadata key may be."""
    return DECLARED_PREFIX + _stack_hash(stack)


def released_key(stack: str) -> str:
    return RELEASED_PREFIX + _stack_hash(stack)


def _stack_hash(stack: str) -> str:
    return hashlib.sha256(stack.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Ownership:
    """Who holds a secret, as its custom metadata says."""

    managed_by: str | None = None
    owner: str | None = None
    origin: str | None = None
    declarations: Mapping[str, str | None] = field(default_factory=dict)  # stack -> digest
    migrated_to: str | None = None
    releases: Mapping[str, int | None] = field(default_factory=dict)  # stack -> version it released (None: unknown)
    earlier_release: str | None = None  # the stack an earlier release's single key names
    dropped: frozenset[str] = frozenset()
    provided: frozenset[str] = frozenset()
    written: int | None = None  # the last version this tool wrote over its own (None: recorded by an earlier release)

    @property
    def foreign_tool(self) -> str | None:
        """Another tool's marker (e.g. `external-secrets` for a PushSecret), if any."""
        return self.managed_by if self.managed_by and self.managed_by != MANAGED_BY else None

    @property
    def unowned(self) -> bool:
        """No contract declares it and none released it: the older script's data, or a hand's."""
        return not self.foreign_tool and not self.declarations and not self.releases

    @property
    def created_here(self) -> bool:
        """Whether every version was written by this tool (only then may it destroy them)."""
        return self.origin == CREATED

    def declared_by(self, stack: str) -> bool:
        return stack in self.declarations

    def released(self, stack: str) -> bool:
        return stack in self.releases

    def releasers(self) -> str:
        """The stacks that released it, for messages."""
        return ", ".join(f"'{s}'" for s in sorted(self.releases))


def read(custom: Mapping[str, str]) -> Ownership:
    declarations: dict[str, str | None] = {}
    for key, value in custom.items():
        if key.startswith(DECLARED_PREFIX) and isinstance(value, str) and " " in value:
            digest, stack = value.split(" ", 1)
            declarations[stack] = digest
    releases: dict[str, int | None] = {}
    for key, value in custom.items():
        if key.startswith(RELEASED_PREFIX) and isinstance(value, str) and " " in value:
            version, stack = value.split(" ", 1)
            releases[stack] = int(version) if version.isdigit() else None
    earlier = custom.get(RELEASED_KEY) or None
    if earlier and earlier not in releases:
        releases[earlier] = None  # written by an earlier release: the version is unknown
    owner = custom.get(OWNER_KEY) or None
    if owner and owner not in declarations:
        declarations[owner] = None  # recorded by an earlier release: the declaration is unknown
    return Ownership(
        managed_by=custom.get(MANAGED_BY_KEY) or None,
        owner=owner,
        origin=custom.get(ORIGIN_KEY) or None,
        declarations=declarations,
        migrated_to=custom.get(MIGRATED_TO_KEY) or None,
        releases=releases,
        earlier_release=earlier,
        dropped=_key_set(custom.get(DROPPED_KEY)),
        provided=_key_set(custom.get(PROVIDED_KEY)),
        written=_version(custom.get(WRITTEN_KEY)),
    )


def _version(text: str | None) -> int | None:
    """A recorded version; a value that is not one reads as version 0, so that every version
    counts as written by someone else (keeping errs on the safe side)."""
    if text is None:
        return None
    return int(text) if text.isdigit() else 0


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


def wrote(version: int) -> dict[str, str | None]:
    """The metadata change recording that this tool wrote `version` of the data."""
    return {WRITTEN_KEY: str(version)}


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


def release(current: Ownership, stack: str, remaining: list[str], at: int | None) -> dict[str, str | None]:
    """Metadata changes that remove `stack`'s declaration while `remaining` stacks keep theirs.
    With `at` (the version it holds now) the stack records its release, so that it can come
    back and so that nobody else destroys what it left (the values stay either way); without,
    it forgets any release it recorded. The marker and origin stay."""
    changes: dict[str, str | None] = {declared_key(stack): None}
    if at is not None:
        changes[released_key(stack)] = f"{at} {stack}"
        if current.earlier_release == stack:
            changes[RELEASED_KEY] = None
    else:
        changes.update(taken_back(current, (stack,)))
    if not remaining:
        changes[OWNER_KEY] = None
    elif current.owner == stack or current.owner not in remaining:
        changes[OWNER_KEY] = sorted(remaining)[0]
    return changes


def taken_back(current: Ownership, stacks: tuple[str, ...] | list[str]) -> dict[str, str | None]:
    """Metadata changes that remove the release records of `stacks` (they declare it again, or
    leave for good)."""
    changes: dict[str, str | None] = {released_key(s): None for s in stacks if s in current.releases}
    if current.earlier_release in stacks:
        changes[RELEASED_KEY] = None
    return changes
