"""ExternalSecret manifests for a contract: pure, deterministic, block-ordered dicts.

Fields that the ESO CRD defaults are written out, so that a GitOps diff between what was
rendered and what the API server stored stays empty.
"""

from __future__ import annotations

import hashlib
from typing import Any

from secret_contract.contract import Contract, Secret
from secret_contract.settings import Resolved

KIND = "ExternalSecret"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "secret-contract"
CONTRACT_LABEL = "secret-contract.hostk8s.io/contract"
CONTRACT_ANNOTATION = "secret-contract.hostk8s.io/contract"
VAULT_PATH_ANNOTATION = "secret-contract.hostk8s.io/vault-path"

REMOTE_REF_DEFAULTS = {
    "conversionStrategy": "Default",
    "decodingStrategy": "None",
    "metadataPolicy": "None",
}
# ESO 2.3+ defaults this too; v1beta1 targets older ESO releases, which reject it.
NULL_BYTE_POLICY_DEFAULT = {"nullBytePolicy": "Ignore"}


def label_value(stack: str) -> str:
    """A stack name as a label value: '/' becomes '.', and over 63 characters it is hashed."""
    value = stack.replace("/", ".")
    if len(value) <= 63:
        return value
    digest = hashlib.sha256(stack.encode()).hexdigest()[:10]
    return f"{value[:52].rstrip('.-')}-{digest}"


def build(c: Contract, secret: Secret, r: Resolved) -> dict[str, Any]:
    """The ExternalSecret that delivers `secret` from Vault into its namespace."""
    remote_defaults = dict(REMOTE_REF_DEFAULTS)
    if r.api_version.endswith("/v1"):
        remote_defaults.update(NULL_BYTE_POLICY_DEFAULT)
    target: dict[str, Any] = {"name": secret.name, "creationPolicy": "Owner", "deletionPolicy": "Retain"}
    template = _template(r)
    if template:
        target["template"] = template
    return {
        "apiVersion": r.api_version,
        "kind": KIND,
        "metadata": {
            "name": secret.name,
            "namespace": secret.namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY, CONTRACT_LABEL: label_value(c.stack)},
            "annotations": {CONTRACT_ANNOTATION: c.stack, VAULT_PATH_ANNOTATION: r.full_path},
        },
        "spec": {
            "refreshInterval": r.refresh_interval,
            "secretStoreRef": {"name": r.store_name, "kind": r.store_kind},
            "target": target,
            "data": [
                {
                    "secretKey": entry.key,
                    "remoteRef": {"key": r.key, "property": entry.key, **remote_defaults},
                }
                for entry in secret.data
            ],
        },
    }


def build_all(c: Contract, resolved: list[Resolved]) -> list[dict[str, Any]]:
    return [build(c, secret, r) for secret, r in zip(c.secrets, resolved, strict=True)]


def is_generated_by(item: dict[str, Any], stack: str) -> bool:
    """Whether `item` is an ExternalSecret this function emitted for contract `stack`."""
    meta = item.get("metadata") or {}
    labels = meta.get("labels") or {}
    notes = meta.get("annotations") or {}
    return (
        item.get("kind") == KIND
        and labels.get(MANAGED_BY_LABEL) == MANAGED_BY
        and notes.get(CONTRACT_ANNOTATION) == stack
    )


def _template(r: Resolved) -> dict[str, Any]:
    if not (r.template_type or r.template_labels or r.template_annotations):
        return {}
    template: dict[str, Any] = {}
    if r.template_type:
        template["type"] = r.template_type
    template["engineVersion"] = "v2"
    template["mergePolicy"] = "Replace"
    metadata: dict[str, Any] = {}
    if r.template_labels:
        metadata["labels"] = dict(sorted(r.template_labels.items()))
    if r.template_annotations:
        metadata["annotations"] = dict(sorted(r.template_annotations.items()))
    if metadata:
        template["metadata"] = metadata
    return template
