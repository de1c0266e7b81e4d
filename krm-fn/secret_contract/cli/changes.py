"""The commands that change Vault besides a build: remove, release, prune, rotate and migrate. Each
plans with `operations`, shows the plan, asks where it destroys, then carries it out. Their
docstrings are their `--help` descriptions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from secret_contract.cli.output import EXIT_FAILED, EXIT_OK, confirm, progress, report
from secret_contract.cli.verbs import store, validated
from secret_contract.results import error, has_errors

if TYPE_CHECKING:
    import argparse

    from secret_contract import actions
    from secret_contract.resolution import ResolvedContract
    from secret_contract.store import SecretStore


def cmd_remove(args: argparse.Namespace) -> int:
    """Delete every Vault secret the stack owns, with all its versions. A secret another stack
    still declares is kept (only this stack's record goes); a secret secret-contract adopted
    is released, never destroyed."""
    from secret_contract import operations

    return _removal(args, operations.plan_remove, "remove")


def cmd_release(args: argparse.Namespace) -> int:
    """Forget the stack's claim on its Vault secrets and keep every value and version (what a
    platform's `make down` runs): building the stack again takes them back, with the same
    credentials. A secret another stack declares stays theirs. Destroys nothing, so it does
    not ask."""
    from secret_contract import operations

    loaded, outcome = validated(args.paths)
    vault = store(loaded.env)
    elsewhere = operations.declared_in_repository(loaded.here, loaded.env)
    return _per_contract(
        vault,
        outcome.contracts,
        lambda contract: operations.plan_release(vault, contract, outcome.targets, elsewhere),
        "release",
        args.dry_run,
        yes=True,
    )


def cmd_prune(args: argparse.Namespace) -> int:
    """Delete only what left the contract: secrets the stack owns and no longer declares, and
    keys it no longer names (as a new version; older versions keep them)."""
    from secret_contract import operations

    return _removal(args, operations.plan_prune, "prune")


def _removal(args: argparse.Namespace, decide: Callable[..., actions.Planned], verb: str) -> int:
    from secret_contract import operations

    loaded, outcome = validated(args.paths)
    vault = store(loaded.env)
    elsewhere = operations.declared_in_repository(loaded.here, loaded.env)
    return _per_contract(
        vault,
        outcome.contracts,
        lambda contract: decide(vault, contract, outcome.targets, elsewhere),
        verb,
        args.dry_run,
        args.yes,
    )


def cmd_rotate(args: argparse.Namespace) -> int:
    """Replace generated values on purpose: a new KV version (the previous one stays readable
    for rollback). Refuses keys with static values and secrets the stack does not own."""
    from secret_contract import listing, operations

    loaded, outcome = validated(args.paths)
    vault = store(loaded.env)
    listing.check_mounts(vault, {t.desired.mount for t in outcome.targets})
    keys = tuple(args.key or ())
    # A rotation destroys no value (the previous version stays readable): it does not ask.
    return _per_contract(
        vault,
        outcome.contracts,
        lambda contract: operations.plan_rotate(vault, contract.stack, outcome.targets, args.secret, keys),
        "rotate",
        args.dry_run,
        yes=True,
    )


def cmd_migrate(args: argparse.Namespace) -> int:
    """Bring values written by manage-secrets.py (or under another layout) to where the
    contracts resolve, keeping every value: copy, then mark the source as migrated; with
    --delete-source delete it after the copy (asks, like remove)."""
    from secret_contract import operations

    loaded, outcome = validated(args.paths)
    vault = store(loaded.env)
    planned = operations.plan_migrate(vault, outcome.targets, args.delete_source)
    # A copy keeps every value; only deleting the sources destroys, so only then does it ask.
    if not confirm(planned, "migrate", args.dry_run, yes=args.yes or not args.delete_source):
        return EXIT_FAILED if planned.refused else EXIT_OK
    return _carry_out(vault, planned)


def _per_contract(
    vault: SecretStore,
    contracts: list[ResolvedContract],
    decide: Callable[[ResolvedContract], actions.Planned],
    verb: str,
    dry_run: bool,
    yes: bool,
) -> int:
    """Plan, show, confirm and carry out one contract at a time; exit 1 if any was refused."""
    code = EXIT_OK
    for contract in contracts:
        planned = decide(contract)
        if planned.refused:
            code = EXIT_FAILED
        if confirm(planned, verb, dry_run, yes):
            code = max(code, _carry_out(vault, planned))
    return code


def _carry_out(vault: SecretStore, planned: actions.Planned) -> int:
    from secret_contract import actions

    refused = actions.denied(vault, planned.actions)
    if refused:
        report([*refused, error("nothing was changed")])
        return EXIT_FAILED
    findings = actions.apply(vault, planned.actions, progress())
    report(findings)
    return EXIT_FAILED if has_errors(findings) else EXIT_OK
