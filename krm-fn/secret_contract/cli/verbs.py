"""The commands that build, read or wire: each is argv -> one core call -> print, with its
environment, streams and Vault in a `Context`. Their docstrings are their `--help` descriptions.

A command's modules are imported inside it: `--help` and the KRM build never load them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from secret_contract.cli import envelope
from secret_contract.cli.output import (
    EXIT_FAILED,
    EXIT_OK,
    Exit,
    exit_code,
    print_externalsecrets,
    print_rows,
    progress,
    project_problems,
    say,
)
from secret_contract.errors import InvalidInput
from secret_contract.results import Result, error, has_errors, info

if TYPE_CHECKING:
    import argparse

    from secret_contract import listing, pipeline
    from secret_contract.cli.context import Context
    from secret_contract.krm import ResourceList
    from secret_contract.project import Project
    from secret_contract.store import SecretStore


@dataclass
class Given:
    """What a command was given: its contracts as a ResourceList, the project around them and
    the environment with the project's defaults."""

    here: Project
    env: dict[str, str]
    rl: ResourceList

    def build(self, options: pipeline.Options | None = None) -> pipeline.Outcome:
        """A build of the contracts; without `options`, one that never touches Vault."""
        from secret_contract import pipeline

        return pipeline.build(self.rl, self.env, options or pipeline.Options(write=False), self.here.settings)

    def render(self) -> pipeline.Rendered:
        """The ExternalSecrets of the contracts, made as they are printed; never touches Vault."""
        from secret_contract import pipeline

        return pipeline.render(self.rl, self.env, self.here.settings)


def given(ctx: Context, paths: list[str]) -> Given:
    """The contracts at `paths`. Ends the command when there is nothing to do (stacks without
    a contract: a note, exit 0) or the project file is invalid."""
    from secret_contract import inputs, project

    here = project.find(ctx.cwd, ctx.env)
    found = inputs.resolve(paths, here)
    say(ctx, [info(note) for note in found.skipped] + project_problems(here))
    if here.problems:
        raise Exit(EXIT_FAILED)
    if not found.files:
        raise Exit(EXIT_OK)
    return Given(here, here.environment(ctx.env), inputs.read_files(found.files))


def validated(ctx: Context, paths: list[str]) -> tuple[Given, pipeline.Outcome]:
    """The contracts at `paths`, built without Vault; ends the command if they are invalid."""
    loaded = given(ctx, paths)
    outcome = loaded.build()
    if outcome.failed:
        say(ctx, outcome.findings)
        raise Exit(EXIT_FAILED)
    if not outcome.contracts:
        raise InvalidInput("no SecretContract found in the given files")
    return loaded, outcome


def store(ctx: Context, env: dict[str, str]) -> SecretStore:
    from secret_contract.vault_config import VaultConfig

    config = VaultConfig.from_env(env)
    if config is None:
        raise InvalidInput("VAULT_ADDR (or BAO_ADDR) is not set (this command needs Vault)")
    say(ctx, [Result("warning", message, rule="vault") for message in config.warnings()])
    if ctx.store_factory is not None:
        return ctx.store_factory(config)
    from secret_contract.vault import VaultStore

    return VaultStore(config)


def cmd_add(args: argparse.Namespace, ctx: Context) -> int:
    """Write the contracts' values to Vault and print their ExternalSecrets. Always strict: a
    Vault problem fails the command."""
    from secret_contract import pipeline

    loaded = given(ctx, args.paths)
    options = pipeline.Options(
        strict=True, verbose=args.verbose, store_factory=ctx.store_factory, progress=progress(ctx.stderr)
    )
    outcome = loaded.build(options)
    say(ctx, outcome.findings)
    ctx.dry_run = outcome.dry_run
    if outcome.report:
        ctx.changes.extend(envelope.of_sync(outcome.report))
    if outcome.failed:
        return EXIT_FAILED
    if not outcome.contracts:
        raise InvalidInput("no SecretContract found in the given files")
    ctx.externalsecrets.extend(outcome.externalsecrets)
    if args.output == "text":
        print_externalsecrets(outcome.externalsecrets, ctx.stdout)
    return exit_code(outcome.findings, outcome.pending)


