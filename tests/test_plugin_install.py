"""`install-plugin` from an environment that will not last: one that `pipx run` or `uvx` made in
its cache warns and names the lasting install, and the wrapper it wrote, once that environment
is gone, says to run `install-plugin` again, seen through a real `kubectl kustomize` build."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EXAMPLES, ROOT, run


def environment_in(folder: Path) -> Path:
    """A virtualenv at `folder` that imports this checkout's package and dependencies: its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    (python,) = folder.glob("bin/python")
    inner = subprocess.run(
        [str(python), "-c", "import site; print(site.getsitepackages()[0])"], check=True, capture_output=True, text=True
    ).stdout.strip()
    # This checkout's environment, its package source included (the editable install's .pth is not read twice).
    Path(inner, "outer.pth").write_text("\n".join([*site.getsitepackages(), str(ROOT / "krm-fn")]) + "\n")
    return python


@pytest.mark.parametrize(
    ("cache", "runner", "lasting"),
    [("cache/pipx/0c2d9a5f1e7b", "pipx run", "pipx install"), ("cache/uv/archive-v0/Xy3Zk", "uvx", "uv tool install")],
)
def test_a_temporary_environment_warns_and_its_wrapper_says_to_reinstall_once_it_is_gone(
    tmp_path: Path, kubectl: str, cache: str, runner: str, lasting: str
) -> None:
    python = environment_in(tmp_path / cache)
    env = {"HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    plugins = tmp_path / "plugins"
    ran = run([str(python), "-m", "secret_contract", "install-plugin", "--dir", str(plugins)], env=env)
    assert ran.returncode == 0, ran.stderr
    assert f"temporary environment of `{runner}`" in ran.stderr and f"`{lasting} secret-contract`" in ran.stderr

    shutil.rmtree(tmp_path / cache)  # the runner cleaned its cache
    built = run(
        [kubectl, "kustomize", "--enable-alpha-plugins", str(EXAMPLES / "sample-app")],
        env={**env, "KUSTOMIZE_PLUGIN_HOME": str(plugins)},
    )
    assert built.returncode != 0
    assert "the Python it was installed with is gone" in built.stderr, built.stderr
    assert "run secret-contract install-plugin again" in built.stderr


def test_a_lasting_environment_installs_without_a_warning(tmp_path: Path) -> None:
    python = environment_in(tmp_path / "venvs" / "secret-contract")
    env = {"HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    ran = run([str(python), "-m", "secret_contract", "install-plugin", "--dir", str(tmp_path / "plugins")], env=env)
    assert ran.returncode == 0 and ran.stderr == "", ran.stderr
