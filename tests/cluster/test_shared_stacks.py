"""Shared secrets and their stacks, as a platform deploys them: two stacks declare one Secret,
each stack is published as its own OCI artifact and applied by its own Flux Kustomization
(`prune: true`). What happens to the shared Secret when one stack's Kustomization is deleted.

kustomize-controller prunes by inventory *and* by owner labels: on deletion (and on a pruning
reconcile) it deletes an object of its inventory only when the object's labels
`kustomize.toolkit.fluxcd.io/name` and `/namespace` name that Kustomization, and skips objects
annotated `kustomize.toolkit.fluxcd.io/prune: disabled`. Every Kustomization applies with the
same field manager (`kustomize-controller`), so two of them applying one object never conflict:
the last one to apply writes its own owner labels (and its own commonLabels, dropping the other
stack's). Deleting that Kustomization deletes the shared ExternalSecret, and
kube-controller-manager's garbage collector deletes the Secret ESO made for it
(`creationPolicy: Owner`), until the other stack's next reconcile brings both back."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from builders import commit_tree
from conftest import run as run_cli

from .conftest import Cluster, flux_objects, tool_env

LOGS = ("source-controller", "kustomize-controller", "eso", "kube-controller-manager")
FLUX_NS = "flux-system"
OWNER = "kustomize.toolkit.fluxcd.io/name"
# The platform's rule for every stack's Kustomization (docs/cluster.md, README "Shared secrets"):
# Flux never prunes an ExternalSecret that secret-contract emitted.
KEEP_EXTERNALSECRETS = """\
  patches:
    - target:
        kind: ExternalSecret
        labelSelector: app.kubernetes.io/managed-by=secret-contract
      patch: |
        - op: add
          path: /metadata/annotations/kustomize.toolkit.fluxcd.io~1prune
          value: disabled
"""


def contract(stack: str, namespace: str) -> str:
    return f"""\
apiVersion: hostk8s.io/v1
kind: SecretContract
metadata:
  name: {stack}
spec:
  secrets:
    - name: shared-db
      namespace: {namespace}
      data:
        - key: username
          value: shared
        - key: password
          generate: password
          length: 24
    - name: {stack}-only
      namespace: {namespace}
      data:
        - key: token
          generate: token
          length: 32
