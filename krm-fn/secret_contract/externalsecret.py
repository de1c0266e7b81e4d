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

from secret_contract.ownership import MANAGED_BY
from secret_contract.resolution import Resolved, ResolvedView

KIND = "ExternalSecret"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
VAULT_PATH_ANNOTATION = "secret-contract.hostk8s.io/vault-path"


def identity(namespace: str, view: ResolvedView) -> tuple[str, str, str, str]:
    """`krm.identity` of the manifest of `view`, without making it."""
    group = view.api_version.split("/")[0] if "/" in view.api_version else ""
    return (group, KIND, namespace, view.name)


def manifest(namespace: str, r: Resolved, view: ResolvedView) -> dict[str, Any]:
    """The ExternalSecret of one view of a secret in `namespace`."""
    target: dict[str, Any] = {"name": view.target_name, "creationPolicy": "Owner"}
    template = _template(view)
    if template:
        target["template"] = template
    return {
        "apiVersion": view.api_version,
        "kind": KIND,
        "metadata": {
            "name": view.name,
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY},
            "annotations": {VAULT_PATH_ANNOTATION: r.where},
        },
        "spec": {
            "refreshInterval": view.refresh_interval,
            "secretStoreRef": {"name": view.store_name, "kind": view.store_kind},
            "target": target,
            "data": [
                {"secretKey": secret_key, "remoteRef": {"key": r.path, "property": prop}}
                for secret_key, prop in sorted(view.keys)
            ],
        },
    }


def is_generated(item: dict[str, Any]) -> bool:
    """Whether `item` is an ExternalSecret this function emitted."""
    meta = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
    labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
    return item.get("kind") == KIND and labels.get(MANAGED_BY_LABEL) == MANAGED_BY


def _template(view: ResolvedView) -> dict[str, Any]:
    template: dict[str, Any] = {}
    if view.template_type:
        template["type"] = view.template_type
    metadata: dict[str, Any] = {}
    if view.template_labels:
        metadata["labels"] = dict(sorted(view.template_labels.items()))
    if view.template_annotations:
        metadata["annotations"] = dict(sorted(view.template_annotations.items()))
    if metadata:
        template["metadata"] = metadata
    if view.template_data:
        template["data"] = dict(sorted(view.template_data.items()))
    return template
