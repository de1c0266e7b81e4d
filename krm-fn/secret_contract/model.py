"""The records the build flows through, from the contracts to Vault: what the contracts declare
of one Vault secret (`Desired`, its `GeneratedKey`s), where they declare it (`Declaration`),
and the two together (`Target`), which `declarations` produces and every later step reads.
Pure data with the digests that identify a declaration; no I/O."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from secret_contract import generators, ownership
from secret_contract.results import FileRef, ResourceRef, Result


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    generator: str
    length: int | None = None

    @property
    def effective_length(self) -> int | None:
        return generators.effective_length(self.generator, self.length)

    def describe(self) -> str:
        length = self.effective_length
        return self.generator if length is None else f"{self.generator} of length {length}"


@dataclass(frozen=True)
class Desired:
    """One Vault secret as the contracts of a build declare it."""

    mount: str
    path: str  # inside the mount
    stacks: tuple[str, ...]  # every contract of this build that declares it
    static: Mapping[str, str] = field(default_factory=dict, repr=False)
    generated: Mapping[str, GeneratedKey] = field(default_factory=dict)
    provided: tuple[str, ...] = ()  # keys a person writes: never written or deleted here
    former_paths: tuple[str, ...] = ()  # other paths in the mount where its values may already live
    delivery: str = ""  # a digest of the ExternalSecrets that deliver it (see `declarations`)

    @property
    def where(self) -> str:
        return f"{self.mount}/{self.path}"

    def key_names(self) -> list[str]:
        """Every key the contract declares (what `prune` keeps)."""
        return [*self.static, *self.generated, *self.provided]

    def written_keys(self) -> list[str]:
        """The keys this tool writes: static and generated, not provided ones."""
        return [*self.static, *self.generated]

    @cached_property
    def digest(self) -> str:
        """Identifies the declaration: two contracts agree on a secret iff their digests match.
        It covers the keys, generators, lengths, static values and what the contract declares
        of the ExternalSecret that delivers it, so stacks built apart cannot deliver it
        differently."""
        text = json.dumps({"keys": self._keys(), "delivery": self.delivery}, sort_keys=True, separators=(",", ":"))
        return ownership.DIGEST_VERSION + hashlib.sha256(text.encode()).hexdigest()[:16]

    @cached_property
    def earlier_digest(self) -> str:
        """The digest earlier releases recorded: over the keys alone."""
        text = json.dumps(self._keys(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _keys(self) -> dict[str, list[object]]:
        return {
            **{k: ["static", hashlib.sha256(v.encode()).hexdigest()] for k, v in self.static.items()},
            **{k: [g.generator, g.effective_length] for k, g in self.generated.items()},
            **{k: ["provided"] for k in self.provided},
        }

    def agrees(self, recorded: str) -> bool:
        """Whether a recorded digest (of this release or an earlier one) is this declaration's."""
        if recorded.startswith(ownership.DIGEST_VERSION):
            return recorded == self.digest
        return recorded == self.earlier_digest

    def declarations(self) -> dict[str, str]:
        return dict.fromkeys(self.stacks, self.digest)


@dataclass(frozen=True, slots=True)
class Declaration:
    """Where a contract declares a secret, for findings, and which Kubernetes Secret it is."""

    resource: ResourceRef
    file: FileRef | None
    field_path: str
    namespace: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True)
class Target:
    """A desired Vault secret and where the contracts of the build declare it."""

    desired: Desired
    declared_at: tuple[Declaration, ...]
    # stack -> the digest of its own declaration, where several stacks declare it
    digests: Mapping[str, str] = field(default_factory=dict)

    def declarations(self) -> dict[str, str]:
        """Each declaring stack with the digest of its own declaration."""
        return dict(self.digests) if self.digests else self.desired.declarations()

    @property
    def where(self) -> str:
        return self.desired.where

    @property
    def secret_ids(self) -> frozenset[str]:
        """`namespace/name` of every Kubernetes Secret declared with this Vault secret."""
        return frozenset(f"{d.namespace}/{d.name}" for d in self.declared_at)

    def finding(self, make: Callable[[str, str], Result], message: str) -> Result:
        first = self.declared_at[0]
        return make(message, first.field_path).at(first.resource, first.file)
