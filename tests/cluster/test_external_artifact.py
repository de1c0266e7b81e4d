"""Flux without a publish step: a commit pushed to a git repository (served by git's own smart
HTTP server, `git http-backend`; Flux's GitRepository accepts only http(s) and ssh URLs, not
`git://`), fetched by the real source-controller, rendered by secret-contract-controller (a
local process with its ServiceAccount's token, logging in to OpenBao through Kubernetes auth),
applied by the real kustomize-controller from the ExternalArtifact, made into Secrets by ESO.

The controller runs with leader election, as its Deployment does, against the control plane of
`make cluster-up`; its storage directory outlives its process, as a PersistentVolume would."""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from builders import git
from faults import DROP, fault_proxy

from .conftest import ROOT, Cluster, record, stack_files, write_files

MANIFESTS = ROOT / "kustomize-examples" / "flux" / "external-artifact"
NS = "flux-system"
SA = "secret-contract-controller"
LOGS = ("source-controller", "kustomize-controller", "eso")
BIN = Path(sys.executable).parent


# --- a git server ---------------------------------------------------------------------------------


def git_http_server(root: Path) -> ThreadingHTTPServer:
    """git's smart HTTP protocol through `git http-backend` (CGI), read-only."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def _cgi(self) -> None:
            path, _, query = self.path.partition("?")
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            env = {
                "PATH": os.environ["PATH"],
                "GIT_PROJECT_ROOT": str(root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                "REMOTE_ADDR": "127.0.0.1",
            }
            out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60).stdout
            split = out.find(b"\r\n\r\n")
            head, payload = (out[:split], out[split + 4 :]) if split >= 0 else out.split(b"\n\n", 1)
            status, headers = 200, []
            for line in head.decode().splitlines():
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _cgi

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


def contract(namespace: str, *names: str) -> str:
    secrets_yaml = "".join(
        f"""    - name: {name}
      namespace: {namespace}
      data:
        - key: username
          value: {name}-user
        - key: password
          generate: password
          length: 24
"""
        for name in names
    )
    return f"""apiVersion: hostk8s.io/v1
kind: SecretContract
metadata:
  name: {namespace}
spec:
  secrets:
{secrets_yaml}"""


@dataclass
class Repository:
    bare: Path
    work: Path
    url: str
    namespace: str

    def commit(self, message: str, files: dict[str, str]) -> float:
        """Write, commit and push; the time of the push."""
        write_files(self.work, files)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        git(self.work, "push", "-q", "origin", "HEAD:main")
        return time.monotonic()


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repository]:
    base = tmp_path_factory.mktemp("git")
    bare, work = base / "platform.git", base / "work"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    git(work, "config", "user.email", "ci@example.com")
    git(work, "config", "user.name", "ci")
    git(work, "remote", "add", "origin", str(bare))
    server = git_http_server(base)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    namespace = "ea-" + secrets.token_hex(3)
    repo = Repository(bare, work, f"http://127.0.0.1:{server.server_address[1]}/platform.git", namespace)
    yield repo
    server.shutdown()


# --- the controller as its Deployment runs it --------------------------------------------------------


@dataclass
class Controller:
    cluster: Cluster
    storage: Path
    home: Path
    vault_addr: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.home / "controller.log"

    def start(self) -> None:
        env = {
            "PATH": f"{BIN}{os.pathsep}{Path(self.cluster.kubectl_path).parent}{os.pathsep}{os.environ['PATH']}",
            "HOME": str(self.home),
            "KUBECONFIG": str(self.home / "kubeconfig"),
            "VAULT_ADDR": self.vault_addr,
            "SECRET_CONTRACT_AUTH_METHOD": "kubernetes",
            "SECRET_CONTRACT_AUTH_MOUNT": self.cluster.env["VAULT_K8S_AUTH_PATH"],
            "SECRET_CONTRACT_AUTH_ROLE": SA,
            "SECRET_CONTRACT_AUTH_JWT_FILE": str(self.home / "vault-token"),
            "RUNTIME_NAMESPACE": NS,
        }
        self.process = subprocess.Popen(
            [
                str(BIN / "secret-contract-controller"),
                f"--storage-path={self.storage}",
                f"--storage-addr=127.0.0.1:{self.storage_port}",
                f"--storage-adv-addr=127.0.0.1:{self.storage_port}",
                f"--metrics-addr=127.0.0.1:{self.metrics_port}",
                "--leader-election-namespace=" + NS,
            ],
            env=env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )

    metrics_port: int = 0
    storage_port: int = 0

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def tail(self) -> str:
        try:
            return "--- controller log:\n" + "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])
        except OSError:
            return ""


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _kubeconfig(cluster: Cluster, token: str) -> str:
    ca = base64.b64encode(Path(cluster.env["KUBE_CA"]).read_bytes()).decode()
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {"server": cluster.env["KUBE_APISERVER"], "certificate-authority-data": ca},
                }
            ],
            "users": [{"name": SA, "user": {"token": token}}],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": SA}}],
            "current-context": "local",
        }
    )


@pytest.fixture(scope="module")
def vault_switch(cluster: Cluster) -> Iterator[tuple[str, list[bool]]]:
    """The controller's way to Vault, which a test can cut: (address, [down])."""
    down = [False]
    with fault_proxy(cluster.env["VAULT_ADDR"], lambda n, method, path: DROP if down[0] else None) as proxy:
        yield proxy.addr, down


