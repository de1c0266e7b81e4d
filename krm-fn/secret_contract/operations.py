"""What the commands do to Vault besides a build: verify, list, remove, prune, rotate and
migrate. Each works on the targets of resolved contracts (or on a mount) through a
`SecretStore`, and returns findings and data; the command line only prints them.

Destructive operations come in two steps, so the command line can show what will happen
and ask before it does: `plan_*()` reads and decides (pure decisions, no writes), `apply()`
carries the decisions out after one permission check for all of them.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from secret_contract import generators, ownership, plan
from secret_contract.plan import Desired
from secret_contract.results import Result, error, info, warning
from secret_contract.settings import ResolvedContract
from secret_contract.store import Entry, Progress, SecretStore, WriteCheck, parallel
from secret_contract.sync import Target, read_states

ActionKind = Literal["delete", "release", "drop-keys", "rotate", "copy", "adopt", "mark-source", "delete-source"]


@dataclass(frozen=True)
class Action:
    """One change an operation will make to one Vault path."""

    kind: ActionKind
    mount: str
    path: str
    keys: tuple[str, ...] = ()
    cas: int = 0
    data: Mapping[str, str] = field(default_factory=dict, repr=False)  # for copies
    regenerate: Mapping[str, plan.GeneratedKey] = field(default_factory=dict)
    keep: Mapping[str, str] = field(default_factory=dict, repr=False)
    metadata: Mapping[str, str | None] = field(default_factory=dict)
    note: str = ""

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
        if self.kind in ("delete", "delete-source"):
            return [WriteCheck("delete", self.mount, self.path)]
        writes = []
        if self.kind in ("drop-keys", "rotate", "copy"):
            writes.append(WriteCheck("create" if self.cas == 0 else "update", self.mount, self.path))
        if self.metadata:
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


# --- verify ------------------------------------------------------------------------------


def verify(store: SecretStore, targets: list[Target], progress: Progress | None = None) -> list[Result]:
    """A finding per gap between Vault and the contracts (never a value), or one line that
    all is there."""
    states = read_states(store, targets, progress=progress)
    findings = []
    for target, state in zip(targets, states, strict=True):
        gaps = plan.gaps(target.desired, state.current)
        legacy = [p for p, e in state.legacy.items() if e is not None and e.live]
        if state.current is None and legacy:
            gaps = [f"missing secret; its values exist at {target.desired.mount}/{legacy[0]} (run `migrate`)"]
        findings.extend(target.finding(error, f"{target.where}: {gap}") for gap in gaps)
    if not findings:
        keys = sum(len(t.desired.key_names()) for t in targets)
        findings.append(info(f"Vault holds all {keys} keys of {len(targets)} secrets"))
    return findings


# --- list --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    path: str  # mount/path
    version: int
    state: str
    owners: tuple[str, ...]
    keys: tuple[str, ...]


def list_paths(store: SecretStore, mount: str, folder: str = "") -> list[str]:
    """Every secret path under `folder`, depth first, sorted."""
    store.check_mount(mount)
    found: list[str] = []
    pending = [folder]
    while pending:
        current = pending.pop()
        names = store.list(mount, current) or []
        for name in sorted(names, reverse=True):
            child = f"{current}{name}"
            if name.endswith("/"):
                pending.append(child)
            else:
                found.append(child)
    return sorted(found)


def rows(store: SecretStore, mount: str, paths: list[str], progress: Progress | None = None) -> list[Row]:
    entries = parallel(lambda p: store.read(mount, p), paths, progress=progress, phase="reading Vault")
    return [_row(mount, p, e) for p, e in zip(paths, entries, strict=True) if e is not None]


def _row(mount: str, path: str, entry: Entry) -> Row:
    owners = ownership.read(entry.custom_metadata)
    who = (f"managed by {owners.foreign_tool}",) if owners.foreign_tool else tuple(sorted(owners.declarations))
    return Row(f"{mount}/{path}", entry.version, entry.latest, who, tuple(sorted(entry.data)))


# --- remove and prune ----------------------------------------------------------------------


def plan_remove(
    store: SecretStore,
    contract: ResolvedContract,
    targets: list[Target],
    declared_elsewhere: Mapping[str, set[str]] | None = None,
) -> Planned:
    """Everything the contract's stack owns: what it declares, and what it left behind in its
    folders. A secret another contract still declares is kept, and only this stack's record
    is removed; a secret this tool adopted (or migrated) is released, never destroyed."""
    stack = contract.contract.stack
    declared, paths = _candidates(store, contract, targets)
    elsewhere = declared_elsewhere or {}
    out = Planned()
    for where, (mount, path, entry) in paths.items():
        if entry is None:
            if where in declared:
                out.findings.append(info(f"{where}: not in Vault, nothing to remove"))
            continue
        _plan_release(out, stack, mount, path, entry, elsewhere.get(where, set()), where in declared)
    return out


def plan_prune(
    store: SecretStore,
    contract: ResolvedContract,
    targets: list[Target],
    declared_elsewhere: Mapping[str, set[str]] | None = None,
) -> Planned:
    """Only what left the contract: secrets the stack owns and no longer declares, and keys of
    its secrets that the contract no longer names (secrets this tool created, declared by
    this stack alone; older versions keep the keys)."""
    stack = contract.contract.stack
    declared, paths = _candidates(store, contract, targets)
    elsewhere = declared_elsewhere or {}
    out = Planned()
    for where, (mount, path, entry) in paths.items():
        if entry is None:
            continue
        if where not in declared:
            _plan_release(out, stack, mount, path, entry, elsewhere.get(where, set()), False)
            continue
        owners = ownership.read(entry.custom_metadata)
        extra = sorted(set(entry.data) - set(declared[where].desired.key_names()))
        if not extra or not entry.live:
            continue
        if owners.created_here and set(owners.declarations) == {stack}:
            keep = {k: v for k, v in entry.data.items() if k not in extra}
            out.actions.append(Action("drop-keys", mount, path, tuple(extra), cas=entry.version, keep=keep))
        else:
            out.findings.append(
                warning(f"{where}: keeps {', '.join(extra)}: the secret was not created by this contract alone")
            )
    return out


def _candidates(
    store: SecretStore, contract: ResolvedContract, targets: list[Target]
) -> tuple[dict[str, Target], dict[str, tuple[str, str, Entry | None]]]:
    """The targets the contract's stack declares, by path; and those paths plus every path in
    the contract's folders, with what Vault holds."""
    declared = {t.where: t for t in targets if contract.contract.stack in t.desired.stacks}
    layout = contract.secrets[0].layout
    for mount in {r.mount for r in contract.secrets}:
        store.check_mount(mount)
    keys = {where: (t.desired.mount, t.desired.path) for where, t in declared.items()}
    namespaces = sorted({s.namespace for s in contract.contract.secrets})
    for folder in layout.folders(contract.contract.stack, namespaces):
        for name in store.list(layout.mount, folder) or []:
            if not name.endswith("/"):
                path = posixpath.join(folder, name)
                keys.setdefault(f"{layout.mount}/{path}", (layout.mount, path))
    entries = parallel(lambda k: store.read(*k), list(keys.values()))
    return declared, {where: (*key, entry) for (where, key), entry in zip(keys.items(), entries, strict=True)}


