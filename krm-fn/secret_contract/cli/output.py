"""What the command line says and the code it ends with: findings on stderr, the printed
ExternalSecrets and `list` tables on stdout, the progress line and the confirmation prompt.

Exit codes: 0 ok, 1 errors found or an expected failure, 2 usage (and, for `plan` and dry
runs, changes pending), 3 unexpected error, 130 interrupted.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal, TextIO

from secret_contract.results import Result, counted, error, format_line, has_errors, info, printable
from secret_contract.results import sort as sort_results

if TYPE_CHECKING:
    from secret_contract import actions, listing, project
    from secret_contract.cli.context import Context
    from secret_contract.krm import Item
    from secret_contract.store import Progress

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNEXPECTED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_PENDING = 2
MAX_LISTED = 50  # past this many actions, one line per kind unless -v (as a build does)

Decision = Literal["go", "stop", "declined"]  # carry out; nothing to do (or a dry run); not confirmed


class Exit(Exception):
    """A command ends here with `code`; what it had to say is already reported. Raised where
    the reason is found and turned into the exit code once, in `main`."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def exit_code(findings: list[Result], pending: int) -> int:
    if has_errors(findings):
        return EXIT_FAILED
    return EXIT_PENDING if pending else EXIT_OK


def report(findings: list[Result], stream: TextIO | None = None) -> None:
    """Human-readable findings on stderr (kustomize drops structured results)."""
    out = stream or sys.stderr
    for finding in sort_results(findings):
        out.write(f"secret-contract: {format_line(finding)}\n")


def say(ctx: Context, findings: list[Result]) -> None:
    """A command's findings: on its stderr, and kept for its `-o json|yaml` report."""
    ctx.findings.extend(findings)
    report(findings, ctx.stderr)


def warn_on_terminal(findings: list[Result]) -> None:
    """kustomize shows a legacy plugin's stderr only when it fails: put warnings on the
    user's terminal directly, when there is one (in CI a build is strict instead)."""
    if not findings:
        return
    try:
        with open("/dev/tty", "w", encoding="utf-8") as tty:
            report(findings, tty)
    except OSError:
        pass


def project_problems(here: project.Project) -> list[Result]:
    return [error(problem, rule="settings") for problem in here.problems]


def progress(stream: TextIO) -> Progress | None:
    """A progress line on `stream` for long runs, only when a person is watching a terminal."""
    if not stream.isatty():
        return None
    import time

    shown = {"last": 0.0}

    def show(phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if total < 200 or (done < total and now - shown["last"] < 0.2):
            return
        shown["last"] = now
        end = "\n" if done == total else ""
        stream.write(f"\r\033[Ksecret-contract: {phase}: {done}/{total}{end}")
        stream.flush()

    return show


def print_externalsecrets(items: Iterable[Item], stream: TextIO) -> None:
    from secret_contract import krm, yaml_codec

    yaml_codec.write_all((krm.strip_orchestrator_annotations(es) for es in items), stream)


def confirm(
    ctx: Context, planned: actions.Planned, verb: str, dry_run: bool, yes: bool, verbose: bool = False
) -> Decision:
    """Show what will happen; go ahead unless an action destroys, then only after `yes` or a
    'y' on a terminal. Declining, and a missing `--yes` off a terminal, change nothing."""
    say(ctx, planned.findings)
    if planned.refused:
        return "stop"
    if not planned.actions:
        say(ctx, [info(f"nothing to {verb}")])
        return "stop"
    _show(ctx.stderr, planned.actions, "would" if dry_run else "will", verbose)
    if dry_run or yes or not any(a.destroys for a in planned.actions):
        return "stop" if dry_run else "go"
    if not ctx.interactive:
        say(ctx, [error(f"not run from a terminal: nothing changed; add --yes (-y) to {verb} as listed above")])
        return "declined"
    ctx.stderr.write(f"secret-contract: {verb} as listed above? [y/N] ")
    ctx.stderr.flush()
    if ctx.stdin.readline().strip().lower() in ("y", "yes"):
        return "go"
    say(ctx, [error(f"not confirmed: nothing changed (no {verb})")])
    return "declined"


def _show(stream: TextIO, planned: list[actions.Action], mood: str, verbose: bool) -> None:
    if verbose or len(planned) <= MAX_LISTED:
        for action in planned:
            stream.write(f"secret-contract: {mood} {printable(action.describe())}\n")
        return
    for kind, n in sorted(Counter(a.kind for a in planned).items()):
        stream.write(f"secret-contract: {mood} {kind}: {counted(n, 'secret')} (-v lists each)\n")


def print_rows(rows: list[listing.Row], output: str, ctx: Context) -> None:
    """`list`'s rows as JSON, YAML, or a table that fits the terminal."""
    if output in ("json", "yaml"):
        _print_records(rows, output, ctx.stdout)
    elif not rows:
        say(ctx, [info("no secrets found")])
    else:
        _print_table(rows, ctx.stdout)


def _print_records(rows: list[listing.Row], output: str, stream: TextIO) -> None:
    records = [
        {"path": r.where, "version": r.version, "state": r.state, "owners": list(r.owners), "keys": list(r.keys)}
        for r in rows
    ]
    if output == "json":
        import json

        stream.write(json.dumps(records, indent=2) + "\n")
        return
    from secret_contract import yaml_codec

    stream.write(yaml_codec.dump(records) if records else "[]\n")


def _print_table(rows: list[listing.Row], stream: TextIO) -> None:
    table = [
        (
            printable(r.where),
            f"v{r.version}" + ("" if r.state == "live" else f" ({r.state})"),
            printable(", ".join(r.owners)) or "-",
            printable(", ".join(r.keys)),
        )
        for r in rows
    ]
    header = ("PATH", "VERSION", "OWNERS", "KEYS")
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(3)]
    import shutil

    # Only the last column (key names) is cut to the terminal: paths stay whole to be copied.
    room = shutil.get_terminal_size((0, 0)).columns if stream.isatty() else 0
    for row in [header, *table]:
        line = "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)) + "  "
        keys = row[3]
        if room and len(line) + len(keys) > room:
            keys = keys[: max(room - len(line) - 1, 8)] + "…"
        stream.write(line + keys + "\n")
    stream.write(counted(len(rows), "secret") + "\n")