"""


@dataclass
class Stacks:
    namespace: str
    prefix: str
    repo: Path


@pytest.fixture
def stacks(cluster: Cluster, tmp_path: Path) -> Iterator[Stacks]:
    suffix = secrets.token_hex(3)
    namespace, prefix = f"shared-{suffix}", f"shared-{suffix}"
    # The namespace is the platform's (its namespaces base), in neither stack.
    cluster.apply(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {namespace}}}\n")
    yield Stacks(namespace, prefix, tmp_path / "platform")
    for side in ("a", "b"):
        name = f"{prefix}-{side}"
        cluster.kubectl("delete", "kustomization", name, "-n", FLUX_NS, "--ignore-not-found", "--wait=true")
        cluster.kubectl("delete", "ocirepository", name, "-n", FLUX_NS, "--ignore-not-found")
    cluster.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")


def write_stacks(s: Stacks, common_labels: bool) -> None:
    for side in ("a", "b"):
        folder = s.repo / "stacks" / f"stack-{side}"
        folder.mkdir(parents=True)
        (folder / "hostk8s.secrets.yaml").write_text(contract(f"stack-{side}", s.namespace))
        labels = f"commonLabels:\n  platform.example.com/stack: stack-{side}\n" if common_labels else ""
        (folder / "kustomization.yaml").write_text(f"generators:\n  - hostk8s.secrets.yaml\n{labels}")
    commit_tree(s.repo, "two stacks sharing one secret")


def publish(cluster: Cluster, s: Stacks, side: str) -> None:
    ran = run_cli(
        [sys.executable, "-m", "secret_contract", "publish", str(s.repo / "stacks" / f"stack-{side}"),
         f"oci://{cluster.registry}/{s.prefix}/stack-{side}:v1", "--insecure"],
        env=tool_env(cluster.env),
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert cluster.env["VAULT_TOKEN"] not in ran.stdout + ran.stderr


def deploy(cluster: Cluster, s: Stacks, side: str, keep_externalsecrets: bool) -> None:
    name = f"{s.prefix}-{side}"
    objects = flux_objects(name, cluster.registry, f"{s.prefix}/stack-{side}", "v1")
    if keep_externalsecrets:
        objects += KEEP_EXTERNALSECRETS
    cluster.apply(objects)
    cluster.wait(
        f"Kustomization {FLUX_NS}/{name} (Ready)", lambda: cluster.is_true("kustomization", name, FLUX_NS), LOGS
    )


def vault_values(cluster: Cluster, namespace: str, name: str) -> dict[str, bytes]:
    stored = cluster.vault().secrets.kv.v2.read_secret_version(
        f"{namespace}/{name}", mount_point="secret", raise_on_deleted_version=True
    )
    return {k: str(v).encode() for k, v in stored["data"]["data"].items()}


def delivered(cluster: Cluster, namespace: str, name: str) -> dict[str, bytes]:
    want = vault_values(cluster, namespace, name)
    cluster.wait(
        f"Secret {namespace}/{name} equal to Vault",
        lambda: cluster.exists("secret", name, "-n", namespace) and cluster.secret_data(name, namespace) == want,
        LOGS,
    )
    return want


def set_up(cluster: Cluster, s: Stacks, common_labels: bool, keep: bool) -> tuple[dict[str, bytes], str]:
    """Both stacks published and deployed, A first and B last: (the shared Secret's data, its uid)."""
    write_stacks(s, common_labels)
    publish(cluster, s, "a")
    publish(cluster, s, "b")
    deploy(cluster, s, "a", keep)
    deploy(cluster, s, "b", keep)
    data = delivered(cluster, s.namespace, "shared-db")
    for side in ("a", "b"):
        delivered(cluster, s.namespace, f"stack-{side}-only")
    es = cluster.get("externalsecret", "shared-db", "-n", s.namespace)
    labels = es["metadata"]["labels"]
    # The last Kustomization to apply holds the owner labels, and its stack's commonLabels alone.
    assert labels[OWNER] == f"{s.prefix}-b", labels
    if common_labels:
        assert labels["platform.example.com/stack"] == "stack-b", labels
    fields = cluster.get("externalsecret", "shared-db", "-n", s.namespace, "--show-managed-fields")
    appliers = {m["manager"] for m in fields["metadata"]["managedFields"] if m["operation"] == "Apply"}
    assert appliers == {"kustomize-controller"}, appliers  # one field manager for every Kustomization
    return data, cluster.get("secret", "shared-db", "-n", s.namespace)["metadata"]["uid"]


def delete_stack(cluster: Cluster, s: Stacks, side: str) -> None:
    name = f"{s.prefix}-{side}"
    cluster.kubectl("delete", "kustomization", name, "-n", FLUX_NS, "--wait=true", "--timeout=120s")
    cluster.kubectl("delete", "ocirepository", name, "-n", FLUX_NS, "--wait=true", "--timeout=60s")


def other_stack_reconciles_cleanly(cluster: Cluster, s: Stacks) -> dict[str, object]:
    name = f"{s.prefix}-a"
    cluster.reconcile("kustomization", name, FLUX_NS, LOGS)
    found = cluster.get("kustomization", name, "-n", FLUX_NS)
    ready = next(c for c in found["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True", ready
    assert "conflict" not in ready["message"].lower(), ready
    assert found["status"]["lastAppliedRevision"] == found["status"]["lastAttemptedRevision"]
    events = cluster.kubectl("get", "events", "-n", FLUX_NS, "--field-selector", f"involvedObject.name={name}").stdout
    assert "conflict" not in events.lower(), events
    return found


@pytest.mark.parametrize("common_labels", [False, True], ids=["plain", "commonLabels"])
def test_deleting_the_last_applying_stack_deletes_todays_shared_externalsecret_and_its_secret(
    cluster: Cluster, stacks: Stacks, common_labels: bool
) -> None:
    """The evidence: the function's output as it is, no platform rule."""
    data, uid = set_up(cluster, stacks, common_labels, keep=False)
    delete_stack(cluster, stacks, "b")
    cluster.wait(
        "Flux's prune of the shared ExternalSecret (owner labels name the deleted Kustomization)",
        lambda: not cluster.exists("externalsecret", "shared-db", "-n", stacks.namespace),
        LOGS,
        timeout=60,
    )
    cluster.wait(
        "garbage collection of the shared Secret (owned by the deleted ExternalSecret)",
        lambda: not cluster.exists("secret", "shared-db", "-n", stacks.namespace),
        LOGS,
        timeout=120,
    )
    # Stack A's Kustomization does not notice until its next reconcile (interval 10m); then the
    # Secret comes back with the same value, as a new object.
    other_stack_reconciles_cleanly(cluster, stacks)
    assert delivered(cluster, stacks.namespace, "shared-db") == data
    assert cluster.get("secret", "shared-db", "-n", stacks.namespace)["metadata"]["uid"] != uid
    es = cluster.get("externalsecret", "shared-db", "-n", stacks.namespace)
    assert es["metadata"]["labels"][OWNER] == f"{stacks.prefix}-a"


@pytest.mark.parametrize("common_labels", [False, True], ids=["plain", "commonLabels"])
def test_with_flux_prune_disabled_on_externalsecrets_the_shared_secret_survives_its_stacks(
    cluster: Cluster, stacks: Stacks, common_labels: bool
) -> None:
    data, uid = set_up(cluster, stacks, common_labels, keep=True)
    es = cluster.get("externalsecret", "shared-db", "-n", stacks.namespace)
    assert es["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/prune"] == "disabled"
    delete_stack(cluster, stacks, "b")
    # The Kustomization is gone (its finalizer ran its prune): nothing of the shared secret went.
    assert not cluster.exists("kustomization", f"{stacks.prefix}-b", "-n", FLUX_NS)
    found = other_stack_reconciles_cleanly(cluster, stacks)
    secret = cluster.get("secret", "shared-db", "-n", stacks.namespace)
    assert secret["metadata"]["uid"] == uid
    assert cluster.secret_data("shared-db", stacks.namespace) == data
    assert cluster.is_true("externalsecret", "shared-db", stacks.namespace)
    es = cluster.get("externalsecret", "shared-db", "-n", stacks.namespace)
    assert es["metadata"]["labels"][OWNER] == f"{stacks.prefix}-a"  # stack A applies it again
    if common_labels:
        assert es["metadata"]["labels"]["platform.example.com/stack"] == "stack-a"
    inventory = {e["id"] for e in found["status"]["inventory"]["entries"]}
    assert f"{stacks.namespace}_shared-db_external-secrets.io_ExternalSecret" in inventory
    # The price of the rule: the deleted stack's own ExternalSecret and Secret stay too.
    assert cluster.exists("externalsecret", "stack-b-only", "-n", stacks.namespace)
    assert cluster.exists("secret", "stack-b-only", "-n", stacks.namespace)


def test_shared_secret_survives_also_when_the_first_applying_stack_goes(cluster: Cluster, stacks: Stacks) -> None:
    """Deleting the stack that does not hold the owner labels never pruned the shared objects."""
    data, uid = set_up(cluster, stacks, common_labels=True, keep=False)
    delete_stack(cluster, stacks, "a")
    other = f"{stacks.prefix}-b"
    cluster.reconcile("kustomization", other, FLUX_NS, LOGS)
    assert cluster.is_true("kustomization", other, FLUX_NS)
    assert cluster.get("secret", "shared-db", "-n", stacks.namespace)["metadata"]["uid"] == uid
    assert cluster.secret_data("shared-db", stacks.namespace) == data
    # Stack A's own ExternalSecret was its alone: pruned, and its Secret collected.
    cluster.wait(
        "garbage collection of stack A's own Secret",
        lambda: not cluster.exists("secret", "stack-a-only", "-n", stacks.namespace),
        LOGS,
        timeout=120,
    )