def _plan_release(
    out: Planned, stack: str, mount: str, path: str, entry: Entry, elsewhere: set[str], is_declared: bool
) -> None:
    where = f"{mount}/{path}"
    owners = ownership.read(entry.custom_metadata)
    if owners.foreign_tool or not owners.declared_by(stack):
        if is_declared:
            holder = f"managed by '{owners.foreign_tool}'" if owners.foreign_tool else "not owned by it"
            out.findings.append(warning(f"{where}: kept, {holder} (contract '{stack}')"))
        return
    others = (set(owners.declarations) | elsewhere) - {stack}
    if owners.created_here and not others:
        out.actions.append(Action("delete", mount, path, tuple(sorted(entry.data))))
        return
    if others:
        note = f"still declared by {', '.join(sorted(others))}"
    else:
        origin = owners.origin or "recorded by an earlier release, origin unknown"
        note = f"not created by secret-contract ({origin}): its versions stay; delete it by hand if meant"
    out.actions.append(Action("release", mount, path, metadata=ownership.release(owners, stack), note=note))


# --- rotate --------------------------------------------------------------------------------


def plan_rotate(
    store: SecretStore, stack: str, targets: list[Target], secret: str | None = None, keys: tuple[str, ...] = ()
) -> Planned:
    """New values for generated keys: every generated key of the stack's secrets, or those of
    one secret (`name` or `namespace/name`) and only the named keys."""
    out = Planned()
    chosen = [t for t in targets if stack in t.desired.stacks and _matches(t, secret)]
    if not chosen:
        out.findings.append(error(f"contract '{stack}' declares no secret {secret!r}" if secret else "no secrets"))
        return out
    entries = parallel(lambda t: store.read(t.desired.mount, t.desired.path), chosen)
    for target, entry in zip(chosen, entries, strict=True):
        desired = target.desired
        wanted = keys or tuple(desired.generated)
        static = [k for k in wanted if k in desired.static]
        unknown = [k for k in wanted if k not in desired.static and k not in desired.generated]
        for key in static:
            out.findings.append(
                error(f"{target.where}: key '{key}' has a static value; change it in the contract instead")
            )
        for key in unknown:
            out.findings.append(error(f"{target.where}: the contract declares no key '{key}' here"))
        if static or unknown:
            continue
        if not wanted:
            out.findings.append(info(f"{target.where}: no generated keys to rotate"))
            continue
        if entry is None:
            out.findings.append(error(f"{target.where}: not in Vault; a build creates it"))
            continue
        owners = ownership.read(entry.custom_metadata)
        if owners.foreign_tool or not owners.declared_by(stack):
            holder = f"managed by '{owners.foreign_tool}'" if owners.foreign_tool else "not owned by it"
            out.findings.append(error(f"{target.where}: refusing to rotate, {holder} (contract '{stack}')"))
            continue
        regenerate = {k: desired.generated[k] for k in wanted}
        if not entry.live:
            regenerate = dict(desired.generated)  # the old values are gone: every generated key is new
        keep = {k: v for k, v in entry.data.items() if k not in regenerate}
        keep.update({k: v for k, v in desired.static.items() if k not in keep})
        shared = sorted(set(owners.declarations) - {stack})
        note = f"shared with {', '.join(shared)}: their Secret changes too" if shared else ""
        out.actions.append(
            Action(
                "rotate",
                desired.mount,
                desired.path,
                tuple(sorted(regenerate)),
                cas=entry.version,
                regenerate=regenerate,
                keep=keep,
                note=note,
            )
        )
    return out


