"""ExternalSecret manifests: pure, deterministic, block-ordered dicts.

Only fields that carry meaning are written, and only fields every supported ESO release
(0.16.2 to 2.9) knows: `kubectl apply` and server-side apply reject unknown fields, and
writing out defaults buys nothing (ESO's CRDs default none of the remoteRef strategies; Argo
CD and Flux do not report server-side defaults as drift). Nothing in an ExternalSecret names
the contract that declared it, so every stack that declares a shared Secret emits the same
bytes (data entries are sorted by key for the same reason).
"""

from __future__ import annotations

from typing import Any

from secret_contract.contract import Secret
from secret_contract.ownership import MANAGED_BY
from secret_contract.settings import Resolved

KIND = "ExternalSecret"
GROUP = "external-secrets.io"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
VAULT_PATH_ANNOTATION = "secret-contract.hostk8s.io/vault-path"


def build(secret: Secret, r: Resolved) -> dict[str, Any]:
    """The ExternalSecret that delivers `secret` from Vault into its namespace."""
    target: dict[str, Any] = {"name": secret.name, "creationPolicy": "Owner"}
    template = _template(r)
    if template:
        target["template"] = template
    return {
        "apiVersion": r.api_version,
        "kind": KIND,
        "metadata": {
            "name": secret.name,
            "namespace": secret.namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY},
            "annotations": {VAULT_PATH_ANNOTATION: r.full_path},
        },
        "spec": {
            "refreshInterval": r.refresh_interval,
            "secretStoreRef": {"name": r.store_name, "kind": r.store_kind},
            "target": target,
            "data": [
                {"secretKey": entry.key, "remoteRef": {"key": r.path, "property": entry.key}}
                for entry in sorted(secret.data, key=lambda e: e.key)
            ],
        },
    }


def is_generated(item: dict[str, Any]) -> bool:
    """Whether `item` is an ExternalSecret this function emitted."""
    meta = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
    labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
    return item.get("kind") == KIND and labels.get(MANAGED_BY_LABEL) == MANAGED_BY


def _template(r: Resolved) -> dict[str, Any]:
    template: dict[str, Any] = {}
    if r.template_type:
        template["type"] = r.template_type
    metadata: dict[str, Any] = {}
    if r.template_labels:
        metadata["labels"] = dict(sorted(r.template_labels.items()))
    if r.template_annotations:
        metadata["annotations"] = dict(sorted(r.template_annotations.items()))
    if metadata:
        template["metadata"] = metadata
    return template
