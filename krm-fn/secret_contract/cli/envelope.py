"""The machine-readable report of `-o json|yaml` (schemas/report.v1.json): the changes a command
planned or made, its findings as KRM results, and a summary with the exit code. Names, paths
and key names only: no value is ever part of it.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, TextIO

from secret_contract.cli.context import ChangeRecord, Status
from secret_contract.results import sort, to_krm

if TYPE_CHECKING:
    from secret_contract import actions, sync
    from secret_contract.cli.context import Context

API_VERSION = "secret-contract.hostk8s.io/v1"
KIND = "Report"
FORMATS = ("json", "yaml")


def of_actions(planned: list[actions.Action], status: Status) -> list[ChangeRecord]:
    return [ChangeRecord(a.kind, a.where, a.keys, a.destroys, status, a.describe()) for a in planned]


def of_sync(report: sync.Report, dry_run: bool) -> list[ChangeRecord]:
    """A build's changes: every path it writes (or would), refuses or records, noops left out."""
    written = set(report.written)
    records = []
    for target, change in report.changes:
        if change.action == "noop":
            continue
        keys = tuple(sorted({*change.generate, *change.set_static}))
        status: Status
        if change.refused:
            status = "refused"
        elif dry_run:
            status = "pending"
        elif target.where in written or (not change.writes_data and report.failure is None and not _refusals(report)):
            status = "done"
        else:
            status = "not-done"
        detail = change.reason if change.refused or change.recreated else change.summary()
        text = f"{change.action} {target.where}{f' ({detail})' if detail else ''}"
        records.append(ChangeRecord(change.action, target.where, keys, False, status, text))
    return records


def _refusals(report: sync.Report) -> bool:
    """A refusal or a missing permission stops a build before its first write."""
    return any(c.refused for _, c in report.changes) or any(f.severity == "error" for f in report.findings)


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
