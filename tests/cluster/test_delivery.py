"""ESO delivers what Vault holds: the sample app built with the function and published with
`secret-contract publish` to the registry, pulled by Flux's source-controller (OCIRepository)
and applied by its kustomize-controller (Kustomization), reconciled by ESO into Secrets whose
data equals Vault's values byte for byte. Once for each ESO release built."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from builders import commit_tree
from conftest import run as run_cli  # the suite's tests/conftest.py: a user's shell environment

from .conftest import CLUSTER_DIR, ROOT, Cluster, flux_objects, pinned_eso_releases, script, tool_env

EXAMPLES = ROOT / "kustomize-examples"
LOGS = ("source-controller", "kustomize-controller", "eso")


def vault_value(cluster: Cluster, path: str, prop: str) -> bytes:
    data = cluster.vault().secrets.kv.v2.read_secret_version(path, mount_point="secret", raise_on_deleted_version=True)
    return str(data["data"]["data"][prop]).encode()


@pytest.fixture
def sample_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES / "sample-app", repo / "app")
    commit_tree(repo, "app")
    return repo


@pytest.mark.parametrize("eso", pinned_eso_releases())
def test_flux_applies_the_published_sample_app_and_eso_delivers_vaults_values(
    cluster: Cluster, sample_repo: Path, eso: str
) -> None:
    if eso not in cluster.eso_releases:
        pytest.fail(f"ESO {eso} is not among the releases this cluster runs ({cluster.eso_releases})")
    cluster.use_eso(eso)
    name, tag = "sample-app", eso.replace(".", "-")
    env = tool_env(cluster.env)  # publish builds with standalone kustomize when it is on PATH
    ran = run_cli(
        [sys.executable, "-m", "secret_contract", "publish", str(sample_repo / "app"),
         f"oci://{cluster.registry}/platform/{name}:{tag}", "--insecure"],
        env=env,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr

    cluster.apply(flux_objects(name, cluster.registry, f"platform/{name}", tag))
    try:
        cluster.wait(
            f"OCIRepository flux-system/{name} (Ready)",
            lambda: cluster.is_true("ocirepository", name, "flux-system"),
            LOGS,
        )
        cluster.wait(
            f"Kustomization flux-system/{name} (Ready)",
            lambda: cluster.is_true("kustomization", name, "flux-system"),
            LOGS,
        )
        externals = cluster.get("externalsecret", "-n", "sample-app")["items"]
        names = sorted(es["metadata"]["name"] for es in externals)
        assert names, "Flux applied no ExternalSecret"
        for es in externals:
            es_name = es["metadata"]["name"]
            cluster.wait(
                f"ExternalSecret sample-app/{es_name} (Ready, ESO {eso})",
                lambda es_name=es_name: cluster.is_true("externalsecret", es_name, "sample-app"),
                LOGS,
            )
            target = es["spec"].get("target", {}).get("name") or es_name
            got = cluster.secret_data(target, "sample-app")
            want = {d["secretKey"]: vault_value(cluster, d["remoteRef"]["key"], d["remoteRef"]["property"])
                    for d in es["spec"]["data"]}  # fmt: skip
            assert got == want, f"Secret sample-app/{target} differs from Vault under ESO {eso}"
            secret = cluster.get("secret", target, "-n", "sample-app")
            owners = [o["kind"] for o in secret["metadata"].get("ownerReferences", [])]
            assert owners == ["ExternalSecret"], owners
        assert {"postgres-credentials", "redis-credentials"} <= {
            (es["spec"].get("target", {}).get("name") or es["metadata"]["name"]) for es in externals
        }
    finally:
        # Pruning deletes what the Kustomization applied (the namespace too), so the next
        # release starts from nothing.
        cluster.kubectl("delete", "kustomization", name, "-n", "flux-system", "--ignore-not-found", "--wait=true")
        cluster.kubectl("delete", "ocirepository", name, "-n", "flux-system", "--ignore-not-found")
        cluster.wait(
            "namespace sample-app deleted (Flux prune, namespace controller)",
            lambda: not cluster.exists("namespace", "sample-app"),
            ("kustomize-controller", "kube-controller-manager"),
        )


def test_cluster_env_names_what_the_tests_use_and_up_is_idempotent(cluster: Cluster) -> None:
    env = (CLUSTER_DIR / "env").read_text()
    for key in ("KUBECONFIG=", "VAULT_ADDR=", "VAULT_TOKEN=", "REGISTRY=", "SECRET_STORE=vault-backend"):
        assert key in env
    again = script("up.sh", timeout=120)
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stderr
    assert (CLUSTER_DIR / "env").read_text() == env