def _matches(target: Target, secret: str | None) -> bool:
    if not secret:
        return True
    namespace, _, name = secret.rpartition("/")
    path = target.desired.path
    return path.endswith(f"/{secret}") if namespace else posixpath.basename(path) == name


# --- migrate -------------------------------------------------------------------------------


def plan_migrate(store: SecretStore, targets: list[Target], delete_source: bool = False) -> Planned:
    """Bring values written by the older script (or under another layout) to where the
    contracts resolve, keeping every value: copy, then mark the source as migrated (delete
    it only with `delete_source`); values already in place are adopted as they are."""
    out = Planned()
    states = read_states(store, targets)
    for target, state in zip(targets, states, strict=True):
        desired = target.desired
        current = state.current
        if current is not None and current.ever_written:
            _plan_in_place(out, target, current)
            continue
        sources = [(p, e) for p, e in state.legacy.items() if e is not None and e.live]
        if not sources:
            out.findings.append(info(f"{target.where}: nothing to migrate (a build creates it)"))
            continue
        if len(sources) > 1:
            places = ", ".join(f"{desired.mount}/{p}" for p, _ in sources)
            out.findings.append(error(f"{target.where}: values exist at several places ({places}); keep one"))
            continue
        source_path, source = sources[0]
        source_owners = ownership.read(source.custom_metadata)
        if source_owners.foreign_tool:
            out.findings.append(
                error(f"{target.where}: {desired.mount}/{source_path} is managed by '{source_owners.foreign_tool}'")
            )
            continue
        origin = f"{ownership.MIGRATED}:{desired.mount}/{source_path}"
        out.actions.append(
            Action(
                "copy",
                desired.mount,
                desired.path,
                tuple(sorted(source.data)),
                cas=current.version if current else 0,
                data=dict(source.data),
                metadata=ownership.claim(desired.declarations(), origin),
                note=f"from {desired.mount}/{source_path}{_still_missing(desired, source.data)}",
            )
        )
        if delete_source:
            out.actions.append(Action("delete-source", desired.mount, source_path, tuple(sorted(source.data))))
        else:
            out.actions.append(
                Action(
                    "mark-source",
                    desired.mount,
                    source_path,
                    metadata={ownership.MIGRATED_TO_KEY: target.where},
                    note=f"to {target.where}; its versions stay",
                )
            )
    return out


