"""The resources the controller reads and writes: its own `SecretContractRender`, the Flux
sources it renders from, and the `ExternalArtifact` it produces. Pure: parsing and shapes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GROUP = "hostk8s.io"
VERSION = "v1alpha1"
KIND = "SecretContractRender"
PLURAL = "secretcontractrenders"
API_VERSION = f"{GROUP}/{VERSION}"
FINALIZER = "hostk8s.io/secret-contract-render"

FLUX_SOURCE_GROUP = "source.toolkit.fluxcd.io"
FLUX_SOURCE_VERSION = "v1"
SOURCE_PLURALS = {"GitRepository": "gitrepositories", "OCIRepository": "ocirepositories"}
EXTERNAL_ARTIFACT = "ExternalArtifact"
EXTERNAL_ARTIFACTS = "externalartifacts"

FIELD_MANAGER = "secret-contract-controller"
ORIGIN_REVISION = "org.opencontainers.image.revision"
ORIGIN_SOURCE = "org.opencontainers.image.source"
RENDER_LABEL = "hostk8s.io/secret-contract-render"  # on the ExternalArtifact: the render's name

DEFAULT_INTERVAL = 600.0  # seconds between renders of an unchanged source (Vault drift)
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?$")


@dataclass(frozen=True)
class SourceRef:
    kind: str
    name: str
    namespace: str

    @property
    def plural(self) -> str:
        return SOURCE_PLURALS[self.kind]


@dataclass(frozen=True)
class RenderSpec:
    source: SourceRef
    path: str
    interval: float = DEFAULT_INTERVAL
    suspend: bool = False


def parse_spec(obj: dict[str, Any]) -> RenderSpec | str:
    """The render's spec, or what is wrong with it (with its field path)."""
    namespace = obj["metadata"]["namespace"]
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    ref = spec.get("sourceRef") if isinstance(spec.get("sourceRef"), dict) else {}
    kind, name = ref.get("kind"), ref.get("name")
    if kind not in SOURCE_PLURALS:
        return f"spec.sourceRef.kind: must be one of {', '.join(SOURCE_PLURALS)}, not {kind!r}"
    if not isinstance(name, str) or not name:
        return "spec.sourceRef.name: required"
    ref_namespace = ref.get("namespace") or namespace
    if ref_namespace != namespace:
        return "spec.sourceRef.namespace: a render reads sources of its own namespace only"
    path = spec.get("path", "./")
    if not isinstance(path, str) or path.startswith("/") or ".." in path.split("/"):
        return "spec.path: must be a relative path inside the source"
    interval = parse_duration(spec.get("interval")) if spec.get("interval") is not None else DEFAULT_INTERVAL
    if interval is None:
        return f"spec.interval: not a duration like 10m or 1h30m: {spec.get('interval')!r}"
    return RenderSpec(SourceRef(kind, name, namespace), path, interval, bool(spec.get("suspend", False)))


def parse_duration(text: Any) -> float | None:
    """Seconds in a Kubernetes duration of hours, minutes and seconds (`1h30m`, `45s`)."""
    match = _DURATION.match(str(text)) if text else None
    if not match or not any(match.groups()):
        return None
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    return float(total) if total > 0 else None


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    previous: list[dict[str, Any]], kind: str, status: bool, reason: str, message: str, generation: int
) -> list[dict[str, Any]]:
    """`previous` with one condition set; its transition time moves only when its status does."""
    value = "True" if status else "False"
    old = next((c for c in previous if c.get("type") == kind), None)
    changed = old is None or old.get("status") != value
    new = {
        "type": kind,
        "status": value,
        "reason": reason,
        "message": message[:1024],
        "observedGeneration": generation,
        "lastTransitionTime": now() if changed or old is None else old.get("lastTransitionTime", now()),
    }
    return [*(c for c in previous if c.get("type") != kind), new]


def owned_by(obj: dict[str, Any], render: dict[str, Any]) -> bool:
    """Whether `obj` is the render's own: its controller owner reference names the render's UID."""
    uid = render["metadata"].get("uid")
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("uid") == uid and r.get("kind") == KIND and r.get("controller") for r in refs)


def ready(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """The Ready condition of an object, if any."""
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Ready"), None)


def external_artifact(render: dict[str, Any]) -> dict[str, Any]:
    """The ExternalArtifact a render owns (what server-side apply sends; status separately)."""
    meta = render["metadata"]
    return {
        "apiVersion": f"{FLUX_SOURCE_GROUP}/{FLUX_SOURCE_VERSION}",
        "kind": EXTERNAL_ARTIFACT,
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": {RENDER_LABEL: meta["name"]},
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": KIND,
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": {
            "sourceRef": {"apiVersion": API_VERSION, "kind": KIND, "name": meta["name"], "namespace": meta["namespace"]}
        },
    }


@dataclass(frozen=True)
class StoredArtifact:
    """One archive as the ExternalArtifact's `status.artifact` describes it."""

    path: str  # relative to the storage root
    url: str
    digest: str  # sha256:<hex>
    size: int
    origin_revision: str
    origin_source: str
    last_update_time: str

    @property
    def revision(self) -> str:
        return f"latest@{self.digest}"

    def status(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "url": self.url,
            "revision": self.revision,
            "digest": self.digest,
            "size": self.size,
            "lastUpdateTime": self.last_update_time,
            "metadata": {ORIGIN_REVISION: self.origin_revision, ORIGIN_SOURCE: self.origin_source},
        }

    @classmethod
    def from_status(cls, artifact: dict[str, Any] | None) -> StoredArtifact | None:
        if not isinstance(artifact, dict) or not artifact.get("digest") or not artifact.get("path"):
            return None
        metadata = artifact.get("metadata") if isinstance(artifact.get("metadata"), dict) else {}
        size = artifact.get("size")
        return cls(
            str(artifact["path"]),
            str(artifact.get("url", "")),
            str(artifact["digest"]),
            size if isinstance(size, int) else 0,  # a status others can edit is not trusted to be well-formed
            str(metadata.get(ORIGIN_REVISION, "")),
            str(metadata.get(ORIGIN_SOURCE, "")),
            str(artifact.get("lastUpdateTime", "")),
        )
