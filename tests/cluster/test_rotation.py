"""Rotation and no-ops reach the cluster as they should: a stack published with `secret-contract
publish` and applied by Flux; `secret-contract rotate` writes a new KV version, a forced ESO
refresh (`force-sync` annotation) puts the new value in the Secret; a build and publish of the
same commit changes nothing: the OCIRepository's artifact revision and the Secret's
resourceVersion stay. Records publish → Secret and rotate → new value in .cluster/timings.json."""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from builders import Ran, commit_tree
from conftest import run as run_cli

from .conftest import Cluster, flux_objects, record, stack_files, tool_env, write_files

LOGS = ("source-controller", "kustomize-controller", "eso")
FLUX_NS = "flux-system"


def contract(namespace: str) -> str:
    return f"""\
apiVersion: hostk8s.io/v1
kind: SecretContract
metadata:
  name: {namespace}
spec:
  secrets:
    - name: app-credentials
      namespace: {namespace}
      data:
        - key: username
          value: app
        - key: password
          generate: password
          length: 24
"""


@pytest.fixture
def deployed(cluster: Cluster, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    namespace = "rot-" + secrets.token_hex(3)
    repo = tmp_path / "repo"
    write_files(repo / "app", stack_files(namespace, contract(namespace)))
    commit_tree(repo, "the app")
    yield namespace, repo / "app"
    cluster.kubectl("delete", "kustomization", namespace, "-n", FLUX_NS, "--ignore-not-found", "--wait=true")
    cluster.kubectl("delete", "ocirepository", namespace, "-n", FLUX_NS, "--ignore-not-found")
    cluster.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")


def cli(cluster: Cluster, *args: str) -> Ran:
    ran = run_cli([sys.executable, "-m", "secret_contract", *args], env=tool_env(cluster.env))
    assert ran.returncode == 0, ran.stderr
    return ran


def vault_password(cluster: Cluster, namespace: str) -> tuple[bytes, int]:
    stored = cluster.vault().secrets.kv.v2.read_secret_version(
        f"{namespace}/app-credentials", mount_point="secret", raise_on_deleted_version=True
    )
    return str(stored["data"]["data"]["password"]).encode(), int(stored["data"]["metadata"]["version"])


def secret_password(cluster: Cluster, namespace: str) -> bytes | None:
    if not cluster.exists("secret", "app-credentials", "-n", namespace):
        return None
    return cluster.secret_data("app-credentials", namespace).get("password")


def settle(cluster: Cluster, namespace: str, quiet: float = 4.0) -> None:
    """Wait until neither the ExternalSecret nor its Secret changes for `quiet` seconds."""

    def versions() -> tuple[str, str]:
        return (
            cluster.get("externalsecret", "app-credentials", "-n", namespace)["metadata"]["resourceVersion"],
            cluster.get("secret", "app-credentials", "-n", namespace)["metadata"]["resourceVersion"],
        )

    last = {"versions": versions()}
    since = {"at": time.monotonic()}

    def quiet_now() -> bool:
        now = versions()
        if now != last["versions"]:
            last["versions"], since["at"] = now, time.monotonic()
        return time.monotonic() - since["at"] >= quiet

    cluster.wait(f"ExternalSecret and Secret {namespace}/app-credentials unchanged for {quiet:.0f}s", quiet_now, LOGS)


def test_rotate_reaches_the_secret_on_a_forced_refresh_and_a_no_op_publish_changes_nothing(
    cluster: Cluster, deployed: tuple[str, Path]
) -> None:
    namespace, stack = deployed
    url = f"oci://{cluster.registry}/rotation/{namespace}:v1"

    started = time.monotonic()
    published = cli(cluster, "publish", str(stack), url, "--insecure")
    cluster.apply(flux_objects(namespace, cluster.registry, f"rotation/{namespace}", "v1"))
    first, version = vault_password(cluster, namespace)
    cluster.wait(
        f"Secret {namespace}/app-credentials holding Vault's value",
        lambda: secret_password(cluster, namespace) == first,
        LOGS,
    )
    what = f"publish -> Secret present (Flux reconcile + ESO {cluster.eso_version})"
    record("publish_to_secret_seconds", time.monotonic() - started, what)

    # rotate: a new KV version; ESO sees it on a forced refresh (refreshInterval is 1h).
    started = time.monotonic()
    rotated = cli(cluster, "rotate", str(stack), "--secret", f"{namespace}/app-credentials", "--key", "password")
    new, new_version = vault_password(cluster, namespace)
    assert new != first and new_version == version + 1
    cluster.kubectl(
        "annotate", "externalsecret", "app-credentials", "-n", namespace, f"force-sync={time.time():.6f}", "--overwrite"
    )
    cluster.wait(
        f"the rotated value in Secret {namespace}/app-credentials (force-sync, ESO {cluster.eso_version})",
        lambda: secret_password(cluster, namespace) == new,
        LOGS,
    )
    what = f"rotate -> new Secret value (force-sync, ESO {cluster.eso_version})"
    record("rotate_to_secret_seconds", time.monotonic() - started, what)
    for said in (published, rotated):
        text = said.stdout + said.stderr
        assert first.decode() not in text and new.decode() not in text
        assert cluster.env["VAULT_TOKEN"] not in text

    # Flux's next reconcile takes back what kubectl changed: kustomize-controller takes over the
    # fields of every field manager named kubectl* (here kubectl-annotate) and applies its own,
    # so the force-sync annotation goes. (ESO v0.20.4 also rewrites refreshInterval "1h" as
    # "1h0m0s" once, when it adds its finalizer; Flux sets it back on that reconcile.)
    cluster.reconcile("kustomization", namespace, FLUX_NS, LOGS)
    es = cluster.get("externalsecret", "app-credentials", "-n", namespace)
    assert "force-sync" not in es["metadata"].get("annotations", {})
    assert es["spec"]["refreshInterval"] == "1h"
    settle(cluster, namespace)
    assert secret_password(cluster, namespace) == new

    # A no-op: the same commit built and published again.
    source = cluster.get("ocirepository", namespace, "-n", FLUX_NS)["status"]["artifact"]
    kustomization = cluster.get("kustomization", namespace, "-n", FLUX_NS)["status"]
    secret_version = cluster.get("secret", "app-credentials", "-n", namespace)["metadata"]["resourceVersion"]
    es_version = cluster.get("externalsecret", "app-credentials", "-n", namespace)["metadata"]["resourceVersion"]
    again = cli(cluster, "publish", str(stack), url, "--insecure")
    assert again.stdout == published.stdout  # the same digest
    assert vault_password(cluster, namespace) == (new, new_version)  # the build wrote nothing
    cluster.reconcile("ocirepository", namespace, FLUX_NS, LOGS)
    cluster.reconcile("kustomization", namespace, FLUX_NS, LOGS)
    after = cluster.get("ocirepository", namespace, "-n", FLUX_NS)["status"]["artifact"]
    assert (after["revision"], after["digest"]) == (source["revision"], source["digest"])
    assert (
        cluster.get("kustomization", namespace, "-n", FLUX_NS)["status"]["lastAppliedRevision"]
        == (kustomization["lastAppliedRevision"])
    )
    assert cluster.is_true("kustomization", namespace, FLUX_NS)
    es_after = cluster.get("externalsecret", "app-credentials", "-n", namespace)["metadata"]["resourceVersion"]
    assert es_after == es_version
    assert cluster.get("secret", "app-credentials", "-n", namespace)["metadata"]["resourceVersion"] == secret_version
    assert secret_password(cluster, namespace) == new
