"""Installing the way users do without a checkout: `uvx` and `pipx run` from the built wheel
and from a git URL, and the lock files' agreement with the declared dependencies."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from builders import commit_tree, lock_pins
from conftest import BIN, ROOT, run
from secret_contract import __version__

# Tools' caches outlive the test's temporary HOME, so dependencies download once per machine.
CACHES = ROOT / ".venv" / "tool-caches"


def tool_env(tmp_path: Path) -> dict[str, str]:
    return {
        "UV_CACHE_DIR": str(CACHES / "uv"),
        "PIPX_HOME": str(tmp_path / "pipx-home"),
        "PIPX_BIN_DIR": str(tmp_path / "pipx-bin"),
        "PIP_CACHE_DIR": str(CACHES / "pip"),
        "UV_TOOL_DIR": str(tmp_path / "uv-tools"),
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [str(BIN / "python"), "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    (found,) = out.glob("secret_contract-*.whl")
    return found


@pytest.fixture
def git_url(tmp_path: Path) -> str:
    """A git repository holding this tree's package files, committed: `git+file://...`."""
    repo = tmp_path / "repo"
    for part in ("pyproject.toml", "README.md", "LICENSE", "krm-fn"):
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, repo / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif source.exists():
            repo.mkdir(exist_ok=True)
            shutil.copy2(source, repo / part)
    commit_tree(repo, "release")
    return f"git+file://{repo}"


@pytest.mark.network
def test_uvx_runs_the_command_from_the_wheel_and_from_git(tmp_path: Path, wheel: Path, git_url: str) -> None:
    for source in (str(wheel), git_url):
        done = run([str(BIN / "uvx"), "--from", source, "secret-contract", "--version"], env=tool_env(tmp_path))
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip().endswith(__version__)
        helped = run([str(BIN / "uvx"), "--from", source, "secret-contract", "plan", "--help"], env=tool_env(tmp_path))
        assert helped.returncode == 0 and "VAULT_ADDR" in helped.stdout


@pytest.mark.network
def test_pipx_runs_the_command_from_the_wheel_and_from_git(tmp_path: Path, wheel: Path, git_url: str) -> None:
    for source in (str(wheel), git_url):
        done = run([str(BIN / "pipx"), "run", "--spec", source, "secret-contract", "--version"], env=tool_env(tmp_path))
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip().endswith(__version__)


def test_the_locks_pin_every_declared_dependency_within_its_range() -> None:
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for lock, declared in (
        ("function.lock", project["dependencies"]),
        ("publisher.lock", project["dependencies"] + project["optional-dependencies"]["publish"]),
    ):
        pins = lock_pins(ROOT / "requirements" / lock)
        for entry in declared:
            wanted = Requirement(entry)
            name = canonicalize_name(wanted.name)
            assert name in pins, f"{lock} lacks {wanted.name}: run `make lock`"
            assert wanted.specifier.contains(pins[name]), f"{lock}: {wanted.name}=={pins[name]} is not {wanted}"
