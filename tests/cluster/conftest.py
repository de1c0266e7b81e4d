"""The local control plane for the cluster tests: kube-apiserver and kube-controller-manager
(built from k8s.io/kubernetes), etcd (Debian), ESO and Flux's source- and kustomize-controller
(built from their modules), OpenBao and Debian's docker-registry, all started by cluster/up.sh.

A healthy cluster that is already running (`make cluster-up`) is reused and left running;
otherwise the session starts one and stops it at the end (CLUSTER_KEEP=1 keeps it).
Every wait is bounded and names what did not become ready, with the tail of the relevant log."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import pytest

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
CLUSTER_DIR = Path(os.environ.get("CLUSTER_DIR", ROOT / ".cluster"))
# Captured at import, before the suite's autouse fixture points HOME at a temporary directory:
# the build cache must stay where cluster/build.sh put it.
CACHE = os.environ.get("SECRET_CONTRACT_CACHE") or str(Path.home() / ".cache" / "secret-contract")
SCRIPT_ENV = {**os.environ, "SECRET_CONTRACT_CACHE": CACHE, "CLUSTER_DIR": str(CLUSTER_DIR)}
WAIT = float(os.environ.get("CLUSTER_TEST_WAIT", "180"))
# Where `record` writes (`make bench` names a file of its own: stopping a control plane the tests
# started removes CLUSTER_DIR).
TIMINGS = Path(os.environ.get("CLUSTER_TIMINGS", CLUSTER_DIR / "timings.json"))


def record(name: str, seconds: float, what: str) -> None:
    """Merge one timing into TIMINGS (what `make bench` reports), and say it."""
    found = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    found[name] = round(seconds, 2)
    TIMINGS.parent.mkdir(exist_ok=True)
    TIMINGS.write_text(json.dumps(found, indent=2, sort_keys=True) + "\n")
    print(f"{what}: {seconds:.1f} s")


def stack_files(namespace: str, contract: str) -> dict[str, str]:
    """A stack as a platform lays it out: its namespace, and its contract as a generator."""
    return {
        "kustomization.yaml": "resources:\n  - namespace.yaml\ngenerators:\n  - hostk8s.secrets.yaml\n",
        "namespace.yaml": f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n",
        "hostk8s.secrets.yaml": contract,
    }


def write_files(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


def flux_objects(name: str, registry: str, repository: str, tag: str, namespace: str = "flux-system") -> str:
    """An OCIRepository and a Kustomization (`prune: true`) over one published artifact."""
    return f"""\
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: {name}
  namespace: {namespace}
spec:
  interval: 1m
  url: oci://{registry}/{repository}
  insecure: true
  ref:
    tag: {tag}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: {name}
  namespace: {namespace}
spec:
  interval: 10m
  sourceRef:
    kind: OCIRepository
    name: {name}
  path: ./
  prune: true
  wait: false
  timeout: 2m
