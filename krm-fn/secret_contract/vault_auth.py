"""How the function gets its Vault token: a static token, or a login with an auth method.

Selected by SECRET_CONTRACT_AUTH_METHOD (token, approle, jwt, kubernetes, userpass, cert). Every
credential can come from an environment variable or from a file named by the same variable
with `_FILE` appended (for mounted secrets); giving both is an error. Nothing here talks to
Vault: it turns the environment into a `Credentials` value, or into problems to report.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

METHOD_ENV = "SECRET_CONTRACT_AUTH_METHOD"
MOUNT_ENV = "SECRET_CONTRACT_AUTH_MOUNT"
ROLE_ENV = "SECRET_CONTRACT_AUTH_ROLE"
TOKEN_FILE_ENV = "SECRET_CONTRACT_TOKEN_FILE"
# Names the project file when VAULT_ADDR came from it (set by `project.Project.environment`).
ADDR_FROM_ENV = "SECRET_CONTRACT_VAULT_ADDR_FROM"
ROLE_ID_ENV = "SECRET_CONTRACT_AUTH_ROLE_ID"
SECRET_ID_ENV = "SECRET_CONTRACT_AUTH_SECRET_ID"
JWT_ENV = "SECRET_CONTRACT_AUTH_JWT"
USERNAME_ENV = "SECRET_CONTRACT_AUTH_USERNAME"
PASSWORD_ENV = "SECRET_CONTRACT_AUTH_PASSWORD"
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"

METHODS = ("token", "approle", "jwt", "kubernetes", "userpass", "cert")
# A token is sent as an HTTP header: visible ASCII only (Vault's are `hvs.…`, `s.…`, `b.…`).
TOKEN_SHAPE = re.compile(r"[\x21-\x7e]{1,4096}")


def token_problem(token: str) -> str | None:
    """Why `token` cannot be sent to Vault (never quoting it), or None."""
    if "\n" in token or "\r" in token:
        return "it has more than one line"
    if not TOKEN_SHAPE.fullmatch(token):
        return "it contains spaces, control or non-ASCII characters"
    return None


@dataclass(frozen=True)
class Login:
    """A login request: POST /v1/auth/{mount}/login[/{username}] with `body`."""

    method: str
    mount: str
    body: Mapping[str, str] = field(repr=False)
    username: str = ""

    @property
    def path(self) -> str:
        suffix = f"/{self.username}" if self.username else ""
        return f"/v1/auth/{self.mount}/login{suffix}"

    def describe(self) -> str:
        return f"{self.method} login at auth/{self.mount}"


@dataclass(frozen=True)
class Credentials:
    token: str | None = field(default=None, repr=False)
    login: Login | None = None
    problems: tuple[str, ...] = ()


def from_env(env: Mapping[str, str]) -> Credentials:
    method = env.get(METHOD_ENV, "").strip().lower() or "token"
    if method not in METHODS:
        return Credentials(problems=(f"{METHOD_ENV} must be one of {', '.join(METHODS)}, not '{method}'",))
    if method == "token":
        return _token(env)
    mount = env.get(MOUNT_ENV, "").strip().strip("/") or method
    problems: list[str] = []

    def need(name: str, default_file: str | None = None) -> str:
        value, problem = secret_input(env, name, default_file)
        if problem:
            problems.append(problem)
        elif value is None:
            problems.append(f"{method} login needs {name} (or {name}_FILE)")
        return value or ""

    def plain(name: str) -> str:
        value = env.get(name, "").strip()
        if not value:
            problems.append(f"{method} login needs {name}")
        return value

    login: Login | None = None
    if method == "approle":
        login = Login(method, mount, {"role_id": need(ROLE_ID_ENV), "secret_id": need(SECRET_ID_ENV)})
    elif method == "jwt":
        login = Login(method, mount, {"role": plain(ROLE_ENV), "jwt": need(JWT_ENV)})
    elif method == "kubernetes":
        login = Login(method, mount, {"role": plain(ROLE_ENV), "jwt": need(JWT_ENV, SERVICE_ACCOUNT_TOKEN)})
    elif method == "cert":
        # The TLS client certificate (VAULT_CLIENT_CERT/KEY) is the credential; a role name is optional.
        if not env.get("VAULT_CLIENT_CERT") or not env.get("VAULT_CLIENT_KEY"):
            problems.append("cert login needs VAULT_CLIENT_CERT and VAULT_CLIENT_KEY")
        role = env.get(ROLE_ENV, "").strip()
        login = Login(method, mount, {"name": role} if role else {})
    elif method == "userpass":
        username = plain(USERNAME_ENV)
        login = Login(method, mount, {"password": need(PASSWORD_ENV)}, username=username)
    return Credentials(login=None if problems else login, problems=tuple(problems))


def _token(env: Mapping[str, str]) -> Credentials:
    """VAULT_TOKEN, else the file SECRET_CONTRACT_TOKEN_FILE names, else ~/.vault-token."""
    token = env.get("VAULT_TOKEN", "").strip()
    source = "VAULT_TOKEN"
    if not token:
        named = env.get(TOKEN_FILE_ENV, "").strip()
        home_file = str(Path(env.get("HOME") or os.path.expanduser("~"), ".vault-token"))
        if named:
            text, problem = _read(named, TOKEN_FILE_ENV)
        else:
            if not os.path.exists(home_file):
                return Credentials()  # no token anywhere: the caller says how to give one
            chosen_by = env.get(ADDR_FROM_ENV, "").strip()
            if chosen_by:
                return Credentials(
                    problems=(
                        f"the Vault address comes from {chosen_by} (repository content), and ~/.vault-token is not "
                        "sent to an address a repository chose: set VAULT_ADDR in the environment if you trust "
                        "it, or give a token with VAULT_TOKEN",
                    )
                )
            text, problem = _read(home_file, "~/.vault-token")
        if problem:
            return Credentials(problems=(problem,))
        token, source = text or "", named or home_file
    problem = token_problem(token)
    if problem:
        return Credentials(problems=(f"the token from {source} cannot be used: {problem}",))
    return Credentials(token=token)


def secret_input(env: Mapping[str, str], name: str, default_file: str | None = None) -> tuple[str | None, str | None]:
    """(value, problem) for a credential given as NAME or as a file NAME_FILE."""
    direct = env.get(name, "").strip()
    file_name = env.get(f"{name}_FILE", "").strip()
    if direct and file_name:
        return None, f"set either {name} or {name}_FILE, not both"
    if direct:
        return direct, None
    path = file_name or default_file
    if not path:
        return None, None
    return _read(path, f"{name}_FILE" if file_name else f"{name}_FILE (default {path})")


def _read(path: str, source: str) -> tuple[str | None, str | None]:
    try:
        text = Path(path).read_text("utf-8").strip()
    except PermissionError:
        return None, f"{source}: {path} exists but cannot be read by uid {os.getuid()} (check its owner and mode)"
    except UnicodeDecodeError:
        return None, f"{source}: {path} is not UTF-8 text"
    except OSError as exc:
        return None, f"{source}: cannot read {path} ({exc.strerror or type(exc).__name__})"
    if not text:
        return None, f"{source}: {path} is empty"
    return text, None
