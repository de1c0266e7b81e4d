"""The commands that change Vault besides a build: remove, release, prune, rotate and migrate. Each
plans with `operations`, shows the plan, asks where an action destroys, then carries it out.
Their docstrings are their `--help` descriptions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from secret_contract.cli import envelope
from secret_contract.cli.output import EXIT_FAILED, EXIT_OK, confirm, progress, say
from secret_contract.cli.verbs import store, validated
from secret_contract.results import error, has_errors

if TYPE_CHECKING:
    import argparse

    from secret_contract import actions, operations
    from secret_contract.cli.context import Context
    from secret_contract.resolution import ResolvedContract
    from secret_contract.store import SecretStore


def cmd_remove(args: argparse.Namespace, ctx: Context) -> int:
    """Delete every Vault secret the stack owns, with all its versions. A secret another stack
    still declares is kept (only this stack's record goes); a secret secret-contract adopted
    is released, never destroyed."""
    from secret_contract import operations

    return _leaving(args, ctx, operations.plan_remove, "remove")


def cmd_release(args: argparse.Namespace, ctx: Context) -> int:
    """Forget the stack's claim on its Vault secrets and keep every value and version (what a
    platform's `make down` runs): building the stack again takes them back, with the same
    credentials. A secret another stack declares stays theirs. Destroys nothing, so it does
    not ask."""
    from secret_contract import operations

    return _leaving(args, ctx, operations.plan_release, "release")


def cmd_prune(args: argparse.Namespace, ctx: Context) -> int:
    """Delete only what left the contract: secrets the stack owns and no longer declares, and
    keys it no longer names (as a new version; older versions keep them)."""
    from secret_contract import operations

    # Prune makes no stack leave: every contract's declaration in the repository stands.
    loaded, outcome = validated(ctx, args.paths)
    vault = store(ctx, loaded.env)
    elsewhere = operations.declared_in_repository(loaded.here, loaded.env)
    return _per_contract(
        args,
        ctx,
        vault,
        outcome.contracts,
        lambda s, c: operations.plan_prune(s, c, outcome.targets, elsewhere),
        "prune",
    )


def _leaving(args: argparse.Namespace, ctx: Context, leave: operations.Leave, verb: str) -> int:
    """The named stacks leave (remove, release), weighing what the repository's other contracts
    declare."""
    from secret_contract import operations

    loaded, outcome = validated(ctx, args.paths)
    vault = store(ctx, loaded.env)
    elsewhere = operations.declared_in_repository(loaded.here, loaded.env)
    planned = operations.plan_leaving(vault, outcome.contracts, outcome.targets, elsewhere, leave)
    return _settle(args, ctx, vault, planned, verb)


def cmd_rotate(args: argparse.Namespace, ctx: Context) -> int:
    """Replace generated values on purpose: a new KV version (the previous one stays readable
    for rollback). Refuses keys with static values and secrets the stack does not own."""
    from secret_contract import listing, operations

    loaded, outcome = validated(ctx, args.paths)
    vault = store(ctx, loaded.env)
    listing.check_mounts(vault, {t.desired.mount for t in outcome.targets})
    keys = tuple(args.key or ())
    return _per_contract(
        args,
        ctx,
        vault,
        outcome.contracts,
        lambda s, c: operations.plan_rotate(s, c.stack, outcome.targets, args.secret, keys),
        "rotate",
    )


def cmd_migrate(args: argparse.Namespace, ctx: Context) -> int:
    """Bring values written by manage-secrets.py (or under another layout) to where the
    contracts resolve, keeping every value: copy, then mark the source as migrated; with
    --delete-source delete it after the copy (asks, like remove)."""
    from secret_contract import operations

    loaded, outcome = validated(ctx, args.paths)
    vault = store(ctx, loaded.env)
    planned = operations.plan_migrate(vault, outcome.targets, args.delete_source)
    return _settle(args, ctx, vault, planned, "migrate")


def _per_contract(
    args: argparse.Namespace,
    ctx: Context,
    vault: SecretStore,
    contracts: list[ResolvedContract],
    decide: operations.Decide,
    verb: str,
) -> int:
    """Plan every contract, then show, confirm and carry out the one plan (exit 1 if any
    contract was refused, and then nothing is changed)."""
    from secret_contract import operations

    return _settle(args, ctx, vault, operations.plan_contracts(vault, contracts, decide), verb)


def _settle(args: argparse.Namespace, ctx: Context, vault: SecretStore, planned: actions.Planned, verb: str) -> int:
    """One plan: recorded, shown, confirmed where an action destroys, carried out."""
    ctx.dry_run = args.dry_run
    # Recorded before anything can go wrong, so that the report names every planned change
    # whatever ends the command; an action's record turns `done` as soon as it happened.
    first = len(ctx.changes)
    ctx.changes.extend(envelope.of_actions(planned.actions, envelope.unmade(planned, args.dry_run)))
    decision = confirm(ctx, planned, verb, args.dry_run, getattr(args, "yes", False), args.verbose)
    if decision != "go":
        return EXIT_FAILED if planned.refused or decision == "declined" else EXIT_OK
    code = _carry_out(ctx, vault, planned.actions, lambda i: envelope.mark_done(ctx.changes, first + i))
    return EXIT_FAILED if planned.refused else code


def _carry_out(ctx: Context, vault: SecretStore, planned: list[actions.Action], done: Callable[[int], None]) -> int:
    from secret_contract import actions

    refused = actions.denied(vault, planned)
    if refused:
        say(ctx, [*refused, error("nothing was changed")])
        return EXIT_FAILED
    findings = actions.apply(vault, planned, progress(ctx.stderr), done)
    say(ctx, findings)
    return EXIT_FAILED if has_errors(findings) else EXIT_OK
