#!/usr/bin/env python3
"""Make a release commit and its annotated tag: `make release VERSION=x.y.z`.

Refuses unless the working tree is clean, VERSION is x.y.z and above the current version, the
tag does not exist and CHANGELOG.md's Unreleased section holds something. Then it writes
VERSION into krm-fn/secret_contract/__init__.py (the one place the version is written: the
package metadata and the images read it there), moves the Unreleased entries into a section
dated today (UTC), commits both files and tags the commit `vVERSION`, the changelog section as
the tag's message. Nothing is pushed: pushing the tag starts .github/workflows/release.yml.
When the commit fails (a hook, signing) both files are restored; when the tag fails the commit
is undone as well; what could not be undone is named.
Standard library only, so it runs without the virtualenv.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSION_FILE = Path("krm-fn/secret_contract/__init__.py")
CHANGELOG = Path("CHANGELOG.md")
REPOSITORY = "https://github.com/hostk8s/secret-contract"
SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")
VERSION_LINE = re.compile(r'^__version__ = "([^"]+)"$', re.MULTILINE)
UNRELEASED = "## [Unreleased]"


class Refused(Exception):
    """A release that must not be made; the message says why and what to do."""


class Left(Exception):
    """A release that stopped halfway and could not be undone; the message says what is left."""


@dataclass(frozen=True)
class Release:
    version: str
    previous: str
    date: str

    @property
    def tag(self) -> str:
        return f"v{self.version}"


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        shown = args[: args.index("-m")] if "-m" in args else args  # not the message: it may be long
        raise Refused(f"git {' '.join(shown)}: {done.stderr.strip()}")
    return done.stdout


def check(version: str) -> Release:
    if not SEMVER.fullmatch(version):
        raise Refused(f"VERSION={version!r} is not MAJOR.MINOR.PATCH (semantic versioning, e.g. 1.2.0)")
    if git("status", "--porcelain", "--untracked-files=normal").strip():
        raise Refused("the working tree has changes: commit or remove them first (git status)")
    git("var", "GIT_COMMITTER_IDENT")  # who commits and tags: fails here rather than halfway
    found = VERSION_LINE.search((ROOT / VERSION_FILE).read_text())
    if found is None:
        raise Refused(f'{VERSION_FILE}: no line __version__ = "..."')
    previous = found.group(1)
    if _numbers(version) <= _numbers(previous):
        raise Refused(f"VERSION={version} is not above the current version {previous}")
    if git("tag", "--list", f"v{version}").strip():
        raise Refused(f"the tag v{version} exists already")
    if not unreleased_entries((ROOT / CHANGELOG).read_text()):
        raise Refused(f"{CHANGELOG}: the {UNRELEASED} section is empty: say what this release changes")
    return Release(version, previous, datetime.now(UTC).strftime("%Y-%m-%d"))


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def unreleased_entries(changelog: str) -> str:
    """The Unreleased section's text, up to the next release's heading or the link list."""
    start = changelog.find(UNRELEASED)
    if start < 0:
        return ""
    body = changelog[start + len(UNRELEASED) :]
    end = re.search(r"^(## \[|\[[^\]]+\]: )", body, re.MULTILINE)
    return (body[: end.start()] if end else body).strip()


def changelog_for(changelog: str, release: Release) -> str:
    """The changelog with the Unreleased entries moved under the release's heading, and the
    comparison links at the bottom updated."""
    entries = unreleased_entries(changelog)
    start = changelog.index(UNRELEASED)
    rest = changelog[start + len(UNRELEASED) :].lstrip("\n")
    rest = rest[len(entries) :].lstrip("\n")
    section = f"{UNRELEASED}\n\n## [{release.version}] - {release.date}\n\n{entries}\n\n"
    text = changelog[:start] + section + rest
    text = re.sub(r"^\[Unreleased\]: .*$", f"[Unreleased]: {REPOSITORY}/compare/{release.tag}...HEAD", text, flags=re.M)
    earlier = f"v{release.previous}" if git("tag", "--list", f"v{release.previous}").strip() else ""
    link = f"{REPOSITORY}/compare/{earlier}...{release.tag}" if earlier else f"{REPOSITORY}/releases/tag/{release.tag}"
    return text.replace(
        f"[Unreleased]: {REPOSITORY}/compare/{release.tag}...HEAD\n",
        f"[Unreleased]: {REPOSITORY}/compare/{release.tag}...HEAD\n[{release.version}]: {link}\n",
    )


def make(release: Release) -> list[str]:
    """Commit and tag the release; the notes to show besides. Undone on a failure."""
    version_path, changelog_path = ROOT / VERSION_FILE, ROOT / CHANGELOG
    version_text, changelog = version_path.read_text(), changelog_path.read_text()
    notes = unreleased_entries(changelog)
    said = []
    if not re.search(r"^\[Unreleased\]: ", changelog, re.MULTILINE):
        said.append(f"{CHANGELOG} has no `[Unreleased]: ...` link line: no [{release.version}] link was added")
    head = git("rev-parse", "HEAD").strip()
    version_path.write_text(VERSION_LINE.sub(f'__version__ = "{release.version}"', version_text))
    changelog_path.write_text(changelog_for(changelog, release))
    try:
        git("add", str(VERSION_FILE), str(CHANGELOG))
        git("commit", "--quiet", "-m", f"Release {release.version}")
        git("tag", "-a", "--cleanup=verbatim", release.tag, "-m", f"secret-contract {release.version}\n\n{notes}\n")
    except Refused as why:
        _undo(head, {version_path: version_text, changelog_path: changelog}, why)
        raise
    return said


def _undo(head: str, originals: dict[Path, str], why: Refused) -> None:
    """Back to `head` with both files as they were, or Left naming what stays."""
    try:
        if git("rev-parse", "HEAD").strip() != head:
            git("reset", "--quiet", "--soft", head)  # the release commit, made before the tag failed
        for path, text in originals.items():
            path.write_text(text)
        git("reset", "--quiet", "--", *(str(path.relative_to(ROOT)) for path in originals))
    except (Refused, OSError) as failed:
        raise Left(
            f"{why}; undoing it failed ({failed}): check `git log -1` and `git status`, and restore "
            f"{VERSION_FILE} and {CHANGELOG} as they are in {head[:12]}"
        ) from failed


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: make release VERSION=x.y.z", file=sys.stderr)
        return 2
    try:
        release = check(argv[0])
        said = make(release)
    except Refused as why:
        print(f"release: nothing changed: {why}", file=sys.stderr)
        return 1
    except Left as why:
        print(f"release: stopped halfway: {why}", file=sys.stderr)
        return 1
    for note in said:
        print(f"release: note: {note}", file=sys.stderr)
    print(f"release: committed {release.version} and tagged {release.tag}; publish it with")
    print(f"  git push origin HEAD {release.tag}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