def cmd_check(args: argparse.Namespace, ctx: Context) -> int:
    """Find the kustomize wiring mistakes under each DIR (every kustomization, at any depth),
    each with its fix: a contract under `resources:` (its static values reach the build output),
    a contract no kustomization lists (an empty build), one listed from outside the
    kustomization's folder, an exec function `kubectl kustomize` skips, a plugin config
    kustomize cannot find a plugin for. Exit 1 on errors. Reads files only; `render` and
    `plan` run the same check on a directory."""
    from secret_contract import wiring_check

    found = wiring_check.check(args.directories or ["."], ctx.env)
    say(ctx, found.findings or [wiring_check.summary(found)])
    return EXIT_FAILED if has_errors(found.findings) else EXIT_OK


def checked_wiring(ctx: Context, paths: list[str]) -> None:
    """The wiring check of the directories among `paths`; ends the command on an error."""
    directories = [p for p in paths if os.path.isdir(p)]
    if not directories:
        return
    from secret_contract import wiring_check

    # Only the stacks given, not their subfolders; and render and plan run no plugin.
    findings = wiring_check.check(directories, recursive=False).findings
    say(ctx, findings)
    if has_errors(findings):
        raise Exit(EXIT_FAILED)


def cmd_plan(args: argparse.Namespace, ctx: Context) -> int:
    """Show what a build would write to Vault (paths and keys, never values) without writing.
    Exit 2 when changes are pending, 0 when Vault is up to date."""
    from secret_contract import pipeline

    checked_wiring(ctx, args.paths)
    loaded = given(ctx, args.paths)
    options = pipeline.Options(
        strict=True, dry_run=True, verbose=args.verbose, store_factory=ctx.store_factory, progress=progress(ctx.stderr)
    )
    outcome = loaded.build(options)
    say(ctx, outcome.findings)
    ctx.dry_run = True
    if outcome.report:
        ctx.changes.extend(envelope.of_sync(outcome.report))
    if outcome.failed:
        return EXIT_FAILED
    if not outcome.pending:
        say(ctx, [info("Vault is up to date: a build would write nothing")])
    return exit_code(outcome.findings, outcome.pending)


def cmd_render(args: argparse.Namespace, ctx: Context) -> int:
    """Print the ExternalSecrets without any Vault access."""
    checked_wiring(ctx, args.paths)
    rendered = given(ctx, args.paths).render()
    say(ctx, rendered.findings)
    if rendered.failed:
        return EXIT_FAILED
    print_externalsecrets(rendered.externalsecrets(), ctx.stdout)
    return EXIT_OK


def cmd_build(args: argparse.Namespace, ctx: Context) -> int:
    """Build a kustomization with the function as its legacy plugin, strictly (Vault written or
    the build fails), and print the result: what `publish` packs, and what the Argo CD sidecar
    generates. Every plugin config the kustomization reaches is checked first: one that names a
    plugin by a path leaving kustomize's plugin directory would run any program."""
    from secret_contract import project, publish

    here = project.find(args.directory, ctx.env)
    if here.problems:
        say(ctx, [error(p, rule="settings") for p in here.problems])
        return EXIT_FAILED
    ctx.stdout.write(publish.build(args.directory, here.environment(ctx.env)))
    return EXIT_OK


def cmd_verify(args: argparse.Namespace, ctx: Context) -> int:
    """Exit 1, naming each gap, unless Vault holds every key the contracts declare, with the
    contract's static values and generated values their generator could have made."""
    from secret_contract import operations

    loaded, outcome = validated(ctx, args.paths)
    findings = operations.verify(store(ctx, loaded.env), outcome.targets, progress(ctx.stderr))
    say(ctx, findings)
    return EXIT_FAILED if has_errors(findings) else EXIT_OK


