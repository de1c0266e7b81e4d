"""Validate manifests against upstream CRDs as the API server would, without one: the served
version's openAPIV3Schema, plus the unknown-field check that `kubectl apply` and server-side
apply make (strict field validation)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from secret_contract import yaml_codec

UPSTREAM = Path(__file__).resolve().parent / "upstream"
ESO_RELEASES = ("v0.16.2", "v0.17.0", "v1.0.0", "v2.2.0", "v2.3.0", "v2.9.0")
OBJECT_META = {"name", "namespace", "labels", "annotations", "generateName", "finalizers", "ownerReferences"}


@cache
def _crd(path: Path) -> dict[str, Any]:
    return yaml_codec.load(path.read_text())


def problems(manifest: dict[str, Any], crd_path: Path) -> list[str]:
    """Everything the API server would refuse in `manifest` under this CRD."""
    crd = _crd(crd_path)
    group, _, version = str(manifest.get("apiVersion", "")).partition("/")
    if group != crd["spec"]["group"] or manifest.get("kind") != crd["spec"]["names"]["kind"]:
        return [f"not a {crd['spec']['names']['kind']} of {crd['spec']['group']}"]
    served = {v["name"]: v for v in crd["spec"]["versions"] if v.get("served")}
    if version not in served:
        return [f"{manifest['apiVersion']} is not served (served: {', '.join(sorted(served))})"]
    schema = served[version]["schema"]["openAPIV3Schema"]
    found = [
        f"{'.'.join(str(p) for p in err.absolute_path)}: {err.message}"
        for err in jsonschema.Draft7Validator(schema).iter_errors(manifest)
    ]
    found += _unknown(manifest, schema, "")
    found += [f"metadata.{k}: unknown field" for k in manifest.get("metadata", {}) if k not in OBJECT_META]
    return found


def _unknown(value: Any, schema: dict[str, Any], at: str) -> list[str]:
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found: list[str] = []
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, child in value.items():
            where = f"{at}.{key}" if at else str(key)
            if at == "" and key in ("apiVersion", "kind", "metadata"):
                continue
            if properties is not None and key in properties:
                found += _unknown(child, properties[key], where)
            elif isinstance(extra, dict):
                found += _unknown(child, extra, where)
            elif properties is not None or extra is False:
                found.append(f"{where}: unknown field")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, child in enumerate(value):
            found += _unknown(child, schema["items"], f"{at}[{index}]")
    return found


def eso_problems(manifest: dict[str, Any], kind: str = "externalsecrets") -> dict[str, list[str]]:
    """Problems per ESO release, for every release that has this kind's CRD stored."""
    out = {}
    for release in ESO_RELEASES:
        matches = sorted((UPSTREAM / "external-secrets" / release).glob(f"external-secrets.io_{kind}*.yaml"))
        if matches:
            out[release] = problems(manifest, matches[0])
    return out


FLUX_RELEASES = {  # Flux release: the controllers it ships, whose CRDs are stored
    "v2.6": ("source-controller-v1.6.0", "kustomize-controller-v1.6.0"),
    "v2.7": ("source-controller-v1.7.4", "kustomize-controller-v1.7.3"),
}


def flux_problems(manifest: dict[str, Any]) -> dict[str, list[str]]:
    """Problems per Flux release whose controllers serve this kind."""
    out = {}
    for release, controllers in FLUX_RELEASES.items():
        files = [p for c in controllers for p in sorted((UPSTREAM / "flux" / c).glob("*.yaml"))]
        crds = [p for p in files if _crd(p)["spec"]["names"]["kind"] == manifest.get("kind")]
        out[release] = problems(manifest, crds[0]) if crds else [f"no {manifest.get('kind')} CRD in Flux {release}"]
    return out


def kubernetes_problems(manifest: dict[str, Any], version: str = "1.37.0") -> list[str]:
    """Problems under Kubernetes' own schemas (kubernetes-validate, strict: unknown fields too)."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(manifest, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'.'.join(str(p) for p in exc.path)}: {exc.message}"]
    return []
