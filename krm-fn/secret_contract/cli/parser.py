"""The command line's grammar, as a table: each verb with its handler, summary, whether it
needs Vault, examples, options and the environment its help lists. `build()` turns the table
into argparse parsers; nothing else here knows a verb by name.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from secret_contract import __version__, wiring
from secret_contract.cli import changes, completion, verbs
from secret_contract.cli.output import EXIT_USAGE, Exit
from secret_contract.results import error, format_line

if TYPE_CHECKING:
    from secret_contract.cli.context import Context

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
DRY_RUN_ENV = "SECRET_CONTRACT_DRY_RUN=true: plan only, exit 2 when changes are pending."


@dataclass(frozen=True)
class Option:
    """One `add_argument` call: its names and its keywords."""

    names: tuple[str, ...]
    settings: Mapping[str, Any]


def option(*names: str, **settings: Any) -> Option:
    return Option(names, settings)


PATH_HELP = "contract files, stack directories, or stack names under the stacks root"
PATHS = option("paths", metavar="PATH", nargs="+", help=PATH_HELP)
# Every verb takes -v (added by `build` where a row does not list it).
VERBOSE = option("-v", "--verbose", action="store_true", help="list every change, even past 50")
QUIET_VERBOSE = option("-v", "--verbose", action="store_true", help="accepted on every verb; lists nothing more here")
DRY_RUN = option("--dry-run", action="store_true", help="say what would change, change nothing")
YES = option("-y", "--yes", action="store_true", help="do not ask before destroying (needed off a terminal)")
OUTPUT = option(
    "-o",
    "--output",
    choices=("text", "json", "yaml"),
    default="text",
    help="json or yaml: a report on stdout (secret-contract.hostk8s.io/v1 Report, schemas/report.v1.json); "
    "messages stay on stderr",
)


@dataclass(frozen=True)
class Verb:
    handler: Callable[[argparse.Namespace, Context], int]  # its docstring is the verb's description
    summary: str
    needs_vault: str  # the help's "needs Vault:" answer: yes, no, or when
    examples: tuple[str, ...]
    options: tuple[Option, ...] = ()
    env: tuple[str, ...] = ()  # the environment variables its help lists, a line each

    @property
    def description(self) -> str:
        return "\n".join(line.strip() for line in (self.handler.__doc__ or "").splitlines())

    def epilog(self) -> str:
        examples = "".join(f"  {e}\n" for e in self.examples)
        return f"examples:\n{examples}\nneeds Vault: {self.needs_vault}\n" + "".join(f"{line}\n" for line in self.env)


# In the order `secret-contract --help` lists them.
VERBS: dict[str, Verb] = {
    "add": Verb(
        verbs.cmd_add,
        "write contracts' values to Vault and print their ExternalSecrets",
        "yes",
        ("secret-contract add foundation/redis", "secret-contract add software/stacks/sample-app -v"),
        (PATHS, VERBOSE, OUTPUT),
        (VAULT_ENV, SETTINGS_ENV, DRY_RUN_ENV),
    ),
    "plan": Verb(
        verbs.cmd_plan,
        "show what a build would write to Vault, without writing (exit 2: changes pending)",
        "yes (reads only)",
        ("secret-contract plan sample-app foundation/airflow", "secret-contract plan sample-app -o json"),
        (PATHS, VERBOSE, OUTPUT),
        (VAULT_ENV, SETTINGS_ENV),
    ),
    "render": Verb(
        verbs.cmd_render,
        "print the ExternalSecrets without touching Vault",
        "no",
        ("secret-contract render $(git ls-files '*hostk8s.secrets.yaml')",),
        (PATHS,),
        (SETTINGS_ENV,),
    ),
    "build": Verb(
        verbs.cmd_build,
        "build a kustomization with the function, as publish does, and print it",
        "yes",
        ("secret-contract build .", "secret-contract build kustomize-examples/platform/overlays/prod"),
        (option("directory", metavar="DIR", help="the kustomization to build"),),
        (VAULT_ENV, SETTINGS_ENV),
    ),
    "check": Verb(
        verbs.cmd_check,
        "find kustomize wiring mistakes (a contract under resources, unlisted, skipped) and say the fix",
        "no",
        ("secret-contract check", "secret-contract check software/stacks kustomize-examples/platform"),
        (option("directories", metavar="DIR", nargs="*", help="trees of kustomizations (default: .)"),),
    ),
    "verify": Verb(
        verbs.cmd_verify,
        "fail unless Vault holds every key the contracts declare",
        "yes (reads only)",
        ("secret-contract verify sample-app", "secret-contract verify sample-app -o yaml"),
        (PATHS, OUTPUT),
        (VAULT_ENV,),
    ),
    "list": Verb(
        verbs.cmd_list,
        "list stored secrets with owners and key names (never values)",
        "yes (reads only)",
        ("secret-contract list", "secret-contract list foundation/airflow -o json"),
        (
            option("paths", metavar="PATH", nargs="*", help=f"{PATH_HELP} (default: the whole mount)"),
            option("--mount", help="KV v2 mount (default: SECRET_CONTRACT_VAULT_MOUNT or 'secret')"),
            option("-o", "--output", choices=("table", "json", "yaml"), default="table", help="output format"),
        ),
        (VAULT_ENV,),
    ),
    "rotate": Verb(
        changes.cmd_rotate,
        "replace generated values on purpose (new KV version; the old one stays)",
        "yes",
        ("secret-contract rotate sample-app --secret redis/redis-commander-credentials --key password --dry-run",),
        (
            PATHS,
            VERBOSE,
            DRY_RUN,
            OUTPUT,
            option("--secret", help="only this secret: NAME or NAMESPACE/NAME"),
            option("--key", action="append", help="only this generated key (repeatable)"),
        ),
        (VAULT_ENV,),
    ),
    "prune": Verb(
        changes.cmd_prune,
        "delete what left a contract (secrets and keys it no longer declares)",
        "yes",
        ("secret-contract prune sample-app --dry-run", "secret-contract prune sample-app --yes"),
        (PATHS, VERBOSE, DRY_RUN, YES, OUTPUT),
        (VAULT_ENV,),
    ),
    "remove": Verb(
        changes.cmd_remove,
        "delete a stack's secrets (shared and adopted ones are kept)",
        "yes",
        ("secret-contract remove foundation/redis --dry-run", "secret-contract remove foundation/redis -y"),
        (PATHS, DRY_RUN, YES, OUTPUT),
        (VAULT_ENV,),
    ),
    "release": Verb(
        changes.cmd_release,
        "forget a stack's claim on its secrets and keep the values (a later build takes them back)",
        "yes",
        ("secret-contract release foundation/redis --dry-run", "secret-contract release foundation/redis"),
        (PATHS, DRY_RUN, OUTPUT),
        (VAULT_ENV,),
    ),
    "migrate": Verb(
        changes.cmd_migrate,
        "move values written by manage-secrets.py to where the contracts resolve",
        "yes",
        ("secret-contract migrate sample-app --dry-run", "secret-contract migrate sample-app"),
        (
            PATHS,
            DRY_RUN,
            YES,
            OUTPUT,
            option("--delete-source", action="store_true", help="delete each source after its copy"),
        ),
        (VAULT_ENV,),
    ),
    "publish": Verb(
        verbs.cmd_publish,
        "build a kustomization and push it as a Flux OCI artifact",
        "yes",
        (
            "secret-contract publish overlays/prod oci://ghcr.io/acme/platform:prod",
            "secret-contract publish overlays/dev oci://127.0.0.1:5000/platform:dev --insecure --tag latest",
            "secret-contract publish --git https://github.com/acme/platform --ref main overlays/prod "
            "oci://registry.acme.internal/platform:prod",
        ),
        (
            option("directory", metavar="DIR", help="the kustomization to build"),
            option("reference", metavar="oci://REGISTRY/REPOSITORY:TAG", help="where to push"),
            option("--tag", action="append", help="push under this tag too (repeatable)"),
            option("--git", metavar="URL", help="clone this repository and build DIR inside it (no checkout needed)"),
            option("--ref", default="main", help="the branch or tag to clone with --git (default: main)"),
            option("--source", help="org.opencontainers.image.source (default: git remote origin)"),
            option("--revision", help="org.opencontainers.image.revision (default: branch@sha1:commit)"),
            option(
                "--insecure",
                action="store_true",
                help="allow plain-text transports: a registry over HTTP, a --git URL over http:// or git:// "
                "(for servers on the local machine or cluster)",
            ),
            option(
                "--dry-run",
                action="store_true",
                help="write the artifact to --layer-file and push nothing "
                "(the build still writes Vault; `plan` shows what)",
            ),
            option(
                "--allow-dirty",
                action="store_true",
                help="publish from a git working tree with uncommitted changes (the revision is marked -dirty)",
            ),
            option("--layer-file", metavar="FILE", default="artifact.tar.gz", help="where --dry-run writes the layer"),
            # The former name of --layer-file, kept working with a warning: -o/--output is a format elsewhere.
            option("--output", dest="deprecated_output", metavar="FILE", help=argparse.SUPPRESS),
        ),
        (VAULT_ENV,),
    ),
    "install-plugin": Verb(
        verbs.cmd_install_plugin,
        "install the kustomize legacy exec plugin",
        "no",
        ("secret-contract install-plugin", 'secret-contract install-plugin --dir "$KUSTOMIZE_PLUGIN_HOME"'),
        (option("--dir", help="plugin root (default: KUSTOMIZE_PLUGIN_HOME or $XDG_CONFIG_HOME/kustomize/plugin)"),),
    ),
    "init": Verb(
        verbs.cmd_init,
        "wire a stack to the function (kustomization generator, function annotation)",
        "no",
        ("secret-contract init software/stacks/sample-app", "secret-contract init sample-app --runtime container"),
        (
            option("path", metavar="PATH", help="a contract file, a stack directory or a stack name"),
            option(
                "--runtime",
                choices=("legacy", "container", "exec"),
                default="legacy",
                help="legacy: no annotation, the installed plugin runs it (works with kubectl kustomize); "
                "container: kustomize runs --image; exec: standalone kustomize --enable-exec runs --exec-path",
            ),
            option("--image", default=wiring.DEFAULT_IMAGE, help="container image (runtime container)"),
            option("--exec-path", help="path of the function for kustomize (runtime exec)"),
            DRY_RUN,
        ),
    ),
    "completion": Verb(
        completion.cmd_completion,
        "print a shell completion script (bash, zsh, fish) for every verb and option",
        "no",
        (
            'eval "$(secret-contract completion bash)"        # in ~/.bashrc',
            "secret-contract completion zsh > ~/.zfunc/_secret-contract   # a directory on $fpath",
            "secret-contract completion fish > ~/.config/fish/completions/secret-contract.fish",
        ),
        (option("shell", metavar="SHELL", choices=completion.SHELLS, help="bash, zsh or fish"),),
    ),
}


class Parser(argparse.ArgumentParser):
    """argparse that ends a command through `Exit` (never `sys.exit`) and says a usage error in
    the format of every other error."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"secret-contract: {format_line(error(message, rule='usage'))}\n")
        raise Exit(EXIT_USAGE)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise Exit(status)


def build() -> argparse.ArgumentParser:
    parser = Parser(
        prog="secret-contract", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"secret-contract {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, verb in VERBS.items():
        cmd = sub.add_parser(
            name,
            help=verb.summary,
            description=verb.description,
            epilog=verb.epilog(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        cmd.set_defaults(handler=verb.handler, verbose=False, reports=OUTPUT in verb.options)
        # Every verb takes -v, so that scripts may pass it everywhere; where a verb lists no
        # changes its help says so instead of promising a longer list.
        for each in verb.options if VERBOSE in verb.options else (QUIET_VERBOSE, *verb.options):
            cmd.add_argument(*each.names, **each.settings)
    return parser
