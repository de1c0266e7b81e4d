"""kube-controller-manager's garbage collector deletes the Secret ESO created for an
ExternalSecret with `creationPolicy: Owner` once that ExternalSecret is deleted: what the
function's default output relies on when a stack goes away."""

from __future__ import annotations

import secrets

from .conftest import Cluster

NS = "gc-probe"


def test_deleting_an_externalsecret_garbage_collects_its_owned_secret(cluster: Cluster) -> None:
    value = secrets.token_hex(16)
    cluster.vault().secrets.kv.v2.create_or_update_secret(
        "gc-probe/credentials", {"token": value}, mount_point="secret"
    )
    cluster.apply(
        f"""\
apiVersion: v1
kind: Namespace
metadata: {{name: {NS}}}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: credentials
  namespace: {NS}
spec:
  refreshInterval: 1h
  secretStoreRef: {{name: {cluster.env["SECRET_STORE"]}, kind: ClusterSecretStore}}
  target: {{name: credentials, creationPolicy: Owner}}
  data:
  - secretKey: token
    remoteRef: {{key: gc-probe/credentials, property: token}}
"""
    )
    cluster.wait(
        f"Secret {NS}/credentials from ESO {cluster.eso_version}",
        lambda: cluster.exists("secret", "credentials", "-n", NS) and cluster.secret_data("credentials", NS),
        ("eso",),
    )
    assert cluster.secret_data("credentials", NS) == {"token": value.encode()}
    secret = cluster.get("secret", "credentials", "-n", NS)
    owners = secret["metadata"]["ownerReferences"]
    assert [(o["kind"], o["name"], o.get("controller")) for o in owners] == [("ExternalSecret", "credentials", True)]

    # Background deletion: the API server removes the ExternalSecret at once and leaves its
    # dependents to the garbage collector, which is what `kubectl delete` and Flux's prune do.
    cluster.kubectl("delete", "externalsecret", "credentials", "-n", NS, "--cascade=background", "--wait=true")
    cluster.wait(
        f"garbage collection of Secret {NS}/credentials (kube-controller-manager)",
        lambda: not cluster.exists("secret", "credentials", "-n", NS),
        ("kube-controller-manager", "eso"),
        timeout=120,
    )
    cluster.kubectl("delete", "namespace", NS, "--wait=false")


def test_rbac_is_enforced(cluster: Cluster) -> None:
    """RBAC is real: an unprivileged ServiceAccount may not read Secrets; a bound one may."""
    can = cluster.kubectl(
        "auth", "can-i", "get", "secrets", "-n", "flux-system", "--as=system:serviceaccount:flux-system:default",
        check=False,
    )  # fmt: skip
    assert can.stdout.strip() == "no", can.stdout + can.stderr
    reviewer = cluster.kubectl(
        "auth", "can-i", "create", "tokenreviews.authentication.k8s.io",
        "--as=system:serviceaccount:openbao:openbao-token-reviewer",
        check=False,
    )  # fmt: skip
    assert reviewer.stdout.strip() == "yes", reviewer.stdout + reviewer.stderr
