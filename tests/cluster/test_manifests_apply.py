"""Every shipped Kubernetes manifest is accepted by the real API server (kube-apiserver v1.34.4)
with server-side apply, as a dry run (`--dry-run=server`: admission, defaulting, schema and
field validation run; nothing is stored), with the CRDs each needs installed: Flux's and ESO's
(cluster/up.sh), the SecretContractRender CRD as shipped and Argo CD v3.5.1's Application CRD
(tests/upstream/), and the namespaces they name."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from test_platform_manifests import ARGO, argocd_install

from .conftest import ROOT, Cluster

EXAMPLES = ROOT / "kustomize-examples"
CRDS = {
    "secretcontractrenders.hostk8s.io": EXAMPLES / "flux" / "external-artifact" / "crd.yaml",
    "applications.argoproj.io": ARGO / "application-crd.stripped.yaml",
}
MANAGER = "secret-contract-manifests"


def kustomized(cluster: Cluster, folder: Path) -> str:
    done = subprocess.run([cluster.kubectl_path, "kustomize", str(folder)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def shipped(name: str) -> Callable[[Cluster, Path], str]:
    return lambda cluster, tmp: (EXAMPLES / name).read_text()


MANIFESTS: dict[str, Callable[[Cluster, Path], str]] = {
    "flux/in-cluster": lambda cluster, tmp: kustomized(cluster, EXAMPLES / "flux" / "in-cluster"),
    "flux/clusters/prod/platform.yaml": shipped("flux/clusters/prod/platform.yaml"),
    "flux/external-artifact": lambda cluster, tmp: kustomized(cluster, EXAMPLES / "flux" / "external-artifact"),
    # Under another name: the cluster's own ClusterSecretStore is `vault-backend` (another server),
    # and the example is checked as the new object it would be on a platform.
    "hostk8s/cluster/cluster-secret-store.yaml": lambda cluster, tmp: shipped(
        "hostk8s/cluster/cluster-secret-store.yaml"
    )(cluster, tmp).replace("  name: vault-backend\n", "  name: vault-backend-example\n"),
    "argocd (the sidecar patch over v3.5.1's repo-server)": lambda cluster, tmp: kustomized(
        cluster, argocd_install(tmp)
    ),
    "argocd/application.yaml": shipped("argocd/application.yaml"),
}
EXPECTED = {
    "flux/in-cluster": {
        "serviceaccount/secret-contract-publisher",
        "cronjob.batch/secret-contract-publish",
        "job.batch/secret-contract-first-publish",
        "ocirepository.source.toolkit.fluxcd.io/platform-prod",
        "kustomization.kustomize.toolkit.fluxcd.io/platform-prod",
    },
    "flux/clusters/prod/platform.yaml": {
        "ocirepository.source.toolkit.fluxcd.io/platform-prod",
        "kustomization.kustomize.toolkit.fluxcd.io/platform-prod",
    },
    "hostk8s/cluster/cluster-secret-store.yaml": {"clustersecretstore.external-secrets.io/vault-backend-example"},
    "argocd/application.yaml": {"application.argoproj.io/platform-prod"},
}


@pytest.fixture(scope="module")
def prepared(cluster: Cluster) -> Iterator[Cluster]:
    """The CRDs applied (for real: a dry run cannot make a kind known) and Established, the
    namespace `argocd` created when missing (and deleted afterwards)."""
    for crd, path in CRDS.items():
        cluster.kubectl("apply", "--server-side", "-f", str(path))
        cluster.wait(f"CRD {crd} (Established)", lambda crd=crd: cluster.is_true("crd", crd, None, "Established"), ())
    made = not cluster.exists("namespace", "argocd")
    if made:
        cluster.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: argocd}\n")
    yield cluster
    if made:
        cluster.kubectl("delete", "namespace", "argocd", "--ignore-not-found", "--wait=false")


@pytest.mark.parametrize("name", list(MANIFESTS))
def test_the_api_server_accepts_the_shipped_manifest_with_server_side_apply(
    prepared: Cluster, name: str, tmp_path: Path
) -> None:
    cluster = prepared
    manifest = MANIFESTS[name](cluster, tmp_path)
    ran = cluster.kubectl(
        "apply", "--server-side", f"--field-manager={MANAGER}", "--dry-run=server", "-o", "name", "-f", "-",
        stdin=manifest, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, f"{name}:\n{ran.stderr}"
    applied = set(ran.stdout.split())
    assert applied, ran.stdout
    if name in EXPECTED:
        assert applied == EXPECTED[name]
    if name.startswith("argocd ("):
        assert "deployment.apps/argocd-repo-server" in applied
        assert any(a.startswith("configmap/secret-contract-plugin-") for a in applied)
        assert "configmap/argocd-cmd-params-cm" in applied
    if name == "flux/external-artifact":
        assert {
            "customresourcedefinition.apiextensions.k8s.io/secretcontractrenders.hostk8s.io",
            "deployment.apps/secret-contract-controller",
            "serviceaccount/secret-contract-controller",
        } <= applied
        assert any(a.startswith("secretcontractrender.hostk8s.io/") for a in applied), applied


def test_a_broken_manifest_is_refused_so_the_dry_run_checks_something(prepared: Cluster) -> None:
    manifest = (EXAMPLES / "flux" / "clusters" / "prod" / "platform.yaml").read_text()
    broken = manifest.replace("  prune: true\n", "  prune: true\n  pruneEverything: true\n")
    ran = prepared.kubectl(
        "apply", "--server-side", f"--field-manager={MANAGER}", "--dry-run=server", "-f", "-",
        stdin=broken, check=False,
    )  # fmt: skip
    assert ran.returncode != 0
    assert "pruneEverything" in ran.stderr
