"""Entry point: the KRM function, the legacy kustomize plugin, and the command line.

The only module that reads argv, prints, or picks exit codes: 0 ok, 1 errors found or an
expected failure, 2 usage (and, for `plan` and dry runs, changes pending), 3 unexpected
error, 130 interrupted. Every command is argv -> one core call -> print.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

# Only what a KRM build needs is imported here: every build pays for each import, while the
# commands' own modules load when a command runs.
from secret_contract import __version__, krm, pipeline, project, yaml_codec
from secret_contract.errors import InvalidInput, SecretContractError
from secret_contract.krm import ResourceList
from secret_contract.results import FileRef, Result, error, format_line, has_errors, info, printable
from secret_contract.results import sort as sort_results

if TYPE_CHECKING:
    import argparse

    from secret_contract import operations
    from secret_contract.store import Progress, SecretStore

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNEXPECTED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_PENDING = 2

DESCRIPTION = """\
Turn SecretContracts (hostk8s.secrets.yaml) into Vault KV v2 secrets and External
Secrets Operator ExternalSecrets.

With no arguments and a ResourceList on stdin, runs as a KRM function (kustomize, kpt).
With one argument that is a file, runs as kustomize's legacy exec plugin.
PATH is a contract file, a stack directory, or a stack name under the stacks root
(software/stacks; SECRET_CONTRACT_STACKS_ROOT or the project file's stacksRoot).
"""

VAULT_ENV = (
    "Vault: VAULT_ADDR, VAULT_TOKEN (or ~/.vault-token, or SECRET_CONTRACT_AUTH_METHOD and its variables), "
    "VAULT_NAMESPACE, VAULT_CACERT, VAULT_CLIENT_TIMEOUT, VAULT_MAX_RETRIES, HTTPS_PROXY/NO_PROXY."
)
SETTINGS_ENV = (
    "Settings: SECRET_CONTRACT_VAULT_MOUNT, SECRET_CONTRACT_PATH_LAYOUT, SECRET_CONTRACT_PATH_PREFIX, "
    "SECRET_CONTRACT_STORE_NAME/_KIND, SECRET_CONTRACT_REFRESH_INTERVAL; a project file (secret-contract.yaml)."
)


# libyaml accepts nesting up to 1,000 levels; the steps that walk a document recursively
# (the JSON schema, the emitter) need more frames than Python's default for that.
RECURSION_LIMIT = 10_000


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_LIMIT))
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`secret-contract list | head`): end quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except SecretContractError as exc:
        print(f"secret-contract: error: {printable(str(exc), keep=chr(10))}", file=sys.stderr)
        return EXIT_FAILED
    except Exception:
        import traceback

        print("secret-contract: unexpected error (please report it):", file=sys.stderr)
        traceback.print_exc()
        return EXIT_UNEXPECTED


def _dispatch(args: list[str]) -> int:
    if not args:
        if sys.stdin.isatty():
            _parser().print_help(sys.stderr)
            return EXIT_USAGE
        return run_krm(sys.stdin.buffer, sys.stdout, os.environ)
    if args[0] not in COMMANDS and len(args) == 1 and os.path.isfile(args[0]):
        return run_legacy_plugin(args[0], sys.stdout, os.environ)
    parsed = _parser().parse_args(args)
    return int(parsed.handler(parsed))


# --- the KRM function and the legacy plugin ---------------------------------------------


def run_krm(stdin: BinaryIO, stdout: TextIO, env: Mapping[str, str]) -> int:
    """KRM function mode: always write a ResourceList, exit 1 on any error result."""
    try:
        rl = krm.parse(krm.decode(stdin.read()))
    except SecretContractError as exc:
        finding = error(str(exc), rule="resource-list")
        krm.write(ResourceList([]), [finding], stdout)
        _report([finding])
        return EXIT_FAILED
    here = project.find(os.getcwd(), env)
    outcome = pipeline.build(rl, here.environment(env), project=here.settings)
    findings = [*_project_problems(here), *outcome.findings]
    krm.write(outcome.output, findings, stdout)
    _report(findings)
    return _exit(findings, outcome.pending)


def run_legacy_plugin(config_path: str, stdout: TextIO, env: Mapping[str, str]) -> int:
    """kustomize legacy exec plugin: the generator config is a file in argv[1]; stdin is empty."""
    try:
        with open(config_path, encoding="utf-8") as handle:
            config = yaml_codec.load(handle.read())
    except (OSError, UnicodeDecodeError, yaml_codec.yaml.YAMLError) as exc:
        raise InvalidInput(f"cannot read the generator config {config_path}: {type(exc).__name__}") from None
    if not isinstance(config, dict):
        raise InvalidInput("the generator config is not a mapping")
    from secret_contract import plugin

    # Under `transformers:` the input comes back with the ExternalSecrets added, never dropped.
    items = plugin.resources(sys.stdin, env) or [config]
    here = project.find(os.getcwd(), env)
    outcome = pipeline.build(ResourceList(items, function_config=config), here.environment(env), project=here.settings)
    findings = _with_config_file([*_project_problems(here), *outcome.findings], config)
    _report(findings)
    code = _exit(findings, outcome.pending)
    if code != EXIT_OK:
        return code
    _warn_on_terminal([f for f in findings if f.severity == "warning"])
    stdout.write(yaml_codec.dump_all(outcome.output.items))
    return EXIT_OK


def _with_config_file(findings: list[Result], config: dict[str, Any]) -> list[Result]:
    """Findings about the generator config, attributed to the file that holds it."""
    if not any(f.file is None and f.resource is not None and f.severity != "info" for f in findings):
        return findings  # nothing to place: the kustomization is not read
    from secret_contract import plugin

    found = plugin.config_file(os.getcwd(), config)
    if found is None:
        return findings
    here = FileRef(found)
    return [f.at(None, here) if f.file is None and f.resource is not None else f for f in findings]


def _exit(findings: list[Result], pending: int) -> int:
    if has_errors(findings):
        return EXIT_FAILED
    return EXIT_PENDING if pending else EXIT_OK


def _warn_on_terminal(findings: list[Result]) -> None:
    """kustomize shows a legacy plugin's stderr only when it fails: put warnings on the
    user's terminal directly, when there is one (in CI a build is strict instead)."""
    if not findings:
        return
    try:
        with open("/dev/tty", "w", encoding="utf-8") as tty:
            _report(findings, tty)
    except OSError:
        pass


# --- shared by the commands ------------------------------------------------------------------


def _report(findings: list[Result], stream: TextIO | None = None) -> None:
    """Human-readable findings on stderr (kustomize drops structured results)."""
    out = stream or sys.stderr
    for finding in sort_results(findings):
        out.write(f"secret-contract: {format_line(finding)}\n")


def _progress() -> Progress | None:
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


def _project_problems(here: project.Project) -> list[Result]:
    return [error(problem, rule="settings") for problem in here.problems]


@dataclass
class Given:
    """What a command was given: its contracts as a ResourceList, the project around them and
    the environment with the project's defaults."""

    here: project.Project
    env: dict[str, str]
    rl: ResourceList


def _given(paths: list[str]) -> Given | int:
    """The contracts at `paths`; an exit code instead when there is nothing to do (stacks
    without a contract: a note, exit 0) or the project file is invalid."""
    from secret_contract import inputs

    here = project.find(os.getcwd(), os.environ)
    found = inputs.resolve(paths, here)
    _report([info(note) for note in found.skipped] + _project_problems(here))
    if here.problems:
        return EXIT_FAILED
    if not found.files:
        return EXIT_OK
    return Given(here, here.environment(os.environ), inputs.read_files(found.files))


def _store(env: Mapping[str, str]) -> SecretStore:
    from secret_contract.vault import VaultConfig, VaultStore

    config = VaultConfig.from_env(env)
    if config is None:
        raise InvalidInput("VAULT_ADDR is not set (this command needs Vault)")
    _report([Result("warning", message, rule="vault") for message in config.warnings()])
    return VaultStore(config)


def _print_externalsecrets(items: list[krm.Item]) -> None:
    sys.stdout.write(yaml_codec.dump_all([krm.strip_orchestrator_annotations(es) for es in items]))


def _declared_elsewhere(given: Given) -> dict[str, dict[str, str]]:
    """Vault path -> {stack: digest} of every contract under the stacks root that declares it."""
    from secret_contract import inputs, operations

    files = inputs.stack_contracts(given.here)
    if not files:
        return {}
    everything = pipeline.build(inputs.read_files(files), given.env, pipeline.Options(write=False), given.here.settings)
    return operations.repository_declarations(everything.targets)


def _confirm(planned: operations.Planned, args: argparse.Namespace, verb: str, ask: bool = True) -> bool:
    """Show what will happen; go ahead after --yes, or a 'y' on a terminal (when `ask`)."""
    _report(planned.findings)
    if planned.refused:
        return False
    if not planned.actions:
        _report([info(f"nothing to {verb}")])
        return False
    for action in planned.actions:
        sys.stderr.write(f"secret-contract: {'would' if args.dry_run else 'will'} {printable(action.describe())}\n")
    if args.dry_run:
        return False
    if not ask or getattr(args, "yes", False):
        return True
    if not sys.stdin.isatty():
        raise InvalidInput(f"not run from a terminal: nothing changed; add --yes to {verb} as listed above")
    sys.stderr.write(f"secret-contract: {verb} as listed above? [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _carry_out(store: SecretStore, planned: operations.Planned) -> int:
    from secret_contract import operations

    refused = operations.denied(store, planned.actions)
    if refused:
        _report([*refused, error("nothing was changed")])
        return EXIT_FAILED
    findings = operations.apply(store, planned.actions, _progress())
    _report(findings)
    return EXIT_FAILED if has_errors(findings) else EXIT_OK


# --- the commands ------------------------------------------------------------------------------


def cmd_add(args: argparse.Namespace) -> int:
    """Write the contracts' values to Vault and print their ExternalSecrets. Always strict: a
    Vault problem fails the command."""
    given = _given(args.paths)
    if isinstance(given, int):
        return given
    options = pipeline.Options(strict=True, verbose=args.verbose, progress=_progress())
    outcome = pipeline.build(given.rl, given.env, options, given.here.settings)
    _report(outcome.findings)
    if outcome.failed:
        return EXIT_FAILED
    if not outcome.contracts:
        raise InvalidInput("no SecretContract found in the given files")
    _print_externalsecrets(outcome.externalsecrets)
    return _exit(outcome.findings, outcome.pending)


def cmd_plan(args: argparse.Namespace) -> int:
    """Show what a build would write to Vault (paths and keys, never values) without writing.
    Exit 2 when changes are pending, 0 when Vault is up to date."""
    given = _given(args.paths)
    if isinstance(given, int):
        return given
    options = pipeline.Options(strict=True, dry_run=True, verbose=args.verbose, progress=_progress())
    outcome = pipeline.build(given.rl, given.env, options, given.here.settings)
    _report(outcome.findings)
    if outcome.failed:
        return EXIT_FAILED
    if not outcome.pending:
        _report([info("Vault is up to date: a build would write nothing")])
    return _exit(outcome.findings, outcome.pending)


def cmd_render(args: argparse.Namespace) -> int:
    """Print the ExternalSecrets without any Vault access."""
    given = _given(args.paths)
    if isinstance(given, int):
        return given
    outcome = pipeline.build(given.rl, given.env, pipeline.Options(write=False), given.here.settings)
    _report(outcome.findings)
    if outcome.failed:
        return EXIT_FAILED
    _print_externalsecrets(outcome.externalsecrets)
    return EXIT_OK


def _validated(args: argparse.Namespace) -> tuple[Given, pipeline.Outcome] | int:
    given = _given(args.paths)
    if isinstance(given, int):
        return given
    outcome = pipeline.build(given.rl, given.env, pipeline.Options(write=False), given.here.settings)
    if outcome.failed:
        _report(outcome.findings)
        return EXIT_FAILED
    if not outcome.contracts:
        raise InvalidInput("no SecretContract found in the given files")
    return given, outcome


def cmd_verify(args: argparse.Namespace) -> int:
    """Exit 1, naming each gap, unless Vault holds every key the contracts declare, with the
    contract's static values and generated values their generator could have made."""
    from secret_contract import operations

    loaded = _validated(args)
    if isinstance(loaded, int):
        return loaded
    given, outcome = loaded
    findings = operations.verify(_store(given.env), outcome.targets, _progress())
    _report(findings)
    return EXIT_FAILED if has_errors(findings) else EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    """Delete every Vault secret the stack owns, with all its versions. A secret another stack
    still declares is kept (only this stack's record goes); a secret secret-contract adopted
    is released, never destroyed."""
    from secret_contract import operations

    return _removal(args, operations.plan_remove, "remove")


def cmd_prune(args: argparse.Namespace) -> int:
    """Delete only what left the contract: secrets the stack owns and no longer declares, and
    keys it no longer names (as a new version; older versions keep them)."""
    from secret_contract import operations

    return _removal(args, operations.plan_prune, "prune")


def _removal(args: argparse.Namespace, decide: Callable[..., operations.Planned], verb: str) -> int:
    loaded = _validated(args)
    if isinstance(loaded, int):
        return loaded
    given, outcome = loaded
    store = _store(given.env)
    elsewhere = _declared_elsewhere(given)
    code = EXIT_OK
    for contract in outcome.contracts:
        planned = decide(store, contract, outcome.targets, elsewhere)
        if planned.refused:
            code = EXIT_FAILED
        if _confirm(planned, args, verb):
            code = max(code, _carry_out(store, planned))
    return code


def cmd_rotate(args: argparse.Namespace) -> int:
    """Replace generated values on purpose: a new KV version (the previous one stays readable
    for rollback). Refuses keys with static values and secrets the stack does not own."""
    from secret_contract import operations

    loaded = _validated(args)
    if isinstance(loaded, int):
        return loaded
    given, outcome = loaded
    store = _store(given.env)
    for mount in {t.desired.mount for t in outcome.targets}:
        store.check_mount(mount)
    code = EXIT_OK
    for contract in outcome.contracts:
        planned = operations.plan_rotate(
            store, contract.contract.stack, outcome.targets, args.secret, tuple(args.key or ())
        )
        if planned.refused:
            code = EXIT_FAILED
        if _confirm(planned, args, "rotate", ask=False):
            code = max(code, _carry_out(store, planned))
    return code


def cmd_migrate(args: argparse.Namespace) -> int:
    """Bring values written by manage-secrets.py (or under another layout) to where the
    contracts resolve, keeping every value: copy, then mark the source as migrated; with
    --delete-source delete it after the copy (asks, like remove)."""
    from secret_contract import operations

    loaded = _validated(args)
    if isinstance(loaded, int):
        return loaded
    given, outcome = loaded
    store = _store(given.env)
    planned = operations.plan_migrate(store, outcome.targets, args.delete_source)
    if not _confirm(planned, args, "migrate", ask=args.delete_source):
        return EXIT_FAILED if planned.refused else EXIT_OK
    return _carry_out(store, planned)


def cmd_list(args: argparse.Namespace) -> int:
    """Stored secrets with version, owners and key names (never values): everything under the
    mount, or the secrets of the given contracts (declared ones, and what they left behind)."""
    from secret_contract import operations, settings

    if args.paths:
        loaded = _validated(args)
        if isinstance(loaded, int):
            return loaded
        given, outcome = loaded
        store = _store(given.env)
        rows = _contract_rows(store, outcome)
    else:
        here = project.find(os.getcwd(), os.environ)
        env = here.environment(os.environ)
        defaults, problems = settings.load(env, None, here.settings)
        if has_errors(problems):
            _report(problems)
            return EXIT_FAILED
        mount = args.mount or defaults.mount
        store = _store(env)
        rows = operations.rows(store, mount, operations.list_paths(store, mount), _progress())
    _print_rows(rows, args.output)
    return EXIT_OK


def _contract_rows(store: SecretStore, outcome: pipeline.Outcome) -> list[operations.Row]:
    from secret_contract import operations

    found: dict[str, operations.Row] = {}
    for contract in outcome.contracts:
        stack = contract.contract.stack
        mine = [t for t in outcome.targets if stack in t.desired.stacks]
        layout = contract.secrets[0].layout
        store.check_mount(layout.mount)
        paths = {t.desired.path for t in mine if t.desired.mount == layout.mount}
        namespaces = sorted({s.namespace for s in contract.contract.secrets})
        for folder in layout.folders(stack, namespaces):
            paths.update(f"{folder}{n}" for n in store.list(layout.mount, folder) or [] if not n.endswith("/"))
        for row in operations.rows(store, layout.mount, sorted(paths), _progress()):
            declared = any(t.where == row.path for t in mine)
            if declared or stack in row.owners:
                found[row.path] = row
    return [found[k] for k in sorted(found)]


def _print_rows(rows: list[operations.Row], output: str) -> None:
    records = [
        {"path": r.path, "version": r.version, "state": r.state, "owners": list(r.owners), "keys": list(r.keys)}
        for r in rows
    ]
    if output == "json":
        import json

        sys.stdout.write(json.dumps(records, indent=2) + "\n")
        return
    if output == "yaml":
        sys.stdout.write(yaml_codec.dump(records) if records else "[]\n")
        return
    if not rows:
        sys.stderr.write("secret-contract: no secrets found\n")
        return
    table = [
        (
            printable(r.path),
            f"v{r.version}" + ("" if r.state == "live" else f" ({r.state})"),
            printable(", ".join(r.owners)) or "-",
            printable(", ".join(r.keys)),
        )
        for r in rows
    ]
    header = ("PATH", "VERSION", "OWNERS", "KEYS")
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(3)]
    import shutil

    room = shutil.get_terminal_size((0, 0)).columns if sys.stdout.isatty() else 0
    for row in [header, *table]:
        line = "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)) + "  "
        keys = row[3]
        if room and len(line) + len(keys) > room:
            keys = keys[: max(room - len(line) - 1, 8)] + "…"
        sys.stdout.write(line + keys + "\n")
    sys.stdout.write(f"{len(rows)} secret{'s' if len(rows) != 1 else ''}\n")


def cmd_install_plugin(args: argparse.Namespace) -> int:
    """Install the kustomize legacy exec plugin for hostk8s.io/v1 SecretContract."""
    from secret_contract import plugin

    root = args.dir or plugin.plugin_root(os.environ)
    target = plugin.plugin_path(root)
    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
    tmp = f"{target}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(plugin.script(sys.executable))
    os.chmod(tmp, 0o755)  # noqa: S103 - kustomize must be able to execute it
    os.replace(tmp, target)
    print(target)
    return EXIT_OK


def cmd_publish(args: argparse.Namespace) -> int:
    """Build DIR with the function (writing Vault, strictly, as a build does) and push the
    result to an OCI registry as a Flux artifact that plain kustomize builds: what Flux's
    kustomize-controller, which runs no plugin, can apply."""
    from secret_contract import publish

    reference = publish.Reference.parse(args.reference)
    request = publish.Request(
        directory=args.directory,
        references=[reference, *(reference.with_tag(tag) for tag in args.tag or ())],
        git=args.git,
        ref=args.ref,
        source=args.source,
        revision=args.revision,
        insecure=args.insecure,
        output=args.output if args.dry_run else None,
    )
    try:
        done = publish.publish(request, os.environ)
    except ModuleNotFoundError as exc:
        raise InvalidInput(f"publish needs {exc.name}: pip install 'secret-contract[publish]'") from None
    artifact = done.artifact
    _report([info(f"built {args.directory}: {artifact.documents} documents, layer {publish.layer_digest(artifact)}")])
    if args.dry_run:
        _report([info(f"dry run: wrote {args.output}; nothing was pushed")])
        sys.stdout.write(publish.manifest_preview(artifact) + "\n")
        return EXIT_OK
    for ref, digest in zip(request.references, done.digests, strict=True):
        sys.stdout.write(f"oci://{ref}@{digest}\n")
    return EXIT_OK


def cmd_init(args: argparse.Namespace) -> int:
    """Wire a stack to the function: the generator entry in its kustomization and, for the
    container or exec runtime, the function annotation in its contract (comments kept)."""
    from secret_contract import wiring

    given = _given([args.path])
    if isinstance(given, int):
        return given
    contract_path = str(krm.file_ref(given.rl.items[0]).path)  # type: ignore[union-attr]
    outcome = pipeline.build(given.rl, given.env, pipeline.Options(write=False), given.here.settings)
    if outcome.failed:
        _report(outcome.findings)
        return EXIT_FAILED
    if args.runtime == "exec" and not args.exec_path:
        raise InvalidInput("--runtime exec needs --exec-path (the function's path as kustomize should run it)")
    spec = None if args.runtime == "legacy" else wiring.function_spec(args.runtime, args.image, args.exec_path or "")
    for path, edit in wiring.wire(contract_path, spec):
        if edit.changed and not args.dry_run:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(edit.text)
        print(f"{path}: {edit.note}{' (dry run)' if edit.changed and args.dry_run else ''}", file=sys.stderr)
    return EXIT_OK


@dataclass(frozen=True)
class Command:
    handler: Callable[[argparse.Namespace], int]
    summary: str
    vault: str  # whether it needs Vault
    examples: tuple[str, ...]


COMMANDS: dict[str, Command] = {
    "add": Command(
        cmd_add,
        "write contracts' values to Vault and print their ExternalSecrets",
        "yes",
        ("secret-contract add foundation/redis", "secret-contract add software/stacks/sample-app -v"),
    ),
    "plan": Command(
        cmd_plan,
        "show what a build would write to Vault, without writing (exit 2: changes pending)",
        "yes (reads only)",
        ("secret-contract plan sample-app foundation/airflow",),
    ),
    "render": Command(
        cmd_render,
        "print the ExternalSecrets without touching Vault",
        "no",
        ("secret-contract render $(git ls-files '*hostk8s.secrets.yaml')",),
    ),
    "verify": Command(
        cmd_verify,
        "fail unless Vault holds every key the contracts declare",
        "yes (reads only)",
        ("secret-contract verify sample-app",),
    ),
    "list": Command(
        cmd_list,
        "list stored secrets with owners and key names (never values)",
        "yes (reads only)",
        ("secret-contract list", "secret-contract list foundation/airflow -o json"),
    ),
    "rotate": Command(
        cmd_rotate,
        "replace generated values on purpose (new KV version; the old one stays)",
        "yes",
        ("secret-contract rotate sample-app --secret redis/redis-commander-credentials --key password --dry-run",),
    ),
    "prune": Command(
        cmd_prune,
        "delete what left a contract (secrets and keys it no longer declares)",
        "yes",
        ("secret-contract prune sample-app --dry-run", "secret-contract prune sample-app --yes"),
    ),
    "remove": Command(
        cmd_remove,
        "delete a stack's secrets (shared and adopted ones are kept)",
        "yes",
        ("secret-contract remove foundation/redis --dry-run", "secret-contract remove foundation/redis --yes"),
    ),
    "migrate": Command(
        cmd_migrate,
        "move values written by manage-secrets.py to where the contracts resolve",
        "yes",
        ("secret-contract migrate sample-app --dry-run", "secret-contract migrate sample-app"),
    ),
    "publish": Command(
        cmd_publish,
        "build a kustomization and push it as a Flux OCI artifact",
        "yes",
        (
            "secret-contract publish overlays/prod oci://ghcr.io/acme/platform:prod",
            "secret-contract publish overlays/dev oci://127.0.0.1:5000/platform:dev --insecure --tag latest",
            "secret-contract publish --git https://github.com/acme/platform --ref main overlays/prod "
            "oci://registry.acme.internal/platform:prod",
        ),
    ),
    "install-plugin": Command(
        cmd_install_plugin,
        "install the kustomize legacy exec plugin",
        "no",
        ("secret-contract install-plugin", 'secret-contract install-plugin --dir "$KUSTOMIZE_PLUGIN_HOME"'),
    ),
    "init": Command(
        cmd_init,
        "wire a stack to the function (kustomization generator, function annotation)",
        "no",
        ("secret-contract init software/stacks/sample-app", "secret-contract init sample-app --runtime container"),
    ),
}

PATH_HELP = "contract files, stack directories, or stack names under the stacks root"


def _parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(
        prog="secret-contract", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"secret-contract {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        epilog = "examples:\n" + "".join(f"  {e}\n" for e in command.examples)
        epilog += f"\nneeds Vault: {command.vault}\n"
        if command.vault != "no":
            epilog += f"{VAULT_ENV}\n"
        if name in ("add", "plan", "render"):
            epilog += f"{SETTINGS_ENV}\n"
        if name == "add":
            epilog += "SECRET_CONTRACT_DRY_RUN=true: plan only, exit 2 when changes are pending.\n"
        cmd = sub.add_parser(
            name,
            help=command.summary,
            description="\n".join(line.strip() for line in (command.handler.__doc__ or "").splitlines()),
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        cmd.set_defaults(handler=command.handler)
        _arguments(name, cmd)
    return parser


def _arguments(name: str, cmd: argparse.ArgumentParser) -> None:
    if name in ("add", "plan", "render", "verify", "remove", "prune", "rotate", "migrate"):
        cmd.add_argument("paths", metavar="PATH", nargs="+", help=PATH_HELP)
    if name in ("add", "plan", "prune", "rotate"):
        cmd.add_argument("-v", "--verbose", action="store_true", help="list every change, even past 50")
    if name in ("remove", "prune", "rotate", "migrate"):
        cmd.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    if name in ("remove", "prune", "migrate"):
        cmd.add_argument("--yes", action="store_true", help="do not ask (needed when not run from a terminal)")
    if name == "rotate":
        cmd.add_argument("--secret", help="only this secret: NAME or NAMESPACE/NAME")
        cmd.add_argument("--key", action="append", help="only this generated key (repeatable)")
    if name == "migrate":
        cmd.add_argument("--delete-source", action="store_true", help="delete each source after its copy")
    if name == "list":
        cmd.add_argument("paths", metavar="PATH", nargs="*", help=f"{PATH_HELP} (default: the whole mount)")
        cmd.add_argument("--mount", help="KV v2 mount (default: SECRET_CONTRACT_VAULT_MOUNT or 'secret')")
        cmd.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table", help="output format")
    if name == "init":
        cmd.add_argument("path", metavar="PATH", help="a contract file, a stack directory or a stack name")
        cmd.add_argument(
            "--runtime",
            choices=("legacy", "container", "exec"),
            default="legacy",
            help="legacy: no annotation, the installed plugin runs it (works with kubectl kustomize); "
            "container: kustomize runs --image; exec: standalone kustomize --enable-exec runs --exec-path",
        )
        cmd.add_argument("--image", default="secret-contract:dev", help="container image (runtime container)")
        cmd.add_argument("--exec-path", help="path of the function for kustomize (runtime exec)")
        cmd.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    if name == "publish":
        cmd.add_argument("directory", metavar="DIR", help="the kustomization to build")
        cmd.add_argument("reference", metavar="oci://REGISTRY/REPOSITORY:TAG", help="where to push")
        cmd.add_argument("--tag", action="append", help="push under this tag too (repeatable)")
        cmd.add_argument(
            "--git", metavar="URL", help="clone this repository and build DIR inside it (no checkout needed)"
        )
        cmd.add_argument("--ref", default="main", help="the branch or tag to clone with --git (default: main)")
        cmd.add_argument("--source", help="org.opencontainers.image.source (default: git remote origin)")
        cmd.add_argument("--revision", help="org.opencontainers.image.revision (default: branch@sha1:commit)")
        cmd.add_argument(
            "--insecure",
            action="store_true",
            help="allow plain-text transports: a registry over HTTP, a --git URL over http:// or git:// "
            "(for servers on the local machine or cluster)",
        )
        cmd.add_argument(
            "--dry-run",
            action="store_true",
            help="write the artifact to --output and push nothing (the build still writes Vault; `plan` shows what)",
        )
        cmd.add_argument("--output", default="artifact.tar.gz", help="where --dry-run writes the layer")
    if name == "install-plugin":
        cmd.add_argument(
            "--dir", help="plugin root (default: KUSTOMIZE_PLUGIN_HOME or $XDG_CONFIG_HOME/kustomize/plugin)"
        )
