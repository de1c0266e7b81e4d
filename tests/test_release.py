"""`make release VERSION=x.y.z`, run in a temporary clone of this checkout: the version bumped in
its one place, the changelog dated, one commit and an annotated tag; refused, changing nothing,
on a dirty tree, a version that is not semver or not above the current one, an existing tag or an
empty changelog section."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import EXAMPLES, ROOT
from secret_contract import yaml_codec

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Release Test",
    "GIT_AUTHOR_EMAIL": "release@example.com",
    "GIT_COMMITTER_NAME": "Release Test",
    "GIT_COMMITTER_EMAIL": "release@example.com",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "PATH": "/usr/bin:/bin",
}


def git_in(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=GIT_ENV)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def committed(tmp_path_factory: pytest.TempPathFactory, git: str) -> Path:
    """This checkout's files as they are now (commits included or not), committed in a fresh
    repository: made once, since adding and committing every file is most of a test's time."""
    repo = tmp_path_factory.mktemp("release") / "secret-contract"
    listed = subprocess.run([git, "-C", str(ROOT), "ls-files", "-z", "-co", "--exclude-standard"], capture_output=True)
    for name in filter(None, listed.stdout.decode().split("\0")):
        if (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    git_in(repo, "init", "--quiet", "-b", "main")
    git_in(repo, "add", "-A")
    git_in(repo, "commit", "--quiet", "-m", "start")
    return repo


@pytest.fixture
def clone(committed: Path, tmp_path: Path) -> Path:
    """A clone of the committed repository of the test's own, which it may change."""
    git_in(tmp_path, "clone", "--quiet", "--local", str(committed), "secret-contract")
    return tmp_path / "secret-contract"


def release(make: str, repo: Path, version: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [make, "-s", "-C", str(repo), "release", f"VERSION={version}"], capture_output=True, text=True, env=GIT_ENV
    )


def version_of(repo: Path) -> str:
    found = re.search(r'__version__ = "(.+)"', (repo / "krm-fn/secret_contract/__init__.py").read_text())
    assert found
    return found.group(1)


def test_a_release_bumps_the_version_dates_the_changelog_commits_and_tags(clone: Path, make: str) -> None:
    before = version_of(clone)
    entries = (clone / "CHANGELOG.md").read_text().split("## [Unreleased]\n")[1].split("\n[Unreleased]:")[0].strip()
    ran = release(make, clone, "0.2.0")
    assert ran.returncode == 0, ran.stderr
    assert "git push origin HEAD v0.2.0" in ran.stdout
    assert version_of(clone) == "0.2.0" != before
    # The package metadata reads the version there (pyproject's dynamic version).
    assert 'version = {attr = "secret_contract.__version__"}' in (clone / "pyproject.toml").read_text()
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    changelog = (clone / "CHANGELOG.md").read_text()
    assert f"## [Unreleased]\n\n## [0.2.0] - {today}\n\n{entries}\n" in changelog
    assert "[Unreleased]: https://github.com/hostk8s/secret-contract/compare/v0.2.0...HEAD\n" in changelog
    assert "[0.2.0]: https://github.com/hostk8s/secret-contract/releases/tag/v0.2.0\n" in changelog
    assert git_in(clone, "status", "--porcelain") == ""
    assert git_in(clone, "log", "-1", "--format=%s").strip() == "Release 0.2.0"
    assert set(git_in(clone, "show", "--name-only", "--format=", "HEAD").split()) == {
        "CHANGELOG.md",
        "krm-fn/secret_contract/__init__.py",
    }
    assert git_in(clone, "cat-file", "-t", "v0.2.0").strip() == "tag"  # annotated
    assert git_in(clone, "rev-parse", "v0.2.0^{commit}") == git_in(clone, "rev-parse", "HEAD")
    assert entries.splitlines()[0] in git_in(clone, "tag", "-l", "--format=%(contents)", "v0.2.0")

    # The next release compares with this one; its section starts empty and is refused so.
    empty = release(make, clone, "0.3.0")
    assert empty.returncode != 0 and "the ## [Unreleased] section is empty" in empty.stderr
    changelog = (clone / "CHANGELOG.md").read_text()
    (clone / "CHANGELOG.md").write_text(changelog.replace("## [Unreleased]\n", "## [Unreleased]\n\n- A fix.\n", 1))
    git_in(clone, "commit", "--quiet", "-am", "a fix")
    assert release(make, clone, "0.3.0").returncode == 0
    assert (
        "[0.3.0]: https://github.com/hostk8s/secret-contract/compare/v0.2.0...v0.3.0\n"
        in (clone / "CHANGELOG.md").read_text()
    )


@pytest.mark.parametrize(
    ("version", "change", "says"),
    [
        ("1.0", None, "is not MAJOR.MINOR.PATCH"),
        ("v1.0.0", None, "is not MAJOR.MINOR.PATCH"),
        ("0.0.9", None, "is not above the current version"),
        ("0.2.0", "dirty", "the working tree has changes"),
        ("0.2.0", "untracked", "the working tree has changes"),
        ("0.2.0", "tagged", "the tag v0.2.0 exists already"),
    ],
)
def test_a_release_is_refused_and_nothing_changes(
    clone: Path, make: str, version: str, change: str | None, says: str
) -> None:
    if change == "dirty":
        (clone / "README.md").write_text((clone / "README.md").read_text() + "\nedited\n")
    elif change == "untracked":
        (clone / "notes.txt").write_text("not committed\n")
    elif change == "tagged":
        git_in(clone, "tag", "v0.2.0")
    head, status, before = git_in(clone, "rev-parse", "HEAD"), git_in(clone, "status", "--porcelain"), version_of(clone)
    ran = release(make, clone, version)
    assert ran.returncode != 0 and says in ran.stderr and "nothing changed" in ran.stderr
    assert git_in(clone, "rev-parse", "HEAD") == head and git_in(clone, "status", "--porcelain") == status
    assert version_of(clone) == before


def test_the_ci_example_pins_a_commit_or_a_release_that_exists(git: str) -> None:
    """Not a tag that was never made: a commit of this repository, or a released version."""
    workflow = yaml_codec.load((EXAMPLES / "ci" / "github-workflow.yaml").read_text())
    spec = workflow["env"]["SECRET_CONTRACT_PIP"]
    pinned = re.fullmatch(r"secret-contract\[publish\] @ git\+https://github\.com/hostk8s/secret-contract@(\w+)", spec)
    released = re.fullmatch(r"secret-contract\[publish\]==(\d+\.\d+\.\d+)", spec)
    assert pinned or released, spec
    if pinned:
        commit = pinned.group(1)
        assert re.fullmatch(r"[0-9a-f]{40}", commit), "pin a full commit until the first release"
        found = subprocess.run([git, "-C", str(ROOT), "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True)
        assert found.returncode == 0, f"{commit} is not a commit of this repository"
    else:
        assert released
        assert f"## [{released.group(1)}] - " in (ROOT / "CHANGELOG.md").read_text()


def hook(repo: Path, name: str, script: str) -> None:
    path = repo / ".git" / "hooks" / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)


@pytest.mark.parametrize(
    ("name", "script", "says"),
    [
        # A hook that refuses the commit: the files written for it are restored.
        ("pre-commit", "echo 'lint failed' >&2; exit 1", "lint failed"),
        # The tag made by someone else between the check and the tag: the commit is undone too.
        ("post-commit", "git tag v0.2.0", "tag 'v0.2.0' already exists"),
    ],
)
def test_a_release_that_fails_halfway_is_undone(clone: Path, make: str, name: str, script: str, says: str) -> None:
    hook(clone, name, script)
    head, before = git_in(clone, "rev-parse", "HEAD"), version_of(clone)
    changelog = (clone / "CHANGELOG.md").read_text()
    ran = release(make, clone, "0.2.0")
    assert ran.returncode != 0 and "release: nothing changed:" in ran.stderr and says in ran.stderr, ran.stderr
    assert git_in(clone, "rev-parse", "HEAD") == head
    assert git_in(clone, "status", "--porcelain") == ""
    assert version_of(clone) == before and (clone / "CHANGELOG.md").read_text() == changelog


def test_a_changelog_without_the_unreleased_link_is_released_and_said(clone: Path, make: str) -> None:
    changelog = (clone / "CHANGELOG.md").read_text()
    (clone / "CHANGELOG.md").write_text(re.sub(r"^\[Unreleased\]: .*\n", "", changelog, flags=re.M))
    git_in(clone, "commit", "--quiet", "-am", "no links")
    ran = release(make, clone, "0.2.0")
    assert ran.returncode == 0, ran.stderr
    assert "CHANGELOG.md has no `[Unreleased]: ...` link line: no [0.2.0] link was added" in ran.stderr
    assert "[0.2.0]: " not in (clone / "CHANGELOG.md").read_text()
