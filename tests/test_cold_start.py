"""What a build loads. Every build pays for each module it imports, so the usual one (a small
contract, unchanged, Vault already holding it) imports none of what only a contract's first
check, a command or a login needs, and kustomize's plugin run none of the command line's
verbs. Seen in the real process through Python's own import log (`-X importtime`)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from builders import DEMO, generator_input
from conftest import EXAMPLES, Vault, run
from secret_contract import plugin

COMMAND_MODULES = {
    "argparse",
    "secret_contract.cli.parser",
    "secret_contract.cli.verbs",
    "secret_contract.cli.changes",
    "secret_contract.wiring",
}
# The schema validators (a contract that passed before skips them), a login's client, suggestions.
NOT_FOR_A_NO_OP_BUILD = {*COMMAND_MODULES, "jsonschema", "jsonschema_rs", "hvac", "difflib"}


def imported(stderr: str) -> set[str]:
    """The modules a process started with `-X importtime` imported, read from its stderr."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and "self [us]" not in line
    }


def test_a_no_op_build_imports_no_validator_command_or_login_module(vault: Vault, tmp_path: Path) -> None:
    stdin = generator_input(DEMO)
    env = {**vault.env, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    first = run([sys.executable, "-m", "secret_contract"], env=env, stdin=stdin)
    assert first.returncode == 0, first.stderr
    again = run([sys.executable, "-X", "importtime", "-m", "secret_contract"], env=env, stdin=stdin)
    assert again.returncode == 0, again.stderr
    loaded = imported(again.stderr)
    assert "secret_contract.vault" in loaded  # Vault was read, and the log is read right
    assert loaded & NOT_FOR_A_NO_OP_BUILD == set()


def test_the_legacy_plugin_imports_no_command_module(plugin_home: Path, tmp_path: Path) -> None:
    app = tmp_path / "sample-app"
    shutil.copytree(EXAMPLES / "sample-app", app)
    # As kustomize runs it: the installed wrapper, in the kustomization's folder, with the
    # absolute path of the generator config and an empty stdin.
    ran = run(
        [plugin.plugin_path(str(plugin_home)), str(app / "hostk8s.secrets.yaml")],
        env={"PYTHONPROFILEIMPORTTIME": "1", plugin.UNDER_KUSTOMIZE_ENV: str(app)},
        stdin="",
        cwd=app,
    )
    assert ran.returncode == 0, ran.stderr
    assert "kind: ExternalSecret" in ran.stdout
    loaded = imported(ran.stderr)
    assert "secret_contract.plugin" in loaded
    assert loaded & COMMAND_MODULES == set()
