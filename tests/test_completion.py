"""Shell completion (`secret-contract completion bash|zsh|fish`) and the man page (`make man`),
both generated from the parser, loaded by the real shells and rendered by man: every verb and
every option the command line accepts is offered."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, run, secret_contract
from secret_contract.cli import parser as cli_parser

pytestmark = pytest.mark.shells


def verbs() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in cli_parser.build()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def options(verb: argparse.ArgumentParser) -> set[str]:
    return {flag for a in verb._actions if a.help != argparse.SUPPRESS for flag in a.option_strings}


def generated(shell: str, tmp_path: Path) -> Path:
    ran = secret_contract("completion", shell)
    assert ran.returncode == 0, ran.stderr
    path = tmp_path / f"completion.{shell}"
    path.write_text(ran.stdout)
    return path


def need(shell: str) -> str:
    found = shutil.which(shell)
    if found is None:
        pytest.fail(f"{shell} is missing: `make tools` installs it (scripts/test-tools.sh)")
    return found


def test_every_verb_is_one_the_parser_has() -> None:
    assert set(verbs()) == set(cli_parser.VERBS) and "completion" in verbs()


def test_bash_completes_every_verb_every_option_and_the_choices(tmp_path: Path) -> None:
    script = generated("bash", tmp_path)

    def complete(*words: str) -> set[str]:
        quoted = " ".join(f"'{w}'" for w in words)
        probe = (
            f"source {script}\n"
            "set -- $(complete -p secret-contract)\n"  # complete ... -F FUNCTION secret-contract
            'while [ "$1" != -F ]; do shift; done; fn=$2\n'
            f"COMP_WORDS=(secret-contract {quoted}); COMP_CWORD={len(words)}\n"
            'COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}\n'
            '"$fn" secret-contract "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"\n'
            'printf "%s\\n" "${COMPREPLY[@]}"\n'
        )
        ran = run([need("bash"), "--norc", "--noprofile", "-c", probe])
        assert ran.returncode == 0, ran.stderr
        return set(ran.stdout.split())

    assert complete("") == set(verbs())
    for name, verb in verbs().items():
        assert complete(name, "-") >= options(verb), name
    assert complete("completion", "") == {"bash", "zsh", "fish"}
    assert complete("list", "-o", "") == {"table", "json", "yaml"}
    assert complete("init", "--runtime", "") == {"legacy", "container", "exec"}


def test_fish_completes_every_verb_and_every_option(tmp_path: Path) -> None:
    script = generated("fish", tmp_path)

    def complete(line: str) -> set[str]:
        ran = run([need("fish"), "--no-config", "-c", f"source {script}; complete -C '{line}'"])
        assert ran.returncode == 0, ran.stderr
        return {entry.split("\t")[0] for entry in ran.stdout.splitlines()}

    assert complete("secret-contract ") >= set(verbs())
    for name, verb in verbs().items():
        assert complete(f"secret-contract {name} -") >= options(verb), name
    assert complete("secret-contract completion ") == {"bash", "zsh", "fish"}
    assert complete("secret-contract init --runtime ") == {"legacy", "container", "exec"}


def test_zsh_registers_the_completion_and_it_holds_every_verb_and_option(tmp_path: Path) -> None:
    # zsh completes only inside its line editor; what can be checked outside it: the script
    # parses, compinit registers it for the command from a directory on $fpath, and each verb's
    # argument spec names every option.
    functions = tmp_path / "zfunc"
    functions.mkdir()
    script = generated("zsh", tmp_path).rename(functions / "_secret-contract")
    zsh = need("zsh")
    assert run([zsh, "-n", str(script)]).returncode == 0
    probe = f"fpath=({functions} $fpath); autoload -Uz compinit && compinit -u -d {tmp_path}/dump; "
    ran = run([zsh, "-f", "-c", probe + "print -r -- $_comps[secret-contract]"])
    assert ran.returncode == 0 and ran.stdout.strip() == "_secret-contract", ran.stderr
    text = script.read_text()
    for name, verb in verbs().items():
        spec = re.search(rf"^_shtab_secret_contract_{name.replace('-', '_')}_options=\(\n(.*?)^\)", text, re.M | re.S)
        assert spec, name
        assert all(flag in spec.group(1) for flag in options(verb)), name


def test_bash_and_zsh_without_shtab_say_what_to_install(tmp_path: Path) -> None:
    # A Python whose shtab import fails: the extra is not installed.
    blocker = tmp_path / "shtab.py"
    blocker.write_text("raise ImportError('not installed')\n")
    ran = secret_contract("completion", "bash", env={"PYTHONPATH": str(tmp_path)})
    assert ran.returncode == 1 and "pip install 'secret-contract[completion]'" in ran.stderr
    assert ran.stdout == ""


def test_the_man_page_is_generated_from_the_parser_and_renders(tmp_path: Path) -> None:
    made = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "-o", str(ROOT / ".venv" / ".installed"), "man", f"MAN_DIR={tmp_path}"],
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    page = tmp_path / "secret-contract.1"
    warnings = run(["groff", "-man", "-Tutf8", "-ww", "-z", str(page)])
    assert warnings.returncode == 0 and warnings.stderr == ""
    shown = run(["man", "-l", str(page)], env={"MANPAGER": "cat", "MANWIDTH": "200"})
    assert shown.returncode == 0, shown.stderr
    text = re.sub(r".\x08", "", shown.stdout)  # overstrike bold and underline, where man keeps them
    assert text.startswith("SECRET-CONTRACT(1)")
    for name, verb in verbs().items():
        assert f"COMMAND 'secret-contract {name}'" in text, name
        assert all(re.search(rf"(^|[\s,\[]){re.escape(flag)}\b", text) for flag in options(verb) - {"-h", "--help"}), (
            name
        )
