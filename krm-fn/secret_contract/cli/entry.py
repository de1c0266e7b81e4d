"""How the program is started: as a KRM function (a ResourceList on stdin), as kustomize's
legacy exec plugin (one argument, a generator config file), or with a command.

Every build pays for each import made here, so the build's modules load inside the mode that
uses them, and the commands' modules only when a command is parsed.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

from secret_contract.cli.context import Context
from secret_contract.cli.output import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNEXPECTED,
    EXIT_USAGE,
    Exit,
    exit_code,
    project_problems,
    report,
    warn_on_terminal,
)
from secret_contract.errors import InvalidInput, SecretContractError
from secret_contract.results import FileRef, Result, error, printable

if TYPE_CHECKING:
    import argparse

# libyaml accepts nesting up to 1,000 levels; the steps that walk a document recursively
# (the JSON schema, the emitter) need more frames than Python's default for that.
RECURSION_LIMIT = 10_000
# A build allocates millions of objects that live until it ends (a large contract's documents,
# models and manifests); at Python's default of 700 allocations per collection, the collector
# walked them over and over, a third of the time of a 100,000-secret render. It still runs.
GC_ALLOCATIONS = 100_000


def main(argv: Sequence[str] | None = None) -> int:
    """The process's entry (`python -m secret_contract`, the console script, the images): its
    exit code. Tests run commands through `command` instead."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_LIMIT))
    gc.set_threshold(max(gc.get_threshold()[0], GC_ALLOCATIONS), *gc.get_threshold()[1:])
    code = _run(list(sys.argv[1:] if argv is None else argv))
    # The process ends next. The interpreter's exit runs full collections over every object the
    # imports and the build made, only to free memory the system takes back anyway: frozen, they
    # are skipped (about 10 ms of a small build). atexit handlers and stream flushes still run.
    gc.freeze()
    return code


def _run(args: list[str]) -> int:
    try:
        return _dispatch(args, Context.of_process())
    except Exit as done:
        return done.code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`secret-contract list | head`): end quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except SecretContractError as exc:
        sys.stderr.write(_error_line(exc))
        return EXIT_FAILED
    except Exception:
        import traceback

        print("secret-contract: unexpected error (please report it):", file=sys.stderr)
        traceback.print_exc()
        return EXIT_UNEXPECTED


def _dispatch(args: list[str], ctx: Context) -> int:
    if not args and not ctx.interactive:
        return run_krm(sys.stdin.buffer, ctx.stdout, ctx.env)
    # No verb's name has a directory in it, and kustomize passes an absolute path: its plugin
    # runs without the commands' modules (argparse and every verb's), which cost it 5 ms.
    if len(args) == 1 and os.path.dirname(args[0]) and os.path.isfile(args[0]):
        return run_legacy_plugin(args[0], ctx.stdout, ctx.env)
    from secret_contract.cli import parser

    if not args:
        parser.build().print_help(ctx.stderr)
        return EXIT_USAGE
    if args[0] not in parser.VERBS and len(args) == 1 and os.path.isfile(args[0]):
        return run_legacy_plugin(args[0], ctx.stdout, ctx.env)
    return command(args, ctx)


def command(argv: Sequence[str], ctx: Context) -> int:
    """Run one command with the environment, streams and Vault in `ctx`; its exit code.
    With `-o json|yaml`, its report goes to stdout whatever the outcome."""
    import contextlib

    from secret_contract.cli import parser

    with contextlib.redirect_stdout(ctx.stdout), contextlib.redirect_stderr(ctx.stderr):
        try:
            parsed = parser.build().parse_args(list(argv))
        except Exit as done:
            return done.code
    code = EXIT_UNEXPECTED
    try:
        code = int(parsed.handler(parsed, ctx))
    except Exit as done:
        code = done.code
    except SecretContractError as exc:
        ctx.findings.append(error(str(exc)))
        ctx.stderr.write(_error_line(exc))
        code = EXIT_FAILED
    except KeyboardInterrupt:
        ctx.findings.append(error("interrupted"))
        code = EXIT_INTERRUPTED
        raise
    except Exception as exc:
        # Its message may quote anything: the report names only its type; stderr has the rest.
        ctx.findings.append(error(f"unexpected error ({type(exc).__name__}); its traceback is on stderr"))
        raise
    finally:
        # What was planned and done so far is reported whatever ended the command.
        _print_report(parsed, ctx, code)
    return code


def _print_report(parsed: argparse.Namespace, ctx: Context, code: int) -> None:
    if not parsed.reports or parsed.output == "text":
        return
    from secret_contract.cli import envelope

    envelope.write(envelope.document(parsed.command, ctx, code), parsed.output, ctx.stdout)


def _error_line(exc: SecretContractError) -> str:
    """An error a command cannot continue from, in the format of every finding."""
    return f"secret-contract: [error] {printable(str(exc), keep=chr(10))}\n"


def run_krm(stdin: BinaryIO, stdout: TextIO, env: Mapping[str, str]) -> int:
    """KRM function mode: always write a ResourceList, exit 1 on any error result."""
    from secret_contract import krm, pipeline, project

    try:
        rl = krm.parse(krm.decode(stdin.read()))
    except SecretContractError as exc:
        finding = error(str(exc), rule="resource-list")
        krm.write(krm.ResourceList([]), [finding], stdout)
        report([finding])
        return EXIT_FAILED
    here = project.find(os.getcwd(), env)
    outcome = pipeline.build(rl, here.environment(env), project=here.settings)
    findings = [*project_problems(here), *outcome.findings]
    krm.write(outcome.output, findings, stdout)
    report(findings)
    return exit_code(findings, outcome.pending)


def run_legacy_plugin(config_path: str, stdout: TextIO, env: Mapping[str, str]) -> int:
    """kustomize legacy exec plugin: the generator config is a file in argv[1]; stdin is empty."""
    from secret_contract import krm, pipeline, plugin, project, yaml_codec

    try:
        with open(config_path, encoding="utf-8") as handle:
            config = yaml_codec.load(handle.read())
    except (OSError, UnicodeDecodeError, yaml_codec.yaml.YAMLError) as exc:
        raise InvalidInput(f"cannot read the generator config {config_path}: {type(exc).__name__}") from None
    if not isinstance(config, dict):
        raise InvalidInput("the generator config is not a mapping")
    # Under `transformers:` the input comes back with the ExternalSecrets added, never dropped.
    items = plugin.resources(sys.stdin, env) or [config]
    here = project.find(os.getcwd(), env)
    rl = krm.ResourceList(items, function_config=config)
    outcome = pipeline.build(rl, here.environment(env), project=here.settings)
    findings = _with_config_file([*project_problems(here), *outcome.findings], config)
    report(findings)
    code = exit_code(findings, outcome.pending)
    if code != EXIT_OK:
        return code
    warn_on_terminal([f for f in findings if f.severity == "warning"])
    yaml_codec.write_all(outcome.output.items, stdout)
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
