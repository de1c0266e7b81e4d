"""The changes the commands make besides a build (delete, release, drop keys, rotate, copy,
adopt, mark), and carrying them out.

An operation first decides (`operations.plan_*`, reading only) and the command line shows the
actions and asks; then `apply()` carries them out after one permission check for all of them
(`denied`). Between the two steps others may build: each action records what its decision
rested on (`Expect`), and `apply()` reads the secret again right before acting and leaves it
alone if that changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from secret_contract import generators, ownership
from secret_contract.errors import SecretContractError
from secret_contract.model import GeneratedKey
from secret_contract.results import Result, counted, error, info, warning
from secret_contract.store import Entry, Progress, SecretStore, WriteCheck

ActionKind = Literal["delete", "release", "drop-keys", "rotate", "copy", "adopt", "mark-source", "delete-source"]


@dataclass(frozen=True)
class Expect:
    """What a decision rested on: the secret's version, who declared it and who released it."""

    version: int
    declarations: frozenset[tuple[str, str | None]]
    releases: frozenset[str] = frozenset()

    @classmethod
    def of(cls, entry: Entry) -> Expect:
        owners = ownership.read(entry.custom_metadata)
        return cls(entry.version, frozenset(owners.declarations.items()), frozenset(owners.releases))

    def changed(self, entry: Entry | None) -> str | None:
        """How `entry` differs from what was expected, or None."""
        if entry is None:
            return "it is gone"
        now = Expect.of(entry)
        if now.version != self.version:
            return f"it has a new version (v{now.version}, planned on v{self.version})"
        if now.declarations != self.declarations:
            stacks = sorted(s for s, _ in now.declarations) or ["no contract"]
            return f"who declares it changed (now {', '.join(stacks)})"
        if now.releases != self.releases:
            return f"who released it changed (now {', '.join(sorted(now.releases)) or 'no contract'})"
        return None


@dataclass(frozen=True)
class Action:
    """One change an operation will make to one Vault path."""

    kind: ActionKind
    mount: str
    path: str
    keys: tuple[str, ...] = ()
    cas: int = 0
    data: Mapping[str, str] = field(default_factory=dict, repr=False)  # for copies
    regenerate: Mapping[str, GeneratedKey] = field(default_factory=dict)
    keep: Mapping[str, str] = field(default_factory=dict, repr=False)
    metadata: Mapping[str, str | None] = field(default_factory=dict)
    note: str = ""
    expect: Expect | None = None  # checked again right before the action, when set
    # For a data write: record the version it makes as this tool's (`policy.records_write`).
    records_version: bool = False

    @property
    def where(self) -> str:
        return f"{self.mount}/{self.path}"

    @property
    def destroys(self) -> bool:
        return self.kind in ("delete", "delete-source")

    def describe(self) -> str:
        keys = ", ".join(self.keys)
        text = {
            "delete": f"delete {self.where} and every version of it (not recoverable)",
            "delete-source": f"delete {self.where} and every version of it, after the copy (not recoverable)",
            "release": f"keep {self.where}, remove this contract's ownership record",
            "drop-keys": f"write a new version of {self.where} without {keys} (older versions keep them)",
            "rotate": f"write a new version of {self.where} with new values for {keys}",
            "copy": f"copy {keys} to {self.where}",
            "adopt": f"record ownership of {self.where}, keeping its values",
            "mark-source": f"mark {self.where} as migrated",
        }[self.kind]
        return f"{text}{f' ({self.note})' if self.note else ''}"

    def checks(self) -> list[WriteCheck]:
        if self.destroys:
            return [WriteCheck("delete", self.mount, self.path)]
        writes = []
        if self.kind in ("drop-keys", "rotate", "copy"):
            writes.append(WriteCheck.data(self.mount, self.path, self.cas))
        if self.metadata or self.records_version:
            writes.append(WriteCheck("metadata", self.mount, self.path))
        return writes


@dataclass
class Planned:
    """What an operation decided: the actions, and findings about what it will not do."""

    actions: list[Action] = field(default_factory=list)
    findings: list[Result] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return any(f.severity == "error" for f in self.findings)


class Staged:
    """A store as the actions staged so far will leave it, for deciding about several contracts
    before anything is written: each decision sees the ownership records the ones before it
    change (and a path they delete as gone), so that the actions on one shared secret follow
    one another. Reads of other paths, and everything else, go to the store."""

    def __init__(self, store: SecretStore) -> None:
        self._store = store
        self._staged: dict[tuple[str, str], Entry | None] = {}
        self.written: set[str] = set()  # paths an action staged writes a new version of, or deletes

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def read(self, mount: str, path: str) -> Entry | None:
        if (mount, path) in self._staged:
            return self._staged[(mount, path)]
        return self._store.read(mount, path)

    def stage(self, actions: list[Action]) -> None:
        for action in actions:
            key = (action.mount, action.path)
            if action.destroys:
                self._staged[key] = None
                self.written.add(action.where)
                continue
            if action.kind in ("drop-keys", "rotate", "copy"):
                self.written.add(action.where)  # the values it will hold are not known until then
            entry = self.read(*key)
            if entry is not None and action.metadata:
                merged = {**entry.custom_metadata, **action.metadata}
                custom = {k: v for k, v in merged.items() if v is not None}
                self._staged[key] = replace(entry, custom_metadata=custom)