def cmd_list(args: argparse.Namespace, ctx: Context) -> int:
    """Stored secrets with version, owners and key names (never values): everything under the
    mount, or the secrets of the given contracts (declared ones, and what they left behind)."""
    from secret_contract import listing

    if args.paths:
        loaded, outcome = validated(ctx, args.paths)
        vault = store(ctx, loaded.env)
        rows = listing.contract_rows(vault, outcome.contracts, outcome.targets, progress(ctx.stderr))
    else:
        rows = _mount_rows(ctx, args.mount)
    print_rows(rows, args.output, ctx)
    return EXIT_OK


def _mount_rows(ctx: Context, mount: str | None) -> list[listing.Row]:
    """Every secret under `mount` (by default the configured one)."""
    from secret_contract import listing, project, settings

    here = project.find(ctx.cwd, ctx.env)
    env = here.environment(ctx.env)
    defaults, problems = settings.load(env, None, here.settings)
    if has_errors(problems):
        say(ctx, problems)
        raise Exit(EXIT_FAILED)
    mount = mount or defaults.mount
    vault = store(ctx, env)
    return listing.rows(vault, mount, listing.list_paths(vault, mount), progress(ctx.stderr))


def cmd_install_plugin(args: argparse.Namespace, ctx: Context) -> int:
    """Install the kustomize legacy exec plugin for hostk8s.io/v1 SecretContract."""
    from secret_contract import plugin

    ctx.stdout.write(plugin.install(args.dir or plugin.plugin_root(ctx.env)) + "\n")
    temporary = plugin.ephemeral_warning(ctx.env)
    if temporary:
        say(ctx, [Result("warning", temporary, rule="usage")])
    return EXIT_OK


def cmd_publish(args: argparse.Namespace, ctx: Context) -> int:
    """Build DIR with the function (writing Vault, strictly, as a build does) and push the
    result to an OCI registry as a Flux artifact that plain kustomize builds: what Flux's
    kustomize-controller, which runs no plugin, can apply."""
    from secret_contract import publish

    layer_file = args.layer_file
    if args.deprecated_output is not None:
        say(ctx, [Result("warning", "publish --output is deprecated: use --layer-file", rule="usage")])
        layer_file = args.deprecated_output
    reference = publish.Reference.parse(args.reference)
    request = publish.Request(
        directory=args.directory,
        references=[reference, *(reference.with_tag(tag) for tag in args.tag or ())],
        git=args.git,
        ref=args.ref,
        source=args.source,
        revision=args.revision,
        insecure=args.insecure,
        output=layer_file if args.dry_run else None,
        allow_dirty=args.allow_dirty,
    )
    try:
        done = publish.publish(request, ctx.env)
    except ModuleNotFoundError as exc:
        raise InvalidInput(f"publish needs {exc.name}: pip install 'secret-contract[publish]'") from None
    artifact = done.artifact
    say(ctx, [info(f"built {args.directory}: {artifact.documents} documents, layer {publish.layer_digest(artifact)}")])
    if args.dry_run:
        say(ctx, [info(f"dry run: wrote {layer_file}; nothing was pushed")])
        ctx.stdout.write(publish.manifest_preview(artifact) + "\n")
        return EXIT_OK
    for ref, digest in zip(request.references, done.digests, strict=True):
        ctx.stdout.write(f"oci://{ref}@{digest}\n")
    return EXIT_OK


def cmd_init(args: argparse.Namespace, ctx: Context) -> int:
    """Wire a stack to the function: the generator entry in its kustomization and, for the
    container or exec runtime, the function annotation in its contract (comments kept)."""
    from secret_contract import krm, wiring

    loaded = given(ctx, [args.path])
    contract_path = str(krm.file_ref(loaded.rl.items[0]).path)  # type: ignore[union-attr]
    outcome = loaded.build()
    if outcome.failed:
        say(ctx, outcome.findings)
        return EXIT_FAILED
    spec = wiring.annotation(args.runtime, args.image, args.exec_path)
    for path, edit in wiring.wire(contract_path, spec):
        if edit.changed and not args.dry_run:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(edit.text)
        say(ctx, [info(f"{path}: {edit.note}{' (dry run)' if edit.changed and args.dry_run else ''}")])
    return EXIT_OK
