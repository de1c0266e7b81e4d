"""Two ExternalSecrets aimed at one Secret (different names, the same target.name, one
namespace), applied directly: what each built ESO release does. The function refuses this at
render time (README "Shared secrets"); this records why, on the real controllers."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from .conftest import Cluster, pinned_eso_releases

LOGS = ("eso", "kube-controller-manager")
WATCH = 20.0  # seconds of observation with both in place, at a refreshInterval of 2s


def external_secret(name: str, namespace: str, store: str) -> str:
    return f"""\
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: {name}
  namespace: {namespace}
spec:
  refreshInterval: 2s
  secretStoreRef: {{name: {store}, kind: ClusterSecretStore}}
  target: {{name: shared, creationPolicy: Owner}}
  data:
  - secretKey: value
    remoteRef: {{key: {namespace}/{name}, property: value}}
"""


@dataclass
class Seen:
    values: list[str] = field(default_factory=list)  # "first" / "second" / "-" per sample
    owners: list[tuple[str, ...]] = field(default_factory=list)
    versions: set[str] = field(default_factory=set)
    ready: dict[str, set[tuple[str, str, str]]] = field(default_factory=dict)

    def changes(self) -> int:
        return sum(1 for a, b in zip(self.values, self.values[1:], strict=False) if a != b)


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    name = "dup-" + secrets.token_hex(3)
    cluster.apply(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n")
    yield name
    cluster.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false")


@pytest.fixture
def eso_restored(cluster: Cluster) -> Iterator[None]:
    running = cluster.eso_version
    yield
    cluster.use_eso(running)


def observe(cluster: Cluster, namespace: str, values: dict[bytes, str]) -> Seen:
    seen = Seen()
    deadline = time.monotonic() + WATCH
    while time.monotonic() < deadline:
        if cluster.exists("secret", "shared", "-n", namespace):
            secret = cluster.get("secret", "shared", "-n", namespace)
            data = cluster.secret_data("shared", namespace).get("value", b"")
            seen.values.append(values.get(data, "?"))
            seen.owners.append(tuple(sorted(o["name"] for o in secret["metadata"].get("ownerReferences", []))))
            seen.versions.add(secret["metadata"]["resourceVersion"])
        else:
            seen.values.append("-")
        for es in ("first", "second"):
            c = cluster.condition("externalsecret", es, namespace) or {}
            seen.ready.setdefault(es, set()).add((c.get("status", ""), c.get("reason", ""), c.get("message", "")))
        time.sleep(0.5)
    return seen


@pytest.mark.parametrize("eso", pinned_eso_releases())
def test_two_externalsecrets_with_one_target(cluster: Cluster, namespace: str, eso: str, eso_restored: None) -> None:
    cluster.use_eso(eso)
    store = cluster.env["SECRET_STORE"]
    vault = cluster.vault()
    values = {}
    for name in ("first", "second"):
        value = f"{name}-{secrets.token_hex(4)}"
        vault.secrets.kv.v2.create_or_update_secret(f"{namespace}/{name}", {"value": value}, mount_point="secret")
        values[value.encode()] = name
    cluster.apply(external_secret("first", namespace, store))
    cluster.wait(
        f"Secret {namespace}/shared from ExternalSecret first (ESO {eso})",
        lambda: (
            cluster.exists("secret", "shared", "-n", namespace)
            and values.get(cluster.secret_data("shared", namespace).get("value", b"")) == "first"
        ),
        LOGS,
    )
    cluster.apply(external_secret("second", namespace, store))
    seen = observe(cluster, namespace, values)
    report = {
        "eso": eso,
        "values": "".join(v[0] for v in seen.values),
        "owners": sorted(set(seen.owners)),
        "ready": {k: sorted(v) for k, v in seen.ready.items()},
    }
    print(json.dumps(report))
    # The first one keeps the Secret: its value throughout, no flapping (one resourceVersion),
    # owned by it alone; the second one is refused and says why.
    assert set(seen.values) == {"first"} and seen.changes() == 0, report
    assert set(seen.owners) == {("first",)}, report
    assert len(seen.versions) == 1, report
    assert seen.ready["first"] == {("True", "SecretSynced", "secret synced")}, report
    assert seen.ready["second"] == {("False", "SecretSyncedError", "target is owned by another ExternalSecret")}, report

    # The first one deleted: the garbage collector removes the Secret it owned, and the second
    # one makes its own, with its value: the Secret changes hands and value, with a gap.
    uid = cluster.get("secret", "shared", "-n", namespace)["metadata"]["uid"]
    cluster.kubectl("delete", "externalsecret", "first", "-n", namespace, "--wait=true")
    cluster.wait(
        f"Secret {namespace}/shared made anew by ExternalSecret second (ESO {eso})",
        lambda: (
            cluster.exists("secret", "shared", "-n", namespace)
            and cluster.get("secret", "shared", "-n", namespace)["metadata"]["uid"] != uid
            and values.get(cluster.secret_data("shared", namespace).get("value", b"")) == "second"
        ),
        LOGS,
        timeout=120,
    )
    owners = cluster.get("secret", "shared", "-n", namespace)["metadata"]["ownerReferences"]
    assert [o["name"] for o in owners] == ["second"]
    cluster.wait(
        f"ExternalSecret {namespace}/second Ready once it owns the Secret",
        lambda: cluster.is_true("externalsecret", "second", namespace),
        LOGS,
    )
