"""What the commands decide besides a build: verify, remove, release, prune, rotate and migrate. Each
works on the targets of resolved contracts through a `SecretStore`, reads only, and returns
findings and the `actions.Action`s to take; the command line shows them, asks, and has
`actions.apply` carry them out. Who may do what with a secret is decided by `policy`, as for
a build.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from secret_contract import inputs, ownership, pipeline, plan, policy
from secret_contract.actions import Action, Expect, Planned, Staged
from secret_contract.listing import check_mounts, contract_folders, declared_by, list_paths, namespaces_of
from secret_contract.model import Desired, Target
from secret_contract.project import Project
from secret_contract.resolution import ResolvedContract
from secret_contract.results import Result, counted, error, info, warning
from secret_contract.store import Entry, Progress, SecretStore, parallel
from secret_contract.sync import read_states

# --- verify ------------------------------------------------------------------------------


def verify(store: SecretStore, targets: list[Target], progress: Progress | None = None) -> list[Result]:
    """A finding per gap between Vault and the contracts (never a value), or one line that
    all is there."""
    states = read_states(store, targets, progress=progress)
    findings = []
    for target, state in zip(targets, states, strict=True):
        gaps = plan.gaps(target.desired, state.current)
        found = [p for p, e in state.former.items() if e is not None and e.live]
        if state.current is None and found:
            gaps = [f"missing secret; its values exist at {target.desired.mount}/{found[0]} (run `migrate`)"]
        findings.extend(target.finding(error, f"{target.where}: {gap}") for gap in gaps)
    if not findings:
        keys = sum(len(t.desired.key_names()) for t in targets)
        findings.append(info(f"Vault holds all {counted(keys, 'key')} of {counted(len(targets), 'secret')}"))
    return findings


# --- several contracts at once ------------------------------------------------------------

Decide = Callable[[SecretStore, ResolvedContract], Planned]


def plan_contracts(store: SecretStore, contracts: list[ResolvedContract], decide: Decide) -> Planned:
    """One plan for every contract a command names (`release a b`), decided before anything is
    written, so that one permission check covers every action and a refusal anywhere changes
    nothing. Each contract is decided on Vault as the actions before it leave it; an action
    on a secret an earlier contract's action already writes or deletes is left out (a
    shared secret is rotated once)."""
    staged = Staged(store)
    out = Planned()
    for contract in contracts:
        planned = decide(staged, contract)
        out.findings.extend(planned.findings)
        kept = [a for a in planned.actions if a.where not in staged.written]
        out.findings.extend(
            info(f"{a.where}: done once, for the contract before '{contract.stack}'")
            for a in planned.actions
            if a.where in staged.written
        )
        staged.stage(kept)
        out.actions.extend(kept)
    return out


# --- remove, release and prune ---------------------------------------------------------------

# Vault path -> {stack: declaration digest} of every contract of the repository that declares it.
Elsewhere = Mapping[str, Mapping[str, str]]


def repository_declarations(targets: list[Target]) -> dict[str, dict[str, str]]:
    """Who declares each Vault path among `targets` (a build of every contract of the
    repository), each with the digest of its own declaration, also where the repository's
    contracts disagree (that build has errors): `policy` lets a claim pass only to a stack
    whose digest matches the leaving stack's."""
    return {t.where: t.declarations() for t in targets}