# --- carrying out ----------------------------------------------------------------------------


def denied(store: SecretStore, actions: list[Action]) -> list[Result]:
    checks = [check for action in actions for check in action.checks()]
    refused = store.denied(checks) if checks else []
    return [error(c.refusal) for c in refused]


def apply(
    store: SecretStore,
    actions: list[Action],
    progress: Progress | None = None,
    done: Callable[[int], None] | None = None,
) -> list[Result]:
    """Carry out the actions, in order (a copy before its source is marked or deleted), and say
    what each did; `done` is told the index of each action as soon as it has happened. An
    action whose secret changed since it was planned is left out (with the actions on the same
    secret after it); a failure stops the rest, and the findings still name everything that
    was done before it. A data write whose ownership record then fails is done (a new version
    exists), with a warning, and stops the rest like a failure."""
    findings: list[Result] = []
    skipped: set[str] = set()
    for index, action in enumerate(actions):
        if action.where in skipped:
            findings.append(warning(f"{action.where}: not done: {action.describe()}"))
            continue
        try:
            changed = _recheck(store, action)
            if changed:
                skipped.add(action.where)
                findings.append(
                    error(f"{action.where}: left as it is: {changed} since this was planned; run the command again")
                )
                continue
            said, stop = _apply_one(store, action)
        except SecretContractError as exc:
            findings.append(error(f"{action.where}: failed: {exc}"))
            findings.extend(warning(f"{a.where}: not done: {a.describe()}") for a in actions[index + 1 :])
            break
        findings.append(said)
        if done:
            done(index)
        if stop:
            findings.extend(warning(f"{a.where}: not done: {a.describe()}") for a in actions[index + 1 :])
            break
        if progress:
            progress("writing Vault", index + 1, len(actions))
    return findings


def _recheck(store: SecretStore, action: Action) -> str | None:
    """Read the secret again right before acting on it. KV v2 has no conditional delete or
    metadata patch: this narrows the window to one round trip (docs/reliability.md)."""
    if action.expect is None:
        return None
    entry = store.read(action.mount, action.path)
    if entry is None and action.destroys:
        return None  # already gone: deleting it again is the same outcome
    return action.expect.changed(entry)


def _apply_one(store: SecretStore, action: Action) -> tuple[Result, bool]:
    """Carry out one action: what it did, and whether the actions after it must stop."""
    kind = action.kind
    if action.destroys:
        store.delete(action.mount, action.path)
        return info(f"{action.where}: deleted, with every version"), False
    if kind in ("drop-keys", "rotate", "copy"):
        data = dict(action.data) if kind == "copy" else dict(action.keep)
        data.update({k: generators.generate(g.generator, g.length) for k, g in action.regenerate.items()})
        version = store.write(action.mount, action.path, data, action.cas)
        past = {
            "drop-keys": f"removed {', '.join(action.keys)}",
            "rotate": f"rotated {', '.join(action.keys)}",
            "copy": f"copied {counted(len(action.keys), 'key')}",
        }[kind]
        rollback = f"; version {version - 1} stays readable" if version > 1 else ""
        said = f"{action.where}: {past} (version {version}{rollback})"
        metadata = {**action.metadata, **(ownership.wrote(version) if action.records_version else {})}
        try:
            if metadata:
                store.update_metadata(action.mount, action.path, metadata)
        except SecretContractError as exc:
            # The version exists: reporting the action as not done would hide a replaced value.
            return warning(f"{said}, but its ownership record failed ({exc}): {_unrecorded(action, version)}"), True
        return info(f"{said}{f'; {action.note}' if action.note else ''}"), False
    store.update_metadata(action.mount, action.path, action.metadata)
    past = {"release": "released", "adopt": "adopted", "mark-source": "marked as migrated"}[kind]
    return info(f"{action.where}: {past}{f' ({action.note})' if action.note else ''}"), False


def _unrecorded(action: Action, version: int) -> str:
    """What a data write without its ownership record leaves, and what then happens."""
    if action.kind == "copy":
        return f"version {version} is owned by no contract; `migrate` adopts it, with its values"
    return (
        f"version {version} is not recorded as written by secret-contract, so `remove` keeps this secret and "
        "`prune` drops none of its keys"
    )
