"""Entry point: the KRM function, the legacy kustomize plugin, and the command line.

The only module that reads argv, prints, or picks exit codes:
0 ok, 1 errors found or an expected failure, 2 usage, 3 unexpected error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import BinaryIO, TextIO

from secret_contract import __version__, krm, pipeline, plan, plugin, settings, sync, yaml_codec
from secret_contract.errors import InvalidInput, SecretContractError
from secret_contract.krm import ResourceList
from secret_contract.results import Result, error, format_line, has_errors, info, warning
from secret_contract.results import sort as sort_results
from secret_contract.vault import HvacStore, VaultConfig

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNEXPECTED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

DESCRIPTION = """\
Turn SecretContracts (hostk8s.secrets.yaml) into Vault KV v2 secrets and External
Secrets Operator ExternalSecrets.

With no arguments and a ResourceList on stdin, runs as a KRM function (kustomize, kpt).
With one argument that is a file, runs as kustomize's legacy exec plugin.
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except SecretContractError as exc:
        print(f"secret-contract: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception:
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


def run_krm(stdin: BinaryIO, stdout: TextIO, env: Mapping[str, str]) -> int:
    """KRM function mode: always write a ResourceList, exit 1 on any error result."""
    try:
        rl = krm.parse(krm.decode(stdin.read()))
    except SecretContractError as exc:
        finding = error(str(exc), rule="resource-list")
        krm.write(ResourceList([]), [finding], stdout)
        _report([finding])
        return EXIT_FAILED
    outcome = pipeline.run(rl, env)
    krm.write(outcome.output, outcome.findings, stdout)
    _report(outcome.findings)
    return EXIT_FAILED if outcome.failed else EXIT_OK


def run_legacy_plugin(config_path: str, stdout: TextIO, env: Mapping[str, str]) -> int:
    """kustomize legacy exec plugin: the generator config is a file in argv[1]; stdin is empty."""
    try:
        with open(config_path, encoding="utf-8") as handle:
            config = yaml_codec.load(handle.read())
    except (OSError, UnicodeDecodeError, yaml_codec.yaml.YAMLError) as exc:
        raise InvalidInput(f"cannot read the generator config {config_path}: {type(exc).__name__}") from None
    if not isinstance(config, dict):
        raise InvalidInput("the generator config is not a mapping")
    outcome = pipeline.run(ResourceList([config], function_config=config), env)
    _report(outcome.findings)
    if outcome.failed:
        return EXIT_FAILED
    _warn_on_terminal([f for f in outcome.findings if f.severity == "warning"])
    stdout.write(yaml_codec.dump_all(outcome.externalsecrets))
    return EXIT_OK


def _warn_on_terminal(findings: list[Result]) -> None:
    """kustomize shows a legacy plugin's stderr only when it fails: put warnings on the
    user's terminal directly, when there is one (CI should set SECRET_CONTRACT_STRICT)."""
    if not findings:
        return
    try:
        with open("/dev/tty", "w", encoding="utf-8") as tty:
            _report(findings, tty)
    except OSError:
        pass


def _progress() -> sync.Progress | None:
    """A progress line on stderr for long runs, only when a person is watching a terminal."""
    if not sys.stderr.isatty():
        return None
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


def _report(findings: list[Result], stream: TextIO | None = None) -> None:
    """Human-readable findings on stderr (kustomize drops structured results)."""
    out = stream or sys.stderr
    for finding in sort_results(findings):
        out.write(f"secret-contract: {format_line(finding)}\n")


def _load(paths: list[str]) -> ResourceList:
    files = [file for path in paths for file in krm.contract_files(path)]
    return krm.read_files(list(dict.fromkeys(files)))


def _valid_contracts(paths: list[str]) -> pipeline.Outcome | None:
    """The contracts at `paths`, validated without touching Vault; None (reported) if invalid."""
    outcome = pipeline.run(_load(paths), os.environ, write=False)
    if outcome.failed:
        _report(outcome.findings)
        return None
    if not outcome.contracts:
        raise InvalidInput(f"{' '.join(paths)}: no SecretContract found")
    return outcome


def _print_externalsecrets(outcome: pipeline.Outcome) -> None:
    sys.stdout.write(yaml_codec.dump_all([krm.strip_orchestrator_annotations(es) for es in outcome.externalsecrets]))


def _vault_config() -> VaultConfig:
    config = VaultConfig.from_env(os.environ)
    if config is None:
        raise InvalidInput("VAULT_ADDR is not set (this command needs Vault)")
    return config


def cmd_add(args: argparse.Namespace) -> int:
    """Write the contract's values to Vault and print its ExternalSecrets."""
    outcome = pipeline.run(_load(args.paths), os.environ, write=True, strict=True, progress=_progress())
    _report(outcome.findings)
    if outcome.failed:
        return EXIT_FAILED
    if not outcome.contracts:
        raise InvalidInput(f"{' '.join(args.paths)}: no SecretContract found")
    _print_externalsecrets(outcome)
    return EXIT_OK


def cmd_render(args: argparse.Namespace) -> int:
    """Print the ExternalSecrets without any Vault access."""
    outcome = _valid_contracts(args.paths)
    if outcome is None:
        return EXIT_FAILED
    _report(outcome.findings)
    _print_externalsecrets(outcome)
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    """Exit 1, naming each gap, unless Vault holds every key the contract declares."""
    outcome = _valid_contracts(args.paths)
    if outcome is None:
        return EXIT_FAILED
    targets = pipeline.targets(outcome.planned)
    store = HvacStore(_vault_config())
    for mount in sorted({t.mount for t in targets}):
        store.check_mount(mount)
    currents = sync.parallel(
        lambda t: store.read(t.mount, t.desired.path), targets, progress=_progress(), phase="reading Vault"
    )
    findings = [
        t.finding(error, f"{t.where}: {gap}")
        for t, cur in zip(targets, currents, strict=True)
        for gap in plan.gaps(t.desired, cur)
    ]
    if not has_errors(findings):
        keys = sum(len(t.desired.key_names()) for t in targets)
        findings.append(info(f"Vault holds all {keys} keys of {len(targets)} secrets"))
    _report(findings)
    return EXIT_FAILED if has_errors(findings) else EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    """Delete every Vault secret this contract owns (all versions); nothing else."""
    outcome = _valid_contracts(args.paths)
    if outcome is None:
        return EXIT_FAILED
    defaults, _ = settings.load(os.environ)
    store = HvacStore(_vault_config())
    findings: list[Result] = []
    for p in outcome.planned:
        c = p.contract
        declared = {t.where: t for t in pipeline.targets([p])}
        candidates = dict.fromkeys(declared)
        mount = p.resolved[0].mount  # one mount per contract
        store.check_mount(mount)  # on a KV v1 mount, metadata/... would name other secrets
        folder = settings.stack_folder(c, defaults)
        if folder:
            candidates.update(dict.fromkeys(f"{mount}/{found}" for found in store.list(mount, folder)))
        for where in candidates:
            path = where.removeprefix(f"{mount}/")
            meta = store.read_metadata(mount, path)
            custom = (meta or {}).get("custom_metadata") or {}
            owned = custom.get(plan.OWNER_KEY) == c.stack and custom.get(plan.MANAGED_BY_KEY) == plan.MANAGED_BY
            if meta is None:
                if where in declared:
                    findings.append(info(f"{where}: not in Vault, nothing to remove"))
            elif not owned:
                if where in declared:
                    findings.append(warning(f"{where}: kept, it is not owned by contract '{c.stack}'"))
            elif args.dry_run:
                findings.append(info(f"{where}: would be removed"))
            else:
                store.delete(mount, path)
                findings.append(info(f"{where}: removed"))
    _report(findings)
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    """List stored secrets with version, owner and key names (never values)."""
    defaults, problems = settings.load(os.environ)
    if has_errors(problems):
        _report(problems)
        return EXIT_FAILED
    mount = args.mount or defaults.mount
    store = HvacStore(_vault_config())
    store.check_mount(mount)
    base = f"{defaults.prefix}/" if defaults.prefix else ""
    prefix = f"{base}{args.stack}/" if args.stack and defaults.layout == "stack" else base
    paths = list(store.list(mount, prefix))
    currents = sync.parallel(lambda p: store.read(mount, p), paths)
    rows = []
    for path, cur in zip(paths, currents, strict=True):
        if cur is None:
            continue
        if args.stack and defaults.layout != "stack" and cur.owner != args.stack:
            continue  # the namespace layout has no stack prefix: filter by owner
        keys = ", ".join(sorted(cur.data)) or "(deleted)"
        rows.append((f"{mount}/{path}", f"v{cur.version}", cur.owner or "-", keys))
    if not rows:
        print(f"no secrets under {mount}/{prefix}", file=sys.stderr)
        return EXIT_OK
    header = ("PATH", "VERSION", "OWNER", "KEYS")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)) + "  " + row[3])
    return EXIT_OK


