"""Bring Vault in line with the contracts: read, plan, check, then write.

The order is what makes "nothing half-written" hold (docs/reliability.md):
1. every mount is checked to be KV version 2;
2. every secret's state is read (a folder holding many of them is listed first, so that
   paths known to be empty need no read), for an empty path its former paths, and where the
   latest version lacks a generated key, the earlier versions that may hold it;
3. every secret is planned (`plan.diff`, pure); unowned data matching its declaration is
   re-read for a moment (a concurrent build records its ownership just after its data);
   one conflict or block means no write;
4. the token's permission for every write is checked; one refusal means no write;
5. the secrets are written in parallel, each in one check-and-set data write followed by
   its ownership record, which names the version written. A write that loses a race
   re-reads and re-plans, so parallel builds converge on one value per key. After a failure
   nothing new is started, and the report says which secrets were written and which were not.
"""

from __future__ import annotations

import posixpath
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from secret_contract import generators, ownership, plan
from secret_contract.errors import CasConflict, SecretContractError, VaultPermissionDenied
from secret_contract.model import Desired, Target
from secret_contract.plan import Change
from secret_contract.results import Result, counted, error, info, warning
from secret_contract.store import DEFAULT_WORKERS, Entry, Progress, SecretStore, WriteCheck, parallel

MAX_ATTEMPTS = 8
MAX_DETAILED = 50
LIST_THRESHOLD = 4  # a folder with at least this many paths to read is listed first
SETTLE_ATTEMPTS, SETTLE_DELAY = 5, 0.05  # re-reads of unowned matching data: 0.05 s doubling, ~1.5 s in all
HISTORY_DEPTH = 100  # earlier versions searched for a generated key the latest one lacks


@dataclass(frozen=True)
class State:
    """What Vault holds at a target's path, and (only where that is empty) at its former paths."""

    current: Entry | None
    former: dict[str, Entry | None] = field(default_factory=dict)
    history: plan.History = field(default_factory=plan.History)  # of generated keys the latest lacks


@dataclass
class Report:
    findings: list[Result] = field(default_factory=list)
    changes: list[tuple[Target, Change]] = field(default_factory=list)  # as finally applied (or planned)
    written: list[str] = field(default_factory=list)  # paths whose data this run wrote
    # Secrets this run created whose ownership record a failure then stopped: a build will not
    # take them over, so `migrate` adopts them (their values kept).
    unrecorded: list[Target] = field(default_factory=list)
    recorded: int = 0  # ownership records written without data (claims, declarations)
    # Paths whose change this run made: its data (also where the ownership record then failed:
    # the version exists) or, for a claim, its record. A path not here was not changed.
    applied: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # paths a dry run would change (none where refused)
    failure: SecretContractError | None = None
    values: list[str] = field(default_factory=list, repr=False)  # generated values, for scrubbing messages


def read_states(
    store: SecretStore, targets: list[Target], workers: int = DEFAULT_WORKERS, progress: Progress | None = None
) -> list[State]:
    """The current state of every target (one read each, fewer where listing shows a path empty)."""
    for mount in sorted({t.desired.mount for t in targets}):
        store.check_mount(mount)
    listed = _listings(store, [(t.desired.mount, t.desired.path) for t in targets], workers)
    currents = parallel(
        lambda t: _read_unless_absent(store, listed, t.desired.mount, t.desired.path),
        targets,
        workers,
        progress,
        "reading Vault",
    )
    empty = [t for t, cur in zip(targets, currents, strict=True) if cur is None and t.desired.former_paths]
    former_keys = [(t.desired.mount, p) for t in empty for p in t.desired.former_paths]
    former_listed = _listings(store, former_keys, workers)
    found = parallel(lambda k: _read_former(store, former_listed, *k), former_keys, workers)
    former_entries = dict(zip(former_keys, found, strict=True))
    lacking = [(t, cur) for t, cur in zip(targets, currents, strict=True) if _lacks_generated(t.desired, cur)]
    looked_up = parallel(lambda tc: earlier_versions(store, *tc), lacking, workers)
    histories = {id(t): found for (t, _), found in zip(lacking, looked_up, strict=True)}
    return [
        State(
            cur,
            {p: former_entries[(t.desired.mount, p)] for p in t.desired.former_paths} if cur is None else {},
            histories.get(id(t), plan.History()),
        )
        for t, cur in zip(targets, currents, strict=True)
    ]