def declared_in_repository(project: Project, env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """`repository_declarations` of every contract under the project's stacks root, built
    without Vault: what remove, release and prune must leave to the other stacks."""
    files = inputs.stack_contracts(project)
    if not files:
        return {}
    everything = pipeline.build(inputs.read_files(files), env, pipeline.Options(write=False), project.settings)
    return repository_declarations(everything.targets)


Leave = Callable[[SecretStore, ResolvedContract, list[Target], Elsewhere | None], Planned]


def plan_leaving(
    store: SecretStore, contracts: list[ResolvedContract], targets: list[Target], elsewhere: Elsewhere, leave: Leave
) -> Planned:
    """`remove` or `release` (`leave`) of every stack a command names, against the repository's
    declarations `elsewhere`: the named stacks leave together, so one of them declaring a secret
    in the repository is no claim that keeps it for another (`remove a b` of a secret both
    declare deletes it; `release a b` releases it for both). Each keeps its own declaration
    there, which is what its recorded claim is compared with."""
    going = {c.stack for c in contracts}

    def staying(stack: str) -> dict[str, dict[str, str]]:
        return {w: {s: d for s, d in by.items() if s == stack or s not in going} for w, by in elsewhere.items()}

    return plan_contracts(store, contracts, lambda s, c: leave(s, c, targets, staying(c.stack)))


def plan_remove(
    store: SecretStore, contract: ResolvedContract, targets: list[Target], elsewhere: Elsewhere | None = None
) -> Planned:
    """Everything the contract's stack owns: what it declares, and what it left behind in its
    folders. A secret another contract still declares is kept, and only this stack's record
    is removed; a secret this tool adopted (or migrated) is released, never destroyed."""
    stack = contract.stack
    found = _candidates(store, contract, targets, elsewhere or {})
    out = Planned()
    for where, (mount, path, entry) in found.paths.items():
        if entry is None:
            if where in found.declared:
                out.findings.append(info(f"{where}: not in Vault, nothing to remove"))
            continue
        _plan_release(out, stack, mount, path, entry, (elsewhere or {}).get(where, {}), where in found.declared)
    out.findings.extend(found.notes)
    return out


def plan_prune(
    store: SecretStore, contract: ResolvedContract, targets: list[Target], elsewhere: Elsewhere | None = None
) -> Planned:
    """Only what left the contract: secrets the stack owns and no longer declares (its record
    is released where another contract still declares them), and keys of its secrets that the
    contract no longer names (secrets this tool created, declared by this stack alone; older
    versions keep the keys)."""
    stack = contract.stack
    found = _candidates(store, contract, targets, elsewhere or {})
    out = Planned()
    for where, (mount, path, entry) in found.paths.items():
        if entry is None:
            continue
        if where not in found.declared:
            _plan_release(out, stack, mount, path, entry, (elsewhere or {}).get(where, {}), False)
            continue
        owners = ownership.read(entry.custom_metadata)
        extra = sorted(set(entry.data) - set(found.declared[where].desired.key_names()))
        if not extra or not entry.live:
            continue
        if policy.may_drop_keys(owners, stack, entry.version):
            keep = {k: v for k, v in entry.data.items() if k not in extra}
            dropped = ownership.record_dropped(owners.dropped | set(extra))
            out.actions.append(
                Action(
                    "drop-keys",
                    mount,
                    path,
                    tuple(extra),
                    cas=entry.version,
                    keep=keep,
                    metadata=dropped,
                    expect=Expect.of(entry),
                    records_version=True,
                )
            )
        else:
            why = policy.foreign_version(owners, entry.version) or "the secret was not created by this contract alone"
            out.findings.append(warning(f"{where}: keeps {', '.join(extra)}: {why}"))
    out.findings.extend(found.notes)
    return out


def plan_release(
    store: SecretStore, contract: ResolvedContract, targets: list[Target], elsewhere: Elsewhere | None = None
) -> Planned:
    """Forget the stack's claim on everything it owns and keep every value and version (a
    platform's `make down`): a later build of the stack takes its secrets back without new
    values. Where another contract declares a secret, it keeps it, as with `remove`."""
    stack = contract.stack
    found = _candidates(store, contract, targets, elsewhere or {})
    out = Planned()
    for where, (mount, path, entry) in found.paths.items():
        if entry is None:
            continue
        owners = ownership.read(entry.custom_metadata)
        kept = policy.keep(owners, stack, (elsewhere or {}).get(where, {}), entry.version)
        if kept is not None:
            action = Action("release", mount, path, metadata=kept.metadata, note=kept.note, expect=Expect.of(entry))
            out.actions.append(action)
        elif where in found.declared:
            out.findings.append(info(f"{where}: nothing to release ({policy.holder(owners)})"))
    out.findings.extend(found.notes)
    return out


@dataclass
class Candidates:
    declared: dict[str, Target]  # what the stack's contract declares, by `mount/path`
    paths: dict[str, tuple[str, str, Entry | None]]  # those and everything else it may hold
    notes: list[Result] = field(default_factory=list)  # what could not be searched


def _candidates(
    store: SecretStore, contract: ResolvedContract, targets: list[Target], elsewhere: Elsewhere
) -> Candidates:
    """The targets the contract's stack declares; and, with what Vault holds at each, those
    paths, every path under the contract's folders (at any depth), and the paths other
    contracts of the repository declare (a shared secret this stack stopped declaring)."""
    stack = contract.stack
    declared = declared_by(stack, targets)
    layout, folders = contract_folders(contract)
    check_mounts(store, {r.mount for r in contract.secrets})
    keys = {where: (t.desired.mount, t.desired.path) for where, t in declared.items()}
    namespaces = namespaces_of(contract)
    for folder in folders:
        for path in list_paths(store, layout.mount, folder):
            keys.setdefault(f"{layout.mount}/{path}", (layout.mount, path))
    for where in elsewhere:
        mount, _, path = where.partition("/")
        keys.setdefault(where, (mount, path))
    entries = parallel(lambda k: store.read(*k), list(keys.values()))
    notes = []
    if layout.scheme != "stack":
        notes.append(
            info(
                f"contract '{stack}': secrets it left behind are found in the folders of the namespaces it declares "
                f"({', '.join(namespaces)}) and among the repository's contracts; a namespace it no longer declares "
                "is not searched (list it with `secret-contract list`)"
            )
        )
    return Candidates(declared, {w: (*k, e) for (w, k), e in zip(keys.items(), entries, strict=True)}, notes)


def _plan_release(
    out: Planned, stack: str, mount: str, path: str, entry: Entry, elsewhere: Mapping[str, str], is_declared: bool
) -> None:
    where = f"{mount}/{path}"
    owners = ownership.read(entry.custom_metadata)
    disposal = policy.dispose(owners, stack, elsewhere, frozenset(entry.data), entry.version)
    if disposal is None:
        if is_declared:
            out.findings.append(warning(f"{where}: kept, {policy.refusal_to_change(owners, stack)}"))
        return
    expect = Expect.of(entry)
    if disposal.kind == "keep":
        out.findings.append(warning(f"{where}: kept, {disposal.note}"))
    elif disposal.kind == "delete":
        out.actions.append(Action("delete", mount, path, tuple(sorted(entry.data)), expect=expect))
    else:
        out.actions.append(
            Action("release", mount, path, metadata=disposal.metadata, note=disposal.note, expect=expect)
        )


# --- rotate --------------------------------------------------------------------------------


def plan_rotate(
    store: SecretStore, stack: str, targets: list[Target], secret: str | None = None, keys: tuple[str, ...] = ()
) -> Planned:
    """New values for generated keys: every generated key of the stack's secrets, or those of
    one secret (`namespace/name`, or a `name` that only one namespace has) and only the named
    keys."""
    out = Planned()
    mine = [t for t in targets if stack in t.desired.stacks]
    chosen = [t for t in mine if secret is None or _matches(t, secret)]
    if not chosen:
        out.findings.append(error(f"contract '{stack}' declares no secret {secret!r}" if secret else "no secrets"))
        return out
    if secret and "/" not in secret and len(chosen) > 1:
        names = ", ".join(sorted(i for t in chosen for i in t.secret_ids if i.endswith(f"/{secret}")))
        out.findings.append(error(f"'{secret}' names several secrets ({names}): name one as NAMESPACE/NAME"))
        return out
    entries = parallel(lambda t: store.read(t.desired.mount, t.desired.path), chosen)
    for target, entry in zip(chosen, entries, strict=True):
        desired = target.desired
        wanted = keys or tuple(desired.generated)
        static = [k for k in wanted if k in desired.static]
        provided = [k for k in wanted if k in desired.provided]
        for key in provided:
            out.findings.append(
                error(f"{target.where}: key '{key}' is provided by a person; write its new value into Vault instead")
            )
        unknown = [k for k in wanted if k not in desired.key_names()]
        for key in static:
            out.findings.append(
                error(f"{target.where}: key '{key}' has a static value; change it in the contract instead")
            )
        for key in unknown:
            out.findings.append(error(f"{target.where}: the contract declares no key '{key}' here"))
        if static or unknown or provided:
            continue
        if not wanted:
            out.findings.append(info(f"{target.where}: no generated keys to rotate"))
            continue
        if entry is None:
            out.findings.append(error(f"{target.where}: not in Vault; a build creates it"))
            continue
        owners = ownership.read(entry.custom_metadata)
        refusal = policy.refusal_to_change(owners, stack)
        if refusal:
            out.findings.append(error(f"{target.where}: refusing to rotate, {refusal}"))
            continue
        regenerate = {k: desired.generated[k] for k in wanted}
        if not entry.live:
            regenerate = dict(desired.generated)  # the old values are gone: every generated key is new
        keep = {k: v for k, v in entry.data.items() if k not in regenerate}
        keep.update({k: v for k, v in desired.static.items() if k not in keep})
        shared = sorted(set(owners.declarations) - {stack})
        notes = [f"shared with {', '.join(shared)}: their Secret changes too"] if shared else []
        foreign = policy.foreign_version(owners, entry.version)
        if foreign:
            # Rotating on purpose replaces the named keys; the other keys carry that version's
            # values forward, so the record stays and `remove` keeps the secret.
            notes.append(f"{foreign}; the keys not rotated keep its values, so `remove` will keep this secret")
        out.actions.append(
            Action(
                "rotate",
                desired.mount,
                desired.path,
                tuple(sorted(regenerate)),
                cas=entry.version,
                regenerate=regenerate,
                keep=keep,
                note="; ".join(notes),
                records_version=foreign is None,
            )
        )
    return out


def _matches(target: Target, secret: str) -> bool:
    """Whether `secret` (`namespace/name`, or a bare `name`) is one of the target's Secrets."""
    if "/" in secret:
        return secret in target.secret_ids
    return any(i.rpartition("/")[2] == secret for i in target.secret_ids)


# --- migrate -------------------------------------------------------------------------------


def plan_migrate(store: SecretStore, targets: list[Target], delete_source: bool = False) -> Planned:
    """Bring values written by the older script (or under another layout) to where the
    contracts resolve, keeping every value: copy, then mark the source as migrated (delete
    it only with `delete_source`); values already in place are adopted as they are. A source
    another contract owns is its live secret, never taken."""
    out = Planned()
    states = read_states(store, targets)
    for target, state in zip(targets, states, strict=True):
        desired = target.desired
        current = state.current
        if current is not None and current.ever_written:
            _plan_in_place(out, target, current)
            continue
        sources = [(p, e) for p, e in state.former.items() if e is not None and e.live]
        if not sources:
            out.findings.append(info(f"{target.where}: nothing to migrate (a build creates it)"))
            continue
        if len(sources) > 1:
            places = ", ".join(f"{desired.mount}/{p}" for p, _ in sources)
            out.findings.append(error(f"{target.where}: values exist at several places ({places}); keep one"))
            continue
        source_path, source = sources[0]
        refusal = policy.refusal_as_source(ownership.read(source.custom_metadata), desired.stacks)
        if refusal:
            out.findings.append(error(f"{target.where}: not migrating from {desired.mount}/{source_path}: {refusal}"))
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
                records_version=True,
            )
        )
        expect = Expect.of(source)
        if any(a.kind in ("delete-source", "mark-source") and a.path == source_path for a in out.actions):
            continue  # one older secret copied to several contracts' paths: deleted or marked once
        if delete_source:
            out.actions.append(
                Action("delete-source", desired.mount, source_path, tuple(sorted(source.data)), expect=expect)
            )
        else:
            out.actions.append(
                Action(
                    "mark-source",
                    desired.mount,
                    source_path,
                    metadata={ownership.MIGRATED_TO_KEY: target.where},
                    note=f"to {target.where}; its versions stay",
                    expect=expect,
                )
            )
    return out


def _plan_in_place(out: Planned, target: Target, current: Entry) -> None:
    desired = target.desired
    owners = ownership.read(current.custom_metadata)
    if owners.foreign_tool:
        out.findings.append(error(f"{target.where}: managed by '{owners.foreign_tool}', not migrated"))
    elif owners.declarations:
        out.findings.append(info(f"{target.where}: already owned by {', '.join(sorted(owners.declarations))}"))
    elif policy.may_take_back(owners, desired.stacks):
        out.findings.append(
            info(f"{target.where}: released by {policy.contracts(owners.releases)}; building it takes it back")
        )
    elif owners.releases:
        out.findings.append(error(f"{target.where}: not adopted: {policy.refusal_released(owners, desired.stacks)}"))
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
                expect=Expect.of(current),
            )
        )


def _still_missing(desired: Desired, data: Mapping[str, str]) -> str:
    missing = [k for k in desired.written_keys() if k not in data]
    differing = [k for k, v in desired.static.items() if k in data and data[k] != v]
    parts = []
    if missing:
        parts.append(f"the next build adds {', '.join(missing)}")
    if differing:
        parts.append(f"the next build sets {', '.join(differing)} to the contract's value")
    return "; " + "; ".join(parts) if parts else ""
