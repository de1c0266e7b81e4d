"""From resolved contracts to what a build must produce: one Vault target per Vault secret
and one ExternalSecret per identity, however many contracts declare them.

Contracts may declare the same Secret on purpose (a component's credentials redeclared by
every stack that uses the component). Such declarations must agree on every key, generator,
length and static value, and yield identical ExternalSecrets; otherwise the build fails
before Vault is touched, naming both contracts and the field that differs. Two different
ExternalSecrets never write one Kubernetes Secret: ESO would have them overwrite each other.
What a contract declares of the ExternalSecret named after a secret (the one every declarer
emits) is part of its recorded declaration (`Desired.delivery`), so stacks built apart cannot
deliver it differently either. Settings that come from the repository (project file, the
environment, a kpt ConfigMap) are not: changing one for the whole repository must not set
stacks rebuilt one at a time against each other. A stack's other views are its own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any

from secret_contract import externalsecret
from secret_contract.contract import Contract, DataEntry, ExternalSecretSettings, Secret
from secret_contract.model import Declaration, Desired, GeneratedKey, Target
from secret_contract.resolution import Resolved, ResolvedContract, ResolvedView
from secret_contract.results import FileRef, Result, error


@dataclass(frozen=True, slots=True)
class Declared:
    """One declaration of a secret: the contract, the secret and its effective settings."""

    contract: Contract
    secret: Secret
    resolved: Resolved

    @property
    def label(self) -> str:
        where = f" ({self.contract.file})" if self.contract.file else ""
        return f"contract '{self.contract.stack}'{where}"

    def finding(self, message: str, path: str) -> Result:
        return error(message, path, "declarations").at(self.contract.resource, self.contract.file)

    def manifest(self, view: int) -> dict[str, Any]:
        return externalsecret.manifest(self.secret.namespace, self.resolved, self.resolved.views[view])


@dataclass(frozen=True, slots=True)
class Emission:
    """One ExternalSecret the build emits, beside the contract file that declares it. Its
    manifest is made when asked for, each time: a render of 100,000 secrets writes each one
    as it is made instead of holding them all (about twenty dicts and lists each)."""

    declared: Declared
    view: int  # which of the secret's views
    identity: tuple[str, str, str, str]  # as `krm.identity` reads the manifest

    @property
    def file(self) -> FileRef | None:
        return self.declared.contract.file

    def manifest(self) -> dict[str, Any]:
        return self.declared.manifest(self.view)


@dataclass
class Collected:
    externalsecrets: list[Emission] = field(default_factory=list)
    findings: list[Result] = field(default_factory=list)
    by_path: dict[tuple[str, str], list[Declared]] = field(default_factory=dict)  # (mount, path) -> declarations

    def targets(self) -> list[Target]:
        """One Vault target per path (made when asked for: a render writes none)."""
        digests = _DeliveryDigests()
        return [_target(declarations, digests) for declarations in self.by_path.values()]


def collect(resolved: list[ResolvedContract]) -> Collected:
    out = Collected()
    by_path = out.by_path
    by_identity: dict[tuple[str, str, str, str], Emission] = {}
    by_target: dict[tuple[str, str], tuple[Declared, str]] = {}  # the Secret ESO writes -> first writer
    for rc in resolved:
        for secret, r in zip(rc.contract.secrets, rc.secrets, strict=True):
            declared = Declared(rc.contract, secret, r)
            problem = r.layout.eso_problem(r.path)
            if problem:
                out.findings.append(declared.finding(problem, f"{secret.field_path}.name"))
                continue
            by_path.setdefault((r.mount, r.path), []).append(declared)
            for i, view in enumerate(r.views):
                emission = Emission(declared, i, externalsecret.identity(secret.namespace, view))
                first = by_identity.setdefault(emission.identity, emission)
                if first is emission:
                    out.externalsecrets.append(emission)
                    out.findings.extend(_second_writer(by_target, declared, view))
                    continue
                difference = _first_difference(first.manifest(), emission.manifest())
                if difference:
                    out.findings.append(
                        declared.finding(
                            f"ExternalSecret {secret.namespace}/{view.name} is also declared by "
                            f"{first.declared.label}, and the two differ at {difference}: one Kubernetes "
                            "Secret needs one definition",
                            secret.field_path,
                        )
                    )
    for declarations in by_path.values():
        first_declared = declarations[0]
        for other in declarations[1:]:
            out.findings.extend(_disagreements(first_declared, other))
    return out


def _second_writer(
    by_target: dict[tuple[str, str], tuple[Declared, str]], declared: Declared, view: ResolvedView
) -> list[Result]:
    """A finding when another ExternalSecret already writes the Secret `view` targets."""
    namespace, name = declared.secret.namespace, view.name
    target = (namespace, view.target_name)
    first = by_target.setdefault(target, (declared, name))
    if first[1] == name:
        return []
    return [
        declared.finding(
            f"ExternalSecret {namespace}/{name} writes Secret {namespace}/{target[1]}, which ExternalSecret "
            f"{namespace}/{first[1]} of {first[0].label} already writes: ESO would have them overwrite each other; "
            "give one of them another target name",
            declared.secret.field_path,
        )
    ]


def delivery(declared: Declared) -> dict[str, Any]:
    """What a contract declares of the ExternalSecret named after the secret: its own fields
    over the contract's (None means inherited, from the repository's settings)."""
    layers = (declared.secret.external_secret, declared.contract.external_secret)
    shape: dict[str, Any] = {}
    for f in fields(ExternalSecretSettings):
        values = [getattr(layer, f.name) for layer in layers]
        if isinstance(values[0], Mapping):
            merged = {**values[1], **values[0]}
            if merged:
                shape[f.name] = dict(sorted(merged.items()))
        else:
            chosen = next((v for v in values if v not in (None, ())), None)
            if chosen is not None:
                shape[f.name] = chosen
    return shape


def delivery_digest(declared: Declared) -> str:
    text = json.dumps(delivery(declared), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _DeliveryDigests:
    """`delivery_digest` of each declaration, worked out once per pair of settings it merges:
    the secrets of a contract mostly share theirs (none of their own, the contract's)."""

    def __init__(self) -> None:
        # Keyed by identity; each entry keeps its pair alive, so an id is never reused meanwhile.
        self._known: dict[tuple[int, int], tuple[ExternalSecretSettings, ExternalSecretSettings, str]] = {}

    def __call__(self, declared: Declared) -> str:
        own, contract = declared.secret.external_secret, declared.contract.external_secret
        found = self._known.get((id(own), id(contract)))
        if found is None:
            found = self._known[(id(own), id(contract))] = (own, contract, delivery_digest(declared))
        return found[2]


def _desired(declared: Declared, stacks: tuple[str, ...], digests: _DeliveryDigests) -> Desired:
    r = declared.resolved
    return Desired(
        mount=r.mount,
        path=r.path,
        stacks=stacks,
        static={e.key: e.value for e in declared.secret.data if e.value is not None},
        generated={e.key: _generated_key(e.generate, e.length) for e in declared.secret.data if e.generate},
        provided=tuple(e.key for e in declared.secret.data if e.provided),
        former_paths=r.former_paths,
        delivery=digests(declared),
    )


@lru_cache(maxsize=1024)
def _generated_key(generator: str, length: int | None) -> GeneratedKey:
    """One shared (frozen) instance per generator and length."""
    return GeneratedKey(generator, length)


def _target(declarations: list[Declared], delivered: _DeliveryDigests) -> Target:
    first = declarations[0]
    desired = _desired(first, tuple(sorted({d.contract.stack for d in declarations})), delivered)
    # Each declarer's own digest: in a build where they disagree (an error), they differ. A
    # secret one contract declares has only its own (`Desired.declarations()`), left to be
    # worked out when asked for: a render never needs it.
    digests = {d.contract.stack: _desired(d, (d.contract.stack,), delivered).digest for d in declarations[1:]}
    return Target(
        desired,
        tuple(
            Declaration(d.contract.resource, d.contract.file, d.secret.field_path, d.secret.namespace, d.secret.name)
            for d in declarations
        ),
        {**digests, first.contract.stack: desired.digest} if digests else {},
    )


def _disagreements(first: Declared, other: Declared) -> list[Result]:
    """Where `other` declares the Vault secret at the same path differently from `first`."""
    mine = {e.key: (j, e) for j, e in enumerate(other.secret.data)}
    theirs = {e.key: e for e in first.secret.data}
    at = other.secret.field_path
    where = f"{first.resolved.where}, also declared by {first.label}"
    found = []
    for key in sorted(set(theirs) - set(mine)):
        found.append(other.finding(f"{where}, which has key '{key}' that this declaration lacks", f"{at}.data"))
    for key, (j, entry) in mine.items():
        path = f"{at}.data[{j}]"
        theirs_entry = theirs.get(key)
        if theirs_entry is None:
            found.append(other.finding(f"{where}, which has no key '{key}'", f"{path}.key"))
            continue
        field_name = _differing_field(entry, theirs_entry)
        if field_name:
            found.append(other.finding(f"{where}, which declares key '{key}' differently", f"{path}.{field_name}"))
    if not found and delivery(first) != delivery(other):
        difference = _first_difference(first.manifest(0), other.manifest(0)) or "its fields"
        found.append(
            other.finding(f"{where}, whose ExternalSecret differs from this declaration's at {difference}", at)
        )
    return found


def _differing_field(mine: DataEntry, theirs: DataEntry) -> str | None:
    if mine.provided != theirs.provided:
        return "provided"
    if (mine.value is None) != (theirs.value is None):
        return "value" if mine.value is not None else "generate"
    if mine.value != theirs.value:
        return "value"
    if mine.generate != theirs.generate:
        return "generate"
    if (
        GeneratedKey(mine.generate or "", mine.length).effective_length
        != GeneratedKey(theirs.generate or "", theirs.length).effective_length
    ):
        return "length"
    return None


def _first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """The first field path at which two manifests differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            found = _first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i in range(max(len(a), len(b))):
            found = _first_difference(a[i] if i < len(a) else None, b[i] if i < len(b) else None, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if a == b else path