def _lacks_generated(desired: Desired, current: Entry | None) -> bool:
    return (
        current is not None
        and current.live
        and current.version > 1
        and any(k not in current.data for k in desired.generated)
    )


def earlier_versions(store: SecretStore, target: Target, current: Entry | None) -> plan.History:
    """For each generated key the latest version lacks, the newest earlier version holding it,
    and the earlier versions that were deleted (or expired) and so may hold one unseen.
    Destroyed versions hold nothing any more."""
    if not _lacks_generated(target.desired, current):
        return plan.History()
    assert current is not None
    missing = [k for k in target.desired.generated if k not in current.data]
    found: dict[str, int] = {}
    deleted: list[int] = []
    for version in range(current.version - 1, max(0, current.version - 1 - HISTORY_DEPTH), -1):
        earlier = store.read_version(target.desired.mount, target.desired.path, version)
        if earlier.state == "deleted":
            deleted.append(version)
        found.update({k: version for k in missing if k in earlier.data and k not in found})
        if len(found) == len(missing):
            break
    return plan.History(found, tuple(sorted(deleted)))


def _listings(store: SecretStore, keys: list[tuple[str, str]], workers: int) -> dict[tuple[str, str], frozenset[str]]:
    """Names in each folder holding many of `keys`; folders the token may not list are left out."""
    per_folder = Counter((mount, posixpath.dirname(path)) for mount, path in keys)
    folders = [f for f, n in per_folder.items() if n >= LIST_THRESHOLD]
    names = parallel(lambda f: store.list(f[0], f[1] + "/" if f[1] else ""), folders, workers)
    return {f: frozenset(found) for f, found in zip(folders, names, strict=True) if found is not None}


def _read_unless_absent(
    store: SecretStore, listed: dict[tuple[str, str], frozenset[str]], mount: str, path: str
) -> Entry | None:
    folder, name = posixpath.split(path)
    known = listed.get((mount, folder))
    if known is not None and name not in known:
        return None
    return store.read(mount, path)


def _read_former(
    store: SecretStore, listed: dict[tuple[str, str], frozenset[str]], mount: str, path: str
) -> Entry | None:
    """A former path as far as the token may see it: a token scoped to the paths a contract
    resolves to may not read the older layout's, and then there is nothing it could fork."""
    try:
        return _read_unless_absent(store, listed, mount, path)
    except VaultPermissionDenied:
        return None


def plan_all(targets: list[Target], states: list[State]) -> list[Change]:
    return [plan.diff(t.desired, s.current, s.former, history=s.history) for t, s in zip(targets, states, strict=True)]


def writes_of(target: Target, change: Change) -> list[WriteCheck]:
    """The writes a change makes, for the permission check."""
    d = target.desired
    checks = []
    if change.writes_data:
        checks.append(WriteCheck.data(d.mount, d.path, change.cas))
    if change.metadata or (change.writes_data and change.records_version):
        checks.append(WriteCheck("metadata", d.mount, d.path))
    return checks