@pytest.fixture(scope="module")
def controller(
    cluster: Cluster, vault_switch: tuple[str, list[bool]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Controller]:
    """The CRD and RBAC as shipped, the ServiceAccount's tokens (API and Vault audiences), its
    Vault role, and the controller process."""
    cluster.kubectl("apply", "--server-side", "-f", str(MANIFESTS / "crd.yaml"))
    rbac = subprocess.run(
        [cluster.kubectl_path, "kustomize", str(MANIFESTS)], capture_output=True, text=True, check=True
    ).stdout
    only = [
        d
        for d in rbac.split("\n---\n")
        if any(k in d for k in ("kind: ServiceAccount", "kind: ClusterRole", "kind: Role"))
    ]
    cluster.apply("\n---\n".join(only))
    cluster.wait(
        "the SecretContractRender CRD",
        lambda: cluster.is_true("crd", "secretcontractrenders.hostk8s.io", None, "Established"),
        (),
    )
    vault = cluster.vault()
    vault.write(
        f"auth/{cluster.env['VAULT_K8S_AUTH_PATH']}/role/{SA}",
        audience="vault",
        bound_service_account_names=SA,
        bound_service_account_namespaces=NS,
        token_policies="secret-contract",
        token_ttl="15m",
    )
    home = tmp_path_factory.mktemp("controller")
    api_token = cluster.kubectl("create", "token", SA, "-n", NS, "--duration=2h").stdout.strip()
    (home / "kubeconfig").write_text(_kubeconfig(cluster, api_token))
    (home / "vault-token").write_text(
        cluster.kubectl("create", "token", SA, "-n", NS, "--audience=vault", "--duration=2h").stdout.strip()
    )
    vault_addr, _ = vault_switch
    running = Controller(cluster, home / "data", home, vault_addr, metrics_port=_free_port(), storage_port=_free_port())
    running.start()
    yield running
    running.stop()


# --- helpers ----------------------------------------------------------------------------------------


def render_objects(repo: Repository, interval: str = "1h") -> str:
    return f"""\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: platform, namespace: {NS}}}
spec:
  interval: 5s
  url: {repo.url}
  ref: {{branch: main}}
---
apiVersion: hostk8s.io/v1alpha1
kind: SecretContractRender
metadata: {{name: platform, namespace: {NS}}}
spec:
  sourceRef: {{kind: GitRepository, name: platform}}
  path: ./apps/{repo.namespace}
  interval: {interval}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: platform, namespace: {NS}}}
spec:
  interval: 10m
  sourceRef: {{kind: ExternalArtifact, name: platform}}
  path: ./
  prune: true
  wait: false
  timeout: 2m
"""


def app_files(namespace: str, *names: str) -> dict[str, str]:
    return {
        f"apps/{namespace}/{name}": text for name, text in stack_files(namespace, contract(namespace, *names)).items()
    }


def artifact(cluster: Cluster) -> dict[str, Any]:
    found: dict[str, Any] = cluster.get("externalartifacts.source.toolkit.fluxcd.io", "platform", "-n", NS)
    return (found.get("status") or {}).get("artifact") or {}


def secret_matches_vault(cluster: Cluster, namespace: str, name: str) -> bool:
    if not cluster.exists("secret", name, "-n", namespace):
        return False
    stored = cluster.vault().secrets.kv.v2.read_secret_version(
        f"{namespace}/{name}", mount_point="secret", raise_on_deleted_version=True
    )
    wanted = {k: str(v).encode() for k, v in stored["data"]["data"].items()}
    return cluster.secret_data(name, namespace) == wanted


def wait_for_secrets(cluster: Cluster, controller: Controller, namespace: str, names: tuple[str, ...]) -> None:
    logs = (*LOGS,)
    for name in names:
        try:
            cluster.wait(
                f"Secret {namespace}/{name} equal to Vault",
                lambda n=name: secret_matches_vault(cluster, namespace, n),
                logs,
            )
        except BaseException:
            print(controller.tail())
            raise


# --- the tests, in order: each builds on the state the one before left ---------------------------------


def test_a_pushed_commit_reaches_the_cluster_as_secrets_holding_vaults_values(
    cluster: Cluster, controller: Controller, repository: Repository
) -> None:
    pushed = repository.commit("the app", app_files(repository.namespace, "db"))
    cluster.apply(render_objects(repository))
    wait_for_secrets(cluster, controller, repository.namespace, ("db",))
    what = "push to Secret through the ExternalArtifact route"
    record("external_artifact_push_to_secret_seconds", time.monotonic() - pushed, what)
    found = artifact(cluster)
    assert found["revision"] == f"latest@{found['digest']}" and found["digest"].startswith("sha256:")
    assert found["metadata"]["org.opencontainers.image.revision"].startswith("main@sha1:")
    assert found["url"].startswith("http://127.0.0.1:")
    with urllib.request.urlopen(found["url"]) as resp:  # noqa: S310 - the controller on loopback
        served = resp.read()
    import hashlib

    assert "sha256:" + hashlib.sha256(served).hexdigest() == found["digest"]
    render = cluster.get("secretcontractrenders.hostk8s.io", "platform", "-n", NS)
    assert render["status"]["artifact"]["revision"] == found["revision"]
    assert cluster.is_true("secretcontractrenders.hostk8s.io", "platform", NS)
    kustomization = cluster.get("kustomizations.kustomize.toolkit.fluxcd.io", "platform", "-n", NS)
    assert kustomization["status"]["lastAppliedRevision"] == found["revision"]
    assert kustomization["status"].get("lastAppliedOriginRevision", "").startswith("main@sha1:")
    # No value, no token in anything the controller said.
    stored = cluster.vault().secrets.kv.v2.read_secret_version(
        f"{repository.namespace}/db", mount_point="secret", raise_on_deleted_version=True
    )
    said = (
        controller.log.read_text()
        + json.dumps(render)
        + cluster.kubectl("get", "events", "-n", NS, "-o", "json").stdout
    )
    assert stored["data"]["data"]["password"] not in said
    assert (controller.home / "vault-token").read_text() not in said
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{controller.metrics_port}/metrics").read().decode()
    assert "secret_contract_reconciles_total" in metrics and "secret_contract_vault_writes_total" in metrics


def test_a_new_secret_arrives_the_same_way_and_an_unrelated_commit_makes_no_new_revision(
    cluster: Cluster, controller: Controller, repository: Repository
) -> None:
    before = artifact(cluster)["revision"]
    repository.commit("another secret", app_files(repository.namespace, "db", "cache"))
    wait_for_secrets(cluster, controller, repository.namespace, ("db", "cache"))
    grown = artifact(cluster)
    assert grown["revision"] != before
    origin = grown["metadata"]["org.opencontainers.image.revision"]
    repository.commit("docs only", {"README.md": "nothing the build sees\n"})
    source_head = subprocess.run(
        ["git", "-C", str(repository.work), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    cluster.wait(
        "the render of the docs-only commit",
        lambda: (
            cluster.get("secretcontractrenders.hostk8s.io", "platform", "-n", NS)["status"]
            .get("lastRenderedSourceRevision", "")
            .endswith(source_head)
        ),
        LOGS,
    )
    after = artifact(cluster)
    assert after["revision"] == grown["revision"] and after["metadata"]["org.opencontainers.image.revision"] == origin


def test_vault_down_keeps_the_last_artifact_served_and_it_recovers_without_a_restart(
    cluster: Cluster, controller: Controller, repository: Repository, vault_switch: tuple[str, list[bool]]
) -> None:
    _, down = vault_switch
    good = artifact(cluster)
    down[0] = True
    try:
        repository.commit("a third secret while Vault is down", app_files(repository.namespace, "db", "cache", "queue"))
        reason = cluster.wait(
            "Ready=False on the render",
            lambda: (
                (c := cluster.condition("secretcontractrenders.hostk8s.io", "platform", NS))
                and c["status"] == "False"
                and c
            ),
            LOGS,
        )
        assert reason["reason"] == "BuildFailed" and "Vault" in reason["message"]
        assert artifact(cluster)["revision"] == good["revision"]
        with urllib.request.urlopen(good["url"]) as resp:  # noqa: S310 - loopback
            assert resp.status == 200
        kustomization = cluster.get("kustomizations.kustomize.toolkit.fluxcd.io", "platform", "-n", NS)
        assert kustomization["status"]["lastAppliedRevision"] == good["revision"]
        assert cluster.exists("secret", "cache", "-n", repository.namespace)
    finally:
        down[0] = False
    wait_for_secrets(cluster, controller, repository.namespace, ("queue",))
    assert controller.process is not None and controller.process.poll() is None  # the same process


def test_a_restart_serves_the_same_revision_and_deleting_the_render_cleans_up(
    cluster: Cluster, controller: Controller, repository: Repository
) -> None:
    before = artifact(cluster)
    stored = controller.storage / before["path"]
    assert stored.is_file()
    controller.stop()
    time.sleep(1)
    controller.start()
    cluster.wait("the restarted controller serving the stored archive", lambda: _served(before["url"]), LOGS)
    time.sleep(3)
    assert artifact(cluster)["revision"] == before["revision"]
    cluster.kubectl("delete", "secretcontractrenders.hostk8s.io", "platform", "-n", NS, "--wait=true", "--timeout=60s")
    cluster.wait(
        "the ExternalArtifact's removal",
        lambda: not cluster.exists("externalartifacts.source.toolkit.fluxcd.io", "platform", "-n", NS),
        LOGS,
    )
    assert not (controller.storage / "externalartifact" / NS / "platform").exists()


def _served(url: str) -> bool:
    try:
        with urllib.request.urlopen(url) as resp:  # noqa: S310 - loopback
            return resp.status == 200
    except OSError:
        return False


def test_the_controllers_service_account_may_do_what_it_needs_and_nothing_more(
    cluster: Cluster, controller: Controller
) -> None:
    who = f"--as=system:serviceaccount:{NS}:{SA}"

    def can(verb: str, resource: str, namespace: str = NS) -> bool:
        ran = cluster.kubectl("auth", "can-i", verb, resource, "-n", namespace, who, check=False)
        return ran.stdout.strip() == "yes"

    needed = [
        ("watch", "secretcontractrenders.hostk8s.io"),
        ("patch", "secretcontractrenders.hostk8s.io/status"),
        ("list", "gitrepositories.source.toolkit.fluxcd.io"),
        ("watch", "ocirepositories.source.toolkit.fluxcd.io"),
        ("create", "externalartifacts.source.toolkit.fluxcd.io"),
        ("patch", "externalartifacts.source.toolkit.fluxcd.io/status"),
        ("delete", "externalartifacts.source.toolkit.fluxcd.io"),
        ("create", "events"),
        ("update", "leases.coordination.k8s.io"),
    ]
    refused = [
        ("get", "secrets"),
        ("list", "secrets"),
        ("create", "secretcontractrenders.hostk8s.io"),
        ("delete", "secretcontractrenders.hostk8s.io"),
        ("patch", "gitrepositories.source.toolkit.fluxcd.io"),
        ("patch", "kustomizations.kustomize.toolkit.fluxcd.io"),
        ("create", "externalsecrets.external-secrets.io"),
        ("create", "deployments.apps"),
        ("create", "serviceaccounts/token"),
    ]
    assert [x for x in needed if not can(*x)] == []
    assert [x for x in refused if can(*x)] == []
    assert not can("update", "leases.coordination.k8s.io", "default")  # its lease, in its own namespace only