def _plan_in_place(out: Planned, target: Target, current: Entry) -> None:
    desired = target.desired
    owners = ownership.read(current.custom_metadata)
    if owners.foreign_tool:
        out.findings.append(error(f"{target.where}: managed by '{owners.foreign_tool}', not migrated"))
    elif not owners.unowned:
        out.findings.append(info(f"{target.where}: already owned by {', '.join(sorted(owners.declarations))}"))
    elif not current.live:
        out.findings.append(error(f"{target.where}: its latest version is {current.latest}; restore it first"))
    else:
        out.actions.append(
            Action(
                "adopt",
                desired.mount,
                desired.path,
                cas=current.version,
                metadata=ownership.claim(desired.declarations(), f"{ownership.ADOPTED}:{current.version}"),
                note=f"in place{_still_missing(desired, current.data)}",
            )
        )


def _still_missing(desired: Desired, data: Mapping[str, str]) -> str:
    missing = [k for k in desired.key_names() if k not in data]
    differing = [k for k, v in desired.static.items() if k in data and data[k] != v]
    parts = []
    if missing:
        parts.append(f"the next build adds {', '.join(missing)}")
    if differing:
        parts.append(f"the next build sets {', '.join(differing)} to the contract's value")
    return "; " + "; ".join(parts) if parts else ""


# --- carrying out ----------------------------------------------------------------------------


def denied(store: SecretStore, actions: list[Action]) -> list[Result]:
    checks = [check for action in actions for check in action.checks()]
    refused = store.denied(checks) if checks else []
    return [
        error(f"the token may not {c.capability} {c.api_path}: its policy needs '{c.capability}' there")
        for c in refused
    ]


def apply(store: SecretStore, actions: list[Action], progress: Progress | None = None) -> list[Result]:
    """Carry out the actions, in order (a copy before its source is marked or deleted)."""
    findings = []
    for done, action in enumerate(actions, 1):
        findings.append(_apply_one(store, action))
        if progress:
            progress("writing Vault", done, len(actions))
    return findings


def _apply_one(store: SecretStore, action: Action) -> Result:
    kind = action.kind
    if kind in ("delete", "delete-source"):
        store.delete(action.mount, action.path)
        return info(f"{action.where}: deleted, with every version")
    if kind in ("drop-keys", "rotate", "copy"):
        data = dict(action.data) if kind == "copy" else dict(action.keep)
        data.update({k: generators.generate(g.generator, g.length) for k, g in action.regenerate.items()})
        version = store.write(action.mount, action.path, data, action.cas)
        if action.metadata:
            store.update_metadata(action.mount, action.path, action.metadata)
        past = {
            "drop-keys": f"removed {', '.join(action.keys)}",
            "rotate": f"rotated {', '.join(action.keys)}",
            "copy": f"copied {len(action.keys)} keys",
        }[kind]
        rollback = f"; version {version - 1} stays readable" if version > 1 else ""
        return info(f"{action.where}: {past} (version {version}{rollback}){f'; {action.note}' if action.note else ''}")
    store.update_metadata(action.mount, action.path, action.metadata)
    past = {"release": "released", "adopt": "adopted", "mark-source": "marked as migrated"}[kind]
    return info(f"{action.where}: {past}{f' ({action.note})' if action.note else ''}")