def sync(
    targets: list[Target],
    store: SecretStore,
    *,
    dry_run: bool = False,
    verbose: bool = False,
    workers: int = DEFAULT_WORKERS,
    progress: Progress | None = None,
) -> Report:
    """Plan every target against Vault and, unless `dry_run`, write what the plans say.

    Errors before the first write (unreachable, denied, not KV v2) propagate as exceptions;
    a failure during the writes ends in `Report.failure`, with the written ones counted."""
    report = Report()
    states = read_states(store, targets, workers, progress)
    changes = _settle(store, targets, states, plan_all(targets, states))
    report.changes = list(zip(targets, changes, strict=True))
    refused = [f for t, c in report.changes if c.refused for f in _describe(t, c, dry_run)]
    if refused:
        report.findings.extend(refused)
        return report
    pending = [(t, c) for t, c in report.changes if c.writes]
    if dry_run:
        report.pending = [t.where for t, _ in pending]
        described = [
            f for t, c in report.changes if c.writes or c.unapplied or c.awaiting for f in _describe(t, c, True)
        ]
        report.findings.extend(_summarize(described, verbose))
        return report
    checks = [check for t, c in pending for check in writes_of(t, c)]
    by_path = {(t.desired.mount, t.desired.path): t for t, _ in pending}
    denied = store.denied(checks) if checks else []
    if denied:
        report.findings.extend(by_path[(d.mount, d.path)].finding(error, d.refusal) for d in denied)
        report.findings.append(
            error(
                f"Vault was not written: {counted(len(denied), 'permission')} missing; "
                "no secret of this build was written"
            )
        )
        return report
    applied = _apply_all(store, pending, report, workers, progress)
    report.changes = [(t, applied.get(id(t), c)) for t, c in report.changes]
    described = [f for t, c in report.changes if id(t) in applied or not c.writes for f in _describe(t, c, False)]
    report.findings.extend(_summarize(described, verbose))
    return report


def _settle(store: SecretStore, targets: list[Target], states: list[State], changes: list[Change]) -> list[Change]:
    """Re-read, a few times over about a second, the paths holding unowned data that matches
    their declaration: a concurrent build writes its ownership record right after its data, so
    such a path is usually owned a moment later. What stays unowned is refused."""
    waiting = [i for i, c in enumerate(changes) if c.awaiting_owner]
    settled = parallel(lambda i: _await_owner(store, targets[i], states[i].former, raced=False), waiting)
    for i, change in zip(waiting, settled, strict=True):
        changes[i] = change
    return changes


def _await_owner(store: SecretStore, target: Target, former: dict[str, Entry | None], raced: bool) -> Change:
    """Re-read and re-plan one path until its data is owned (or the wait is over)."""
    desired = target.desired
    change = None
    for attempt in range(SETTLE_ATTEMPTS):
        time.sleep(SETTLE_DELAY * 2**attempt)
        current = store.read(desired.mount, desired.path)
        history = earlier_versions(store, target, current)
        change = plan.diff(desired, current, former, raced=raced, history=history)
        if not change.awaiting_owner:
            break
    assert change is not None
    return change


def _apply_all(
    store: SecretStore,
    pending: list[tuple[Target, Change]],
    report: Report,
    workers: int,
    progress: Progress | None,
) -> dict[int, Change]:
    """Write every pending change; stop starting new ones after the first failure."""
    stop = threading.Event()
    lock = threading.Lock()
    applied: dict[int, Change] = {}

    def one(item: tuple[Target, Change]) -> None:
        target, change = item
        if stop.is_set():
            return

        created: list[bool] = []

        def data_written(cas: int) -> None:
            created.append(cas == 0)
            with lock:
                report.written.append(target.where)

        try:
            final = _apply(store, target, change, report.values, lock, data_written)
        except SecretContractError as exc:
            with lock:
                if report.failure is None:
                    report.failure = exc
                if created:
                    report.applied.append(target.where)
                if created and created[-1]:
                    report.unrecorded.append(target)
            stop.set()
            return
        with lock:
            applied[id(target)] = final
            if final.writes:
                report.applied.append(target.where)
            if final.metadata and not final.writes_data:
                report.recorded += 1

    parallel(one, pending, workers, progress, "writing Vault")
    return applied


