"""What the command line says and the code it ends with: findings on stderr, the printed
ExternalSecrets and `list` tables on stdout, the progress line and the confirmation prompt.

Exit codes: 0 ok, 1 errors found or an expected failure, 2 usage (and, for `plan` and dry
runs, changes pending), 3 unexpected error, 130 interrupted.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from secret_contract.errors import InvalidInput
from secret_contract.results import Result, error, format_line, has_errors, info, printable
from secret_contract.results import sort as sort_results

if TYPE_CHECKING:
    from secret_contract import actions, listing, project
    from secret_contract.krm import Item
    from secret_contract.store import Progress

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNEXPECTED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_PENDING = 2


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


def progress() -> Progress | None:
    """A progress line on stderr for long runs, only when a person is watching a terminal."""
    if not sys.stderr.isatty():
        return None
    import time

    shown = {"last": 0.0}

    def show(phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if total < 200 or (done < total and now - shown["last"] < 0.2):
            return
        shown["last"] = now
        end = "\n" if done == total else ""
        sys.stderr.write(f"\r\033[Ksecret-contract: {phase}: {done}/{total}{end}")
        sys.stderr.flush()

    return show


def print_externalsecrets(items: list[Item]) -> None:
    from secret_contract import krm, yaml_codec

    sys.stdout.write(yaml_codec.dump_all([krm.strip_orchestrator_annotations(es) for es in items]))


def confirm(planned: actions.Planned, verb: str, dry_run: bool, yes: bool) -> bool:
    """Show what will happen; go ahead after `yes`, or a 'y' on a terminal."""
    report(planned.findings)
    if planned.refused:
        return False
    if not planned.actions:
        report([info(f"nothing to {verb}")])
        return False
    for action in planned.actions:
        sys.stderr.write(f"secret-contract: {'would' if dry_run else 'will'} {printable(action.describe())}\n")
    if dry_run:
        return False
    if yes:
        return True
    if not sys.stdin.isatty():
        raise InvalidInput(f"not run from a terminal: nothing changed; add --yes to {verb} as listed above")
    sys.stderr.write(f"secret-contract: {verb} as listed above? [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def print_rows(rows: list[listing.Row], output: str) -> None:
    """`list`'s rows as JSON, YAML, or a table that fits the terminal."""
    if output in ("json", "yaml"):
        _print_records(rows, output)
    elif not rows:
        sys.stderr.write("secret-contract: no secrets found\n")
    else:
        _print_table(rows)


def _print_records(rows: list[listing.Row], output: str) -> None:
    records = [
        {"path": r.where, "version": r.version, "state": r.state, "owners": list(r.owners), "keys": list(r.keys)}
        for r in rows
    ]
    if output == "json":
        import json

        sys.stdout.write(json.dumps(records, indent=2) + "\n")
        return
    from secret_contract import yaml_codec

    sys.stdout.write(yaml_codec.dump(records) if records else "[]\n")


def _print_table(rows: list[listing.Row]) -> None:
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
    room = shutil.get_terminal_size((0, 0)).columns if sys.stdout.isatty() else 0
    for row in [header, *table]:
        line = "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)) + "  "
        keys = row[3]
        if room and len(line) + len(keys) > room:
            keys = keys[: max(room - len(line) - 1, 8)] + "…"
        sys.stdout.write(line + keys + "\n")
    sys.stdout.write(f"{len(rows)} secret{'s' if len(rows) != 1 else ''}\n")
