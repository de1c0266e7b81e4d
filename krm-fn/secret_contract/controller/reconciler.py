"""One `SecretContractRender`, brought in line: its source's artifact fetched, the kustomization
at `spec.path` built exactly as `secret-contract publish` builds it (strictly: Vault written or
the build fails), the archive stored and served, and its `ExternalArtifact` pointing at it.

The rule is strict: a render that did not complete never produces an artifact. On failure the
ExternalArtifact keeps its last good `status.artifact` (its file stays served), the render turns
`Ready=False` with the reason, and the render is retried with backoff. Output identical to the
stored archive (the build is idempotent and the archive reproducible) makes no new revision.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from secret_contract import publish
from secret_contract.controller import api, source
from secret_contract.controller.server import Metrics
from secret_contract.controller.storage import Storage, sha256_hex
from secret_contract.errors import SecretContractError
from secret_contract.pipeline import STATS_FILE_ENV

MAX_MESSAGE = 2000  # characters of a build's error kept in a condition
BACKOFF_START, BACKOFF_MAX = 5.0, 300.0  # seconds between retries of a failing render
SOURCE_NOT_READY_RETRY = 10.0
RENDER_TIMEOUT = 300.0  # seconds a build may take
MIN_INTERVAL = 60.0  # an interval shorter than this would let one render hog the worker


class RenderFailed(Exception):
    """A reconcile step failed; `reason` is the condition reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Kube:
    """The API calls the reconciler makes."""

    custom: client.CustomObjectsApi
    core: client.CoreV1Api

    def render(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(api.GROUP, api.VERSION, namespace, api.PLURAL, name)

    def source(self, ref: api.SourceRef) -> dict[str, Any] | None:
        return self._get(api.FLUX_SOURCE_GROUP, api.FLUX_SOURCE_VERSION, ref.namespace, ref.plural, ref.name)

    def external_artifact(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(api.FLUX_SOURCE_GROUP, api.FLUX_SOURCE_VERSION, namespace, api.EXTERNAL_ARTIFACTS, name)

    def _get(self, group: str, version: str, namespace: str, plural: str, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.custom.get_namespaced_custom_object(group, version, namespace, plural, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return found

    def apply_external_artifact(self, body: dict[str, Any], status: dict[str, Any] | None) -> None:
        """Server-side apply of the object, then of its status (a subresource)."""
        meta = body["metadata"]
        args = (api.FLUX_SOURCE_GROUP, api.FLUX_SOURCE_VERSION, meta["namespace"], api.EXTERNAL_ARTIFACTS, meta["name"])
        self.custom.patch_namespaced_custom_object(
            *args, body, field_manager=api.FIELD_MANAGER, force=True, _content_type="application/apply-patch+yaml"
        )
        if status is not None:
            self.custom.patch_namespaced_custom_object_status(
                *args,
                {
                    "apiVersion": body["apiVersion"],
                    "kind": body["kind"],
                    "metadata": {"name": meta["name"]},
                    "status": status,
                },
                field_manager=api.FIELD_MANAGER,
                force=True,
                _content_type="application/apply-patch+yaml",
            )

    def delete_external_artifact(self, namespace: str, name: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(
                api.FLUX_SOURCE_GROUP, api.FLUX_SOURCE_VERSION, namespace, api.EXTERNAL_ARTIFACTS, name
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def set_finalizers(self, render: dict[str, Any], finalizers: list[str]) -> None:
        meta = render["metadata"]
        patch = {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}}
        self.custom.patch_namespaced_custom_object(
            api.GROUP, api.VERSION, meta["namespace"], api.PLURAL, meta["name"], patch,
            _content_type="application/merge-patch+json",
        )  # fmt: skip

    def set_status(self, render: dict[str, Any], status: dict[str, Any]) -> None:
        meta = render["metadata"]
        self.custom.patch_namespaced_custom_object_status(
            api.GROUP, api.VERSION, meta["namespace"], api.PLURAL, meta["name"], {"status": status},
            _content_type="application/merge-patch+json",
        )  # fmt: skip

    def event(self, render: dict[str, Any], kind: str, reason: str, message: str) -> None:
        meta = render["metadata"]
        stamp = api.now()
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{meta['name']}.", namespace=meta["namespace"]),
            involved_object=client.V1ObjectReference(
                api_version=api.API_VERSION,
                kind=api.KIND,
                name=meta["name"],
                namespace=meta["namespace"],
                uid=meta["uid"],
                resource_version=meta.get("resourceVersion"),
            ),
            type=kind,
            reason=reason,
            message=message[:MAX_MESSAGE],
            source=client.V1EventSource(component=api.FIELD_MANAGER),
            first_timestamp=stamp,
            last_timestamp=stamp,
            count=1,
        )
        with contextlib.suppress(ApiException):  # an event is a courtesy: never fail a reconcile over it
            self.core.create_namespaced_event(meta["namespace"], body)


@dataclass
class Reconciler:
    kube: Kube
    storage: Storage
    build_env: Mapping[str, str] = field(repr=False)
    metrics: Metrics = field(default_factory=Metrics)
    failures: dict[tuple[str, str], int] = field(default_factory=dict)  # consecutive, for backoff

    def reconcile(self, namespace: str, name: str) -> float | None:
        """Bring one render in line; seconds until it should be reconciled again (None: only
        when something changes)."""
        started = time.monotonic()
        try:
            return self._reconcile(namespace, name)
        finally:
            self.metrics.duration.observe(time.monotonic() - started)

    def _reconcile(self, namespace: str, name: str) -> float | None:
        render = self.kube.render(namespace, name)
        if render is None:
            self.storage.remove(namespace, name)
            return None
        meta = render["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if meta.get("deletionTimestamp"):
            self._finalize(render, finalizers)
            return None
        if api.FINALIZER not in finalizers:
            self.kube.set_finalizers(render, [*finalizers, api.FINALIZER])
            render = self.kube.render(namespace, name) or render
        spec = api.parse_spec(render)
        if isinstance(spec, str):
            self._fail(render, RenderFailed("InvalidSpec", spec), retry=False)
            return None
        if spec.suspend:
            self.metrics.reconciles.labels("suspended").inc()
            return None
        try:
            requeue = self._render(render, spec)
        except RenderFailed as failure:
            return self._fail(render, failure)
        self.failures.pop((namespace, name), None)
        self.metrics.reconciles.labels("success").inc()
        return requeue

    def _render(self, render: dict[str, Any], spec: api.RenderSpec) -> float:
        meta = render["metadata"]
        namespace, name, generation = meta["namespace"], meta["name"], meta.get("generation", 0)
        status = render.get("status") or {}
        src = self.kube.source(spec.source)
        found = source.SourceArtifact.of(src) if src else None
        if found is None:
            raise RenderFailed("SourceNotReady", f"{spec.source.kind} {spec.source.name} has no artifact yet")
        ea = self.kube.external_artifact(namespace, name)
        if ea is not None and not api.owned_by(ea, render):
            raise RenderFailed(
                "ArtifactConflict",
                f"ExternalArtifact {namespace}/{name} exists and belongs to something else: it is neither changed nor "
                "deleted; give the render another name",
            )
        stored = api.StoredArtifact.from_status(((ea or {}).get("status") or {}).get("artifact"))
        # Only a file of this render's own folder counts: a status pointing elsewhere is not ours.
        serving = (
            stored is not None
            and stored.path.startswith(self.storage.folder(namespace, name))
            and self.storage.verify(stored.path, stored.digest)
        )
        interval = max(MIN_INTERVAL, spec.interval)
        last = float(status.get("lastRenderedAt") or 0)
        due = time.time() - last >= interval
        # Served where the ExternalArtifact says (the advertised address may have changed).
        current = stored is not None and serving and stored.url == self.storage.url(stored.path)
        unchanged = (
            current
            and status.get("lastRenderedSourceRevision") == found.revision
            and status.get("lastRenderedSourceDigest") == found.digest
            and status.get("observedGeneration") == generation
        )
        if unchanged and not due:
            return max(1.0, interval - (time.time() - last))
        layer, written = self._build(spec, found)
        digest = f"sha256:{sha256_hex(layer)}"
        if stored is not None and current and stored.digest == digest:
            artifact = stored  # the same bytes: no new revision for Flux
        else:
            relative = self._store(namespace, name, layer)
            artifact = api.StoredArtifact(
                relative, self.storage.url(relative), digest, len(layer), found.revision, found.origin, api.now()
            )
            self._publish(render, artifact)
            self.metrics.artifacts.inc()
            self.kube.event(render, "Normal", "NewArtifact", f"stored {artifact.revision} from {found.revision}")
        keep = {artifact.path} | ({stored.path} if stored is not None and stored.path != artifact.path else set())
        self.storage.collect_garbage(namespace, name, keep)
        self.metrics.vault_writes.inc(written)
        message = f"artifact {artifact.revision} from {found.revision}"
        self.kube.set_status(
            render,
            {
                "observedGeneration": generation,
                "lastRenderedSourceRevision": found.revision,
                "lastRenderedSourceDigest": found.digest,
                "lastRenderedAt": str(int(time.time())),
                "artifact": artifact.status(),
                "conditions": api.condition(
                    status.get("conditions") or [], "Ready", True, "Succeeded", message, generation
                ),
            },
        )
        return interval

    def _build(self, spec: api.RenderSpec, found: source.SourceArtifact) -> tuple[bytes, int]:
        """The archive `publish` would push, and how many Vault secrets the build wrote."""
        with tempfile.TemporaryDirectory(prefix="secret-contract-render-") as work:
            tree = os.path.join(work, "source")
            try:
                source.unpack(source.fetch(found, work), tree)
                directory = source.inside(tree, spec.path)
            except source.SourceFailed as exc:
                raise RenderFailed("FetchFailed", str(exc)) from None
            stats = os.path.join(work, "stats.jsonl")
            env = {**self.build_env, STATS_FILE_ENV: stats}
            try:
                # Many tenants' sources: nothing remote, and one render cannot hold the worker long.
                rendered = publish.build(directory, env, allow_remote=False, timeout=RENDER_TIMEOUT)
                layer = publish.pack(rendered, {}).layer
            except SecretContractError as exc:
                raise RenderFailed("BuildFailed", _scrubbed(str(exc), self.build_env)) from None
            return layer, _written(stats)

    def _store(self, namespace: str, name: str, layer: bytes) -> str:
        try:
            return self.storage.store(namespace, name, layer)
        except OSError as exc:
            raise RenderFailed("StorageOperationFailed", f"storing the artifact: {exc.strerror or exc}") from None

    def _publish(self, render: dict[str, Any], artifact: api.StoredArtifact) -> None:
        generation = render["metadata"].get("generation", 0)
        conditions = api.condition([], "Ready", True, "Succeeded", f"stored artifact {artifact.revision}", generation)
        self.kube.apply_external_artifact(
            api.external_artifact(render), {"artifact": artifact.status(), "conditions": conditions}
        )

    def _fail(self, render: dict[str, Any], failure: RenderFailed, retry: bool = True) -> float | None:
        meta = render["metadata"]
        key = (meta["namespace"], meta["name"])
        status = render.get("status") or {}
        message = str(failure)[:MAX_MESSAGE]
        conditions = api.condition(
            status.get("conditions") or [], "Ready", False, failure.reason, message, meta.get("generation", 0)
        )
        self.kube.set_status(render, {"conditions": conditions})
        self.kube.event(render, "Warning", failure.reason, message)
        self.metrics.failures.labels(failure.reason).inc()
        self.metrics.reconciles.labels("failure").inc()
        if not retry:
            return None
        if failure.reason == "SourceNotReady":
            return SOURCE_NOT_READY_RETRY
        count = self.failures[key] = self.failures.get(key, 0) + 1
        return min(BACKOFF_MAX, BACKOFF_START * 2 ** (count - 1))

    def _finalize(self, render: dict[str, Any], finalizers: list[str]) -> None:
        meta = render["metadata"]
        ea = self.kube.external_artifact(meta["namespace"], meta["name"])
        if ea is not None and api.owned_by(ea, render):  # never another owner's object of the same name
            self.kube.delete_external_artifact(meta["namespace"], meta["name"])
        self.storage.remove(meta["namespace"], meta["name"])
        if api.FINALIZER in finalizers:
            self.kube.set_finalizers(render, [f for f in finalizers if f != api.FINALIZER])


def _written(stats: str) -> int:
    try:
        with open(stats, encoding="utf-8") as handle:
            return sum(int(json.loads(line).get("written", 0)) for line in handle if line.strip())
    except (OSError, ValueError):
        return 0


def _scrubbed(message: str, env: Mapping[str, str]) -> str:
    """A build's error never holds a value (the function's rule); the controller's own
    credentials are scrubbed too, as a last guard."""
    for name, value in env.items():
        if (
            value
            and len(value) >= 8
            and ("TOKEN" in name or "JWT" in name or "SECRET_ID" in name or "PASSWORD" in name)
        ):
            message = message.replace(value, "***")
    return message