def _apply(
    store: SecretStore,
    target: Target,
    change: Change,
    values: list[str],
    lock: threading.Lock,
    data_written: Callable[[int], None],
) -> Change:
    """Write one change; on a lost check-and-set race re-read, re-plan and try again.
    `data_written` is called as soon as the data is stored, so that a failure of the
    ownership record that follows still reports this secret as written."""
    desired = target.desired
    raced = False
    for _ in range(MAX_ATTEMPTS):
        if change.refused or not change.writes:
            return change
        if change.writes_data:
            fresh = {k: generators.generate(g.generator, g.length) for k, g in change.generate.items()}
            with lock:
                values.extend(fresh.values())
            try:
                version = store.write(
                    desired.mount, desired.path, {**change.keep, **change.set_static, **fresh}, change.cas
                )
            except CasConflict:
                raced = raced or change.cas == 0
                current = store.read(desired.mount, desired.path)
                change = plan.diff(desired, current, raced=raced, history=earlier_versions(store, target, current))
                if change.awaiting_owner:
                    # Another writer won the race: join it only once its ownership record shows
                    # it was a build of this tool (that record follows the data within moments).
                    change = _await_owner(store, target, {}, raced=raced)
                continue
            data_written(change.cas)
            if change.records_version:
                # In the same metadata write as the rest of the record; if it fails, the record
                # still names an older version and `remove` keeps the secret.
                change = replace(change, metadata={**change.metadata, **ownership.wrote(version)})
        if change.metadata:
            store.update_metadata(desired.mount, desired.path, change.metadata)
        return change
    raise CasConflict(desired.where, change.cas)


def _describe(target: Target, change: Change, dry_run: bool) -> list[Result]:
    awaited = [
        target.finding(warning, f"{target.where}: key '{k}' is {plan.awaited(target.desired, k)}")
        for k in change.awaiting
    ]
    return [*_described(target, change, dry_run), *_unapplied(target, change), *awaited]


def _unapplied(target: Target, change: Change) -> list[Result]:
    if not change.unapplied:
        return []
    keys = ", ".join(f"'{k}'" for k in change.unapplied)
    secret = sorted(target.secret_ids)[0]
    flags = " ".join(f"--key {k}" for k in change.unapplied)
    return [
        target.finding(
            warning,
            f"{target.where}: the contract's generator or length for {keys} is not applied: the stored value was "
            f"made otherwise, and a build never replaces a generated value. Replace it on purpose with "
            f"`secret-contract rotate {target.desired.stacks[0]} --secret {secret} {flags}`",
        )
    ]


def _described(target: Target, change: Change, dry_run: bool) -> list[Result]:
    where = target.where
    would = "would " if dry_run else ""
    if change.action == "conflict":
        return [target.finding(error, f"refusing to write {where}: {change.reason}")]
    if change.action == "blocked":
        return [target.finding(error, f"not writing {where}: {change.reason}")]
    if change.action == "create":
        verb = "create" if dry_run else "created"
        return [target.finding(info, f"{would}{verb} {where} ({change.summary()})")]
    if change.action == "update" and change.recreated:
        verb = "rewrite" if dry_run else "rewrote"
        return [target.finding(warning, f"{would}{verb} {where}: {change.reason}")]
    if change.action == "update":
        verb = "update" if dry_run else "updated"
        return [target.finding(info, f"{would}{verb} {where} ({change.summary()})")]
    if change.action == "claim":
        verb = "record" if dry_run else "recorded"
        return [target.finding(info, f"{would}{verb} the declaration of {where} by {', '.join(target.desired.stacks)}")]
    return []


def _summarize(findings: list[Result], verbose: bool) -> list[Result]:
    """One line per secret written, or, past MAX_DETAILED and without `verbose`, one line per
    kind of change: thousands of "created" lines help nobody. Warnings and errors stay whole."""
    notes = [f for f in findings if f.severity == "info"]
    if verbose or len(notes) <= MAX_DETAILED:
        return findings
    counts: dict[str, int] = defaultdict(int)
    for note in notes:
        words = note.message.split(" ", 2)
        counts[" ".join(words[:2]) if words[0] == "would" else words[0]] += 1
    summary = [
        info(f"{word} {counted(n, 'secret')} (-v lists each)", rule="vault") for word, n in sorted(counts.items())
    ]
    return [f for f in findings if f.severity != "info"] + summary
