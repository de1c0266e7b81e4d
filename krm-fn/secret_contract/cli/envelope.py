"""The machine-readable report of `-o json|yaml` (schemas/report.v1.json): the changes a command
planned or made, its findings as KRM results, and a summary with the exit code. Names, paths
and key names only: no value is ever part of it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, TextIO

from secret_contract.results import sort, to_krm

if TYPE_CHECKING:
    from secret_contract import actions, sync
    from secret_contract.cli.context import Context
    from secret_contract.model import Target
    from secret_contract.plan import Change

API_VERSION = "secret-contract.hostk8s.io/v1"
KIND = "Report"
FORMATS = ("json", "yaml")
Status = Literal["pending", "done", "refused", "not-done"]


# Here rather than beside `Context`, whose module every build imports: only a report makes one.
@dataclass(frozen=True)
class ChangeRecord:
    """One change to one Vault path, as the report lists it: names and keys, never values."""

    action: str
    path: str  # mount/path, as `list` names it
    keys: tuple[str, ...]
    destroys: bool
    status: Status
    description: str


def of_actions(planned: list[actions.Action], status: Status) -> list[ChangeRecord]:
    return [ChangeRecord(a.kind, a.where, a.keys, a.destroys, status, a.describe()) for a in planned]


def unmade(planned: actions.Planned, dry_run: bool) -> Status:
    """The status of an operation's change before it is made: `pending` in a dry run that the
    command without `--dry-run` would carry out; `not-done` otherwise, also where a refusal
    stops the plan (as for a build)."""
    return "pending" if dry_run and not planned.refused else "not-done"


def mark_done(records: list[ChangeRecord], index: int) -> None:
    records[index] = replace(records[index], status="done")


def of_sync(report: sync.Report) -> list[ChangeRecord]:
    """A build's changes: every path it writes (or would), refuses or records, noops left out,
    each with the status of what the report says it applied or found pending."""
    records = []
    for target, change in report.changes:
        if change.action == "noop":
            continue
        keys = tuple(sorted({*change.generate, *change.set_static}))
        detail = change.reason if change.refused or change.recreated else change.summary()
        text = f"{change.action} {target.where}{f' ({detail})' if detail else ''}"
        records.append(ChangeRecord(change.action, target.where, keys, False, _status(report, target, change), text))
    return records


def _status(report: sync.Report, target: Target, change: Change) -> Status:
    if change.refused:
        return "refused"
    if target.where in report.applied:
        return "done"
    return "pending" if target.where in report.pending else "not-done"


def document(verb: str, ctx: Context, code: int) -> dict[str, Any]:
    statuses = Counter(c.status for c in ctx.changes)
    severities = Counter(f.severity for f in ctx.findings)
    doc: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "verb": verb,
        "dryRun": ctx.dry_run,
        "changes": [
            {
                "action": c.action,
                "path": c.path,
                "keys": list(c.keys),
                "destroys": c.destroys,
                "status": c.status,
                "description": c.description,
            }
            for c in ctx.changes
        ],
        "results": [to_krm(f) for f in sort(ctx.findings)],
        "summary": {
            "changes": len(ctx.changes),
            "byAction": dict(sorted(Counter(c.action for c in ctx.changes).items())),
            "pending": statuses["pending"],
            "done": statuses["done"],
            "refused": statuses["refused"],
            "notDone": statuses["not-done"],
            "errors": severities["error"],
            "warnings": severities["warning"],
            "exitCode": code,
        },
    }
    if verb == "add":
        from secret_contract import krm

        doc["externalSecrets"] = [krm.strip_orchestrator_annotations(es) for es in ctx.externalsecrets]
    return doc


def write(doc: dict[str, Any], output: str, stream: TextIO) -> None:
    if output == "json":
        import json

        stream.write(json.dumps(doc, indent=2) + "\n")
        return
    from secret_contract import yaml_codec

    stream.write(yaml_codec.dump(doc))
