"""The README runs as written: every shell block marked ```sh test``` (and ```sh test
registry```, given a registry) runs in order, in a copy of the repository, against the test
OpenBao with an empty KV v2 mount `secret`, as a newcomer's shell would run it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from builders import git
from conftest import BIN, ROOT, OpenBao, Vault, assert_no_leak, run

BLOCK = re.compile(r"^```sh test( registry)?\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
NOT_COPIED = shutil.ignore_patterns(".venv", "build", "dist", ".demo", "*_cache", "*.egg-info", "__pycache__")


def readme_blocks() -> list[tuple[int, bool, str]]:
    """(line, needs a registry, script) of every runnable block."""
    text = (ROOT / "README.md").read_text()
    return [(text.count("\n", 0, m.start()) + 1, bool(m.group(1)), m.group(2)) for m in BLOCK.finditer(text)]


def test_the_readme_marks_its_runnable_blocks() -> None:
    blocks = readme_blocks()
    assert len(blocks) >= 5, "the README's runnable examples lost their ```sh test marks"
    assert any(registry for _, registry, _ in blocks)


@pytest.mark.usefixtures("kubectl")  # the blocks build with kubectl kustomize
def test_every_runnable_readme_block_passes(tmp_path: Path, openbao: OpenBao, registry: str) -> None:
    client = openbao.client()
    if "secret/" in client.sys.list_mounted_secrets_engines():
        client.sys.disable_secrets_engine("secret")
    client.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
    copy = tmp_path / "repository"
    shutil.copytree(ROOT, copy, ignore=NOT_COPIED, symlinks=True)
    if (copy / ".git").is_dir():  # what a reader runs is a clean checkout: `publish` refuses uncommitted changes
        for args in (["add", "-A"], ["commit", "-q", "--no-verify", "--allow-empty", "-m", "readme"]):
            git(copy, "-c", "core.hooksPath=/dev/null", *args)
    (tmp_path / "xdg").mkdir()
    env = {
        "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "VAULT_ADDR": openbao.addr,
        "VAULT_TOKEN": openbao.token,
    }
    printed: list[str] = []
    stored = Vault(openbao, "secret")
    seen: dict[str, list[str]] = {}  # path: values, gathered after every block (later ones may delete)
    for line, needs_registry, script in readme_blocks():
        block_env = {**env, "REGISTRY": registry} if needs_registry else env
        done = run(["bash", "-euo", "pipefail", "-c", script], env=block_env, cwd=copy)
        assert done.returncode == 0, f"README.md line {line}:\n{script}\n--- stderr:\n{done.stderr[-3000:]}"
        printed += [done.stdout, done.stderr]
        seen |= {path: list(data.values()) for path, (_, data) in stored.snapshot().items()}
    assert seen, "no README block wrote Vault"
    # Static values such as `postgres` are part of the paths the output names.
    assert_no_leak(printed, [openbao.token, *(v for vs in seen.values() for v in vs)], names=tuple(seen))
