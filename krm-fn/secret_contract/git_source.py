"""A repository's tree at one branch or tag, for `publish --git`.

In a cluster there is no checkout to build from: the publisher clones the branch (shallow,
one commit) with dulwich, a git implementation in Python, so the image needs no git binary.
Credentials for HTTPS come from SECRET_CONTRACT_GIT_USERNAME and SECRET_CONTRACT_GIT_PASSWORD
(or SECRET_CONTRACT_GIT_PASSWORD_FILE, a mounted Secret): a read-only token. Never from the
URL, which is printed and stored in the artifact. SSH (deploy keys) is not supported: it
would need an SSH client in the image; HTTPS tokens cover GitHub, GitLab and Bitbucket.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from secret_contract import redact
from secret_contract.errors import InvalidInput, SecretContractError
from secret_contract.vault_auth import secret_input

USERNAME_ENV = "SECRET_CONTRACT_GIT_USERNAME"
PASSWORD_ENV = "SECRET_CONTRACT_GIT_PASSWORD"  # noqa: S105 - the name of a variable
# Every variable that carries a git credential (the password also as a file, as secret_input reads it).
CREDENTIAL_ENVS = (USERNAME_ENV, PASSWORD_ENV, f"{PASSWORD_ENV}_FILE")


class CloneFailed(SecretContractError):
    """The repository could not be cloned."""


@dataclass(frozen=True)
class Checkout:
    """A cloned tree and where it came from, as Flux names it."""

    directory: str
    source: str  # the URL, without credentials
    revision: str  # `<ref>@sha1:<commit>`, the form Flux's GitRepository uses
    committed: int  # the commit's time (seconds since the epoch)


def clone(url: str, ref: str, into: str, env: Mapping[str, str], insecure: bool = False) -> Checkout:
    """Clone the branch or tag `ref` of `url` into the empty directory `into`. Plain-text
    transports (http://, git://) only with `insecure`: they carry credentials in the clear and
    let anyone on the path change the contracts that get built."""
    parts = urlsplit(url)
    if parts.scheme in ("ssh", "git+ssh", "ssh+git") or (not parts.scheme and "@" in url and ":" in url):
        raise InvalidInput("--git: SSH is not supported (the publisher has no SSH client): use https:// with a token")
    if parts.username or parts.password:
        raise InvalidInput(f"--git: give credentials in {USERNAME_ENV} and {PASSWORD_ENV}(_FILE), not in the URL")
    if parts.scheme in ("http", "git") and not insecure:
        raise InvalidInput(f"--git: {parts.scheme}:// is not encrypted: use https://, or --insecure for a local server")
    if parts.scheme not in ("https", "http", "git", "file", ""):
        raise InvalidInput(f"--git: unsupported URL scheme '{parts.scheme}' (use https://)")
    if not ref or ref.startswith("-"):
        raise InvalidInput("--ref: expected a branch or tag name")
    password, problem = secret_input(env, PASSWORD_ENV)
    if problem:
        raise InvalidInput(problem)
    username = env.get(USERNAME_ENV, "").strip()
    if password and not username:
        raise InvalidInput(f"{PASSWORD_ENV} is set: set {USERNAME_ENV} too")
    # Only HTTP carries a username and password; git:// and local paths take none.
    over_http = parts.scheme in ("http", "https")
    credentials = {"username": username, "password": password} if password and over_http else {}

    from dulwich import porcelain  # only `publish --git` needs it

    progress = io.BytesIO()  # dulwich reports progress on a stream: keep it off the user's stderr
    try:
        repo = porcelain.clone(url, into, depth=1, branch=ref, checkout=True, errstream=progress, **credentials)
    except Exception as exc:  # dulwich raises many kinds (protocol, HTTP, missing ref)
        held = redact.basic_forms(username, password) if password else []
        raise CloneFailed(f"cloning {url} at {ref} failed: {redact.reason(exc, held)}") from None
    from dulwich.objects import Commit, Tag

    with repo:
        head = repo[repo.head()]
        while isinstance(head, Tag):  # an annotated tag: the commit it points at
            head = repo[head.object[1]]
        if not isinstance(head, Commit):
            raise CloneFailed(f"{url} at {ref} is not a commit")
        commit = head.id.decode()
        committed = int(head.commit_time)
    return Checkout(into, url, f"{ref}@sha1:{commit}", committed)
