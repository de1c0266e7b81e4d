"""Bring Vault in line with the contracts: read everything, plan, then write.

Reads and writes run in parallel (one kept-alive connection per worker). Nothing is
written unless every secret's plan is free of conflicts. Writes use check-and-set: a
write that loses a race re-reads, re-plans and tries again, so parallel builds converge
on one value per key (the loser keeps the winner's generated values).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from secret_contract import generators, plan
from secret_contract.errors import CasConflict
from secret_contract.plan import Change, Current, Desired
from secret_contract.results import FileRef, ResourceRef, Result, error, info, warning
from secret_contract.vault import SecretStore

MAX_ATTEMPTS = 8
MAX_DETAILED = 50
DEFAULT_WORKERS = 8

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Target:
    """A desired Vault secret, and where in which contract it was declared."""

    desired: Desired
    mount: str
    resource: ResourceRef
    file: FileRef | None
    field_path: str

    @property
    def where(self) -> str:
        return f"{self.mount}/{self.desired.path}"

    def finding(self, make: Callable[[str, str], Result], message: str) -> Result:
        return make(message, self.field_path).at(self.resource, self.file)


@dataclass
class Report:
    findings: list[Result] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)  # as finally applied

    @property
    def writes(self) -> int:
        return sum(1 for c in self.changes if c.writes_data)


Progress = Callable[[str, int, int], None]  # (phase, done, total)


def parallel(
    fn: Callable[[T], R],
    items: Iterable[T],
    workers: int = DEFAULT_WORKERS,
    progress: Progress | None = None,
    phase: str = "",
) -> list[R]:
    """`fn` over `items` on a thread pool, results in order; the first exception propagates."""
    items = list(items)
    if len(items) <= 1 or workers <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        if progress is None:
            return list(pool.map(fn, items))
        out = []
        for done, result in enumerate(pool.map(fn, items), 1):
            out.append(result)
            progress(phase, done, len(items))
        return out


def sync(
    targets: list[Target], store: SecretStore, workers: int = DEFAULT_WORKERS, progress: Progress | None = None
) -> Report:
    report = Report()
    for mount in sorted({t.mount for t in targets}):
        store.check_mount(mount)
    currents = parallel(lambda t: store.read(t.mount, t.desired.path), targets, workers, progress, "reading Vault")
    changes = [plan.diff(t.desired, cur) for t, cur in zip(targets, currents, strict=True)]
    conflicts = [f for t, c in zip(targets, changes, strict=True) if c.action == "conflict" for f in _describe(t, c)]
    if conflicts:
        report.findings.extend(conflicts)
        return report
    pending = [(t, c) for t, c in zip(targets, changes, strict=True) if c.writes]
    refused = _missing_capabilities(store, pending)
    if refused:
        report.findings.extend(refused)
        return report
    applied = dict(
        zip((id(t) for t, _ in pending), parallel(lambda tc: _apply(store, *tc), pending, workers), strict=True)
    )
    described: list[Result] = []
    for target, change in zip(targets, changes, strict=True):
        final = applied.get(id(target), change)
        report.changes.append(final)
        described.extend(_describe(target, final))
    report.findings.extend(_summarize(described, report.changes))
    return report


def _summarize(findings: list[Result], changes: list[Change]) -> list[Result]:
    """One line per secret written, or, past MAX_DETAILED, one line per kind of change:
    thousands of "created" lines help nobody. Warnings and errors are always kept whole."""
    notes = [f for f in findings if f.severity == "info"]
    if len(notes) <= MAX_DETAILED:
        return findings
    counts = Counter("ownership" if c.action == "noop" else c.action for c in changes if c.writes)
    words = {"create": "created", "update": "updated", "ownership": "recorded ownership of"}
    summary = [info(f"{words[kind]} {n} secrets", rule="vault") for kind, n in sorted(counts.items())]
    return [f for f in findings if f.severity != "info"] + summary


ALLOW_ALL = {"root", "sudo"}


def _missing_capabilities(store: SecretStore, pending: list[tuple[Target, Change]]) -> list[Result]:
    """Check the token may make every write before making any: KV has no transactions, so
    this is what keeps a token allowed only some of the paths from leaving half a build."""
    needs: list[tuple[Target, str, str]] = []
    for target, change in pending:
        if change.writes_data:
            needs.append(
                (target, f"{target.mount}/data/{target.desired.path}", "create" if change.cas == 0 else "update")
            )
        if change.claim:
            needs.append((target, f"{target.mount}/metadata/{target.desired.path}", "patch"))
    if not needs:
        return []
    granted = store.capabilities(sorted({path for _, path, _ in needs}))
    if granted is None:
        return []
    return [
        target.finding(error, f"the token may not {capability} {path}: its policy needs '{capability}' there")
        for target, path, capability in needs
        if not granted.get(path, set()) & ({capability} | ALLOW_ALL)
    ]


def _apply(store: SecretStore, target: Target, change: Change) -> Change:
    """Write one change; on a lost CAS race re-read, re-plan and retry."""
    desired = target.desired
    for _ in range(MAX_ATTEMPTS):
        if change.action == "conflict" or not change.writes:
            return change
        if change.writes_data:
            data: dict[str, object] = dict(change.keep)
            data.update(change.set_static)
            data.update({k: generators.generate(g.generator, g.length) for k, g in change.generate.items()})
            try:
                store.write(target.mount, desired.path, data, change.cas)
            except CasConflict:
                change = plan.diff(desired, _reread(store, target))
                continue
        if change.claim:
            store.set_metadata(target.mount, desired.path, plan.ownership_metadata(desired.owner))
        return change
    raise CasConflict(target.where, change.cas)


def _reread(store: SecretStore, target: Target) -> Current | None:
    current = store.read(target.mount, target.desired.path)
    if current is None:
        # A 404 on data but a CAS failure means metadata exists without a live version
        # (e.g. every version destroyed): CAS must name the metadata's current version.
        meta = store.read_metadata(target.mount, target.desired.path)
        if meta:
            return Current(data={}, version=int(meta.get("current_version", 0)), deleted=True)
    return current


def _describe(target: Target, change: Change) -> list[Result]:
    where = target.where
    if change.action == "conflict":
        return [target.finding(error, f"refusing to write {where}: {change.reason}")]
    if change.action == "create":
        return [target.finding(info, f"created {where} ({change.summary()})")]
    if change.action == "update" and change.recreated:
        return [
            target.finding(
                warning,
                f"recreated {where}: its latest version was deleted in Vault, so generated keys have new values "
                f"({change.summary()})",
            )
        ]
    if change.action == "update":
        return [target.finding(info, f"updated {where} ({change.summary()})")]
    if change.claim:
        return [target.finding(info, f"recorded ownership of existing {where}")]
    return []