"""


def kustomize_path() -> str:
    """The folder of the standalone kustomize built from sigs.k8s.io/kustomize/kustomize/v5, when
    built (.cluster/env's KUSTOMIZE, else cluster/build.sh --print-dir)."""
    env_file = CLUSTER_DIR / "env"
    named = read_env(env_file).get("KUSTOMIZE", "") if env_file.exists() else ""
    if named and Path(named).is_file():
        return str(Path(named).parent)
    out = subprocess.run(
        [str(CLUSTER / "build.sh"), "--print-dir", "kustomize"],
        env=SCRIPT_ENV,
        text=True,
        capture_output=True,
        check=False,
    ).stdout.strip()
    return out if out and (Path(out) / "kustomize").is_file() else ""


def tool_env(cluster_env: dict[str, str]) -> dict[str, str]:
    """What a user's shell passes to secret-contract here: OpenBao's address and token, and the
    standalone kustomize first on PATH (publish builds with it when it is there)."""
    env = {"VAULT_ADDR": cluster_env["VAULT_ADDR"], "VAULT_TOKEN": cluster_env["VAULT_TOKEN"]}
    kustomize = kustomize_path()
    if kustomize:
        env["PATH"] = os.pathsep.join([kustomize, str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return env


def read_env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            env[key] = value.strip('"')
    return env


def pinned_eso_releases() -> list[str]:
    """The ESO releases the cluster builds and runs (cluster/versions.env: ESO_V0, ESO_CURRENT)."""
    pins = {}
    for line in (CLUSTER / "versions.env").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "=" in line:
            key, value = line.split("=", 1)
            pins[key] = value.strip().strip('"')
    return [pins[k].rsplit("@", 1)[1] for k in ("ESO_V0", "ESO_CURRENT")]


def script(name: str, *args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLUSTER / name), *args], env=SCRIPT_ENV, text=True, capture_output=True, timeout=timeout, check=False
    )


def log_tail(name: str, lines: int = 30) -> str:
    path = CLUSTER_DIR / "logs" / f"{name}.log"
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return f"--- last {lines} lines of {path}:\n" + "\n".join(text[-lines:])


@dataclass
class Cluster:
    env: dict[str, str]

    @property
    def kubectl_path(self) -> str:
        return self.env["KUBECTL"]

    @property
    def registry(self) -> str:
        return self.env["REGISTRY"]

    @property
    def eso_version(self) -> str:
        return read_env(CLUSTER_DIR / "env")["ESO_VERSION"]

    @property
    def eso_releases(self) -> list[str]:
        return self.env["ESO_RELEASES"].split()

    def vault(self) -> hvac.Client:
        return hvac.Client(url=self.env["VAULT_ADDR"], token=self.env["VAULT_TOKEN"])

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [self.kubectl_path, "--kubeconfig", self.env["KUBECONFIG"], *args],
            input=stdin,
            text=True,
            capture_output=True,
            timeout=120,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def get(self, *args: str) -> dict[str, Any]:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def exists(self, *args: str) -> bool:
        return self.kubectl("get", *args, "--ignore-not-found", "-o", "name", check=False).stdout.strip() != ""

    def apply(self, manifest: str) -> None:
        self.kubectl("apply", "--server-side", "--field-manager=secret-contract-tests", "-f", "-", stdin=manifest)

    def wait(self, what: str, ready: Callable[[], Any], logs: tuple[str, ...], timeout: float = WAIT) -> Any:
        """Poll `ready` until it returns something truthy; fail naming `what` with the logs' tails."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = ready()
            except (AssertionError, KeyError, ValueError) as exc:
                last = exc
            if last and not isinstance(last, Exception):
                return last
            time.sleep(0.5)
        tails = "\n".join(log_tail(name) for name in logs)
        pytest.fail(f"{what} did not become ready within {timeout:.0f}s (last: {last!r})\n{tails}")

    def condition(self, kind: str, name: str, namespace: str | None, cond: str = "Ready") -> dict[str, Any] | None:
        args = [kind, name] + (["-n", namespace] if namespace else [])
        if not self.exists(*args):
            return None
        # Right after creation an object may have no status yet, or `conditions: null`.
        for c in (self.get(*args).get("status") or {}).get("conditions") or []:
            if c.get("type") == cond:
                return c
        return None

    def is_true(self, kind: str, name: str, namespace: str | None, cond: str = "Ready") -> bool:
        c = self.condition(kind, name, namespace, cond)
        return bool(c and c.get("status") == "True")

    def secret_data(self, name: str, namespace: str) -> dict[str, bytes]:
        data = self.get("secret", name, "-n", namespace).get("data") or {}
        return {k: base64.b64decode(v) for k, v in data.items()}

    def reconcile(self, kind: str, name: str, namespace: str, logs: tuple[str, ...]) -> None:
        """Ask a Flux object to reconcile now (`reconcile.fluxcd.io/requestedAt`, what `flux
        reconcile` sets) and wait until its controller has handled that request."""
        token = f"{time.time():.6f}"
        self.kubectl("annotate", kind, name, "-n", namespace, f"reconcile.fluxcd.io/requestedAt={token}", "--overwrite")
        self.wait(
            f"{kind} {namespace}/{name} handling reconcile request {token}",
            lambda: (self.get(kind, name, "-n", namespace).get("status") or {}).get("lastHandledReconcileAt") == token,
            logs,
        )

    def use_eso(self, version: str) -> None:
        """Make `version` the running ESO (cluster/eso.sh: stop one, apply the other's CRDs, start it)."""
        if self.eso_version == version:
            return
        ran = script("eso.sh", version)
        if ran.returncode != 0:
            pytest.fail(f"switching ESO to {version} failed:\n{ran.stderr[-4000:]}\n{log_tail('eso')}")


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    env_file = CLUSTER_DIR / "env"
    ran = script("up.sh")
    if ran.returncode != 0:
        pytest.fail(f"cluster/up.sh failed ({ran.returncode}):\n{ran.stderr[-6000:]}")
    reused = "already running" in ran.stderr
    cluster = Cluster(read_env(env_file))
    try:
        yield cluster
    finally:
        if not reused and os.environ.get("CLUSTER_KEEP") != "1":
            script("down.sh", timeout=120)