def cmd_install_plugin(args: argparse.Namespace) -> int:
    """Install the kustomize legacy exec plugin for hostk8s.io/v1 SecretContract."""
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


KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def cmd_init(args: argparse.Namespace) -> int:
    """Wire a stack to the function: the generator entry in its kustomization and, for the
    container or exec runtime, the function annotation in its contract (comments kept)."""
    from secret_contract import wiring

    contract_path = krm.contract_files(args.path)[0]
    folder = os.path.dirname(contract_path) or "."
    if _valid_contracts([contract_path]) is None:
        return EXIT_FAILED
    if args.runtime == "exec" and not args.exec_path:
        raise InvalidInput("--runtime exec needs --exec-path (the function's path as kustomize should run it)")
    spec = None if args.runtime == "legacy" else wiring.function_spec(args.runtime, args.image, args.exec_path or "")
    with open(contract_path, encoding="utf-8") as handle:
        contract_edit = wiring.annotate_contract(handle.read(), spec)
    kustomization = next(
        (os.path.join(folder, name) for name in KUSTOMIZATION_FILES if os.path.isfile(os.path.join(folder, name))),
        None,
    )
    existing = None
    if kustomization:
        with open(kustomization, encoding="utf-8") as handle:
            existing = handle.read()
    kustomization_edit = wiring.add_generator(existing, os.path.basename(contract_path))
    for path, edit in (
        (contract_path, contract_edit),
        (kustomization or os.path.join(folder, KUSTOMIZATION_FILES[0]), kustomization_edit),
    ):
        if edit.changed and not args.dry_run:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(edit.text)
        print(f"{path}: {edit.note}{' (dry run)' if edit.changed and args.dry_run else ''}", file=sys.stderr)
    return EXIT_OK


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "add": (cmd_add, "write a contract's values to Vault and print its ExternalSecrets"),
    "remove": (cmd_remove, "delete the Vault secrets a contract owns"),
    "list": (cmd_list, "list stored secrets with owner and key names (never values)"),
    "render": (cmd_render, "print the ExternalSecrets without touching Vault"),
    "verify": (cmd_verify, "fail unless Vault holds every key a contract declares"),
    "install-plugin": (cmd_install_plugin, "install the kustomize legacy exec plugin"),
    "init": (cmd_init, "wire a stack to the function (kustomization generator, function annotation)"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="secret-contract", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"secret-contract {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (handler, summary) in COMMANDS.items():
        cmd = sub.add_parser(name, help=summary, description=(handler.__doc__ or summary))
        cmd.set_defaults(handler=handler)
        if name in ("add", "remove", "render", "verify"):
            cmd.add_argument(
                "paths",
                metavar="PATH",
                nargs="+",
                help=f"contract files, or stack directories with {krm.CONTRACT_FILE}",
            )
        if name == "remove":
            cmd.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
        if name == "list":
            cmd.add_argument("stack", nargs="?", metavar="STACK", help="only this stack's secrets")
            cmd.add_argument("--mount", help="KV v2 mount (default: SECRET_CONTRACT_VAULT_MOUNT or 'secret')")
        if name == "init":
            cmd.add_argument(
                "path", metavar="PATH", help=f"a contract file, or a stack directory with {krm.CONTRACT_FILE}"
            )
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
        if name == "install-plugin":
            cmd.add_argument(
                "--dir", help="plugin root (default: KUSTOMIZE_PLUGIN_HOME or $XDG_CONFIG_HOME/kustomize/plugin)"
            )
    return parser
