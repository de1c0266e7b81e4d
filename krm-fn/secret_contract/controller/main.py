"""`secret-contract-controller` (or `python -m secret_contract.controller`): flags, leader
election, the watches and the work queue around `reconciler.Reconciler`.

One replica renders at a time: the elected leader starts the artifact server (its readiness
probe follows, so the Service routes only to the leader), lists every render and watches
renders and Flux sources; a render is queued when it is created, changed or deleted, when its
source announces a new artifact, and again when its interval or backoff is due.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from secret_contract.controller import api
from secret_contract.controller.reconciler import Kube, Reconciler
from secret_contract.controller.server import Metrics, artifact_server, metrics_server, serve
from secret_contract.controller.storage import Storage

log = logging.getLogger("secret-contract-controller")
Key = tuple[str, str]
NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


class Queue:
    """Keys due at a time; a key queued again keeps its earliest time."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._due: dict[Key, float] = {}

    def add(self, key: Key, delay: float = 0.0) -> None:
        when = time.monotonic() + delay
        with self._cv:
            if key not in self._due or when < self._due[key]:
                self._due[key] = when
                self._cv.notify()

    def get(self) -> Key:
        with self._cv:
            while True:
                if self._due:
                    key, when = min(self._due.items(), key=lambda item: item[1])
                    wait = when - time.monotonic()
                    if wait <= 0:
                        del self._due[key]
                        return key
                    self._cv.wait(wait)
                else:
                    self._cv.wait()


@dataclass
class Index:
    """What the watches have seen: each render's generation and source."""

    generations: dict[Key, Any] = field(default_factory=dict)
    sources: dict[Key, tuple[str, str, str]] = field(default_factory=dict)  # render -> (kind, namespace, name)
    revisions: dict[tuple[str, str, str], str] = field(default_factory=dict)  # source -> artifact revision

    def render_changed(self, kind: str, obj: dict[str, Any]) -> bool:
        """Whether a render event is worth a reconcile: not a status update of our own."""
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        ref = (obj.get("spec") or {}).get("sourceRef") or {}
        if kind == "DELETED":
            self.generations.pop(key, None)
            self.sources.pop(key, None)
            return True
        self.sources[key] = (str(ref.get("kind")), ref.get("namespace") or meta["namespace"], str(ref.get("name")))
        seen = self.generations.get(key)
        self.generations[key] = (meta.get("generation"), bool(meta.get("deletionTimestamp")))
        return seen != self.generations[key]

    def renders_of(self, kind: str, obj: dict[str, Any]) -> list[Key]:
        """The renders to queue for a source event: those reading it, when its artifact changed."""
        meta = obj["metadata"]
        source = (kind, meta["namespace"], meta["name"])
        artifact = (obj.get("status") or {}).get("artifact") or {}
        # The digest too: a changed ignore rule or layer selector gives new bytes, same revision.
        revision = f"{artifact.get('revision', '')} {artifact.get('digest', '')}"
        if self.revisions.get(source) == revision:
            return []
        self.revisions[source] = revision
        return [key for key, ref in self.sources.items() if ref == source]


def _watch(lister: Callable[..., Any], args: tuple[str, ...], handle: Callable[[str, dict[str, Any]], None]) -> None:
    """List, then watch from that list's version; start over when the version expires."""
    stream = watch.Watch()
    version = None
    while True:
        try:
            if version is None:
                listed = lister(*args)
                for item in listed.get("items", []):
                    handle("ADDED", item)
                version = listed["metadata"]["resourceVersion"]
            for event in stream.stream(lister, *args, resource_version=version, timeout_seconds=240):
                obj = event["object"]
                version = obj["metadata"]["resourceVersion"]
                if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                    handle(event["type"], obj)
        except ApiException as exc:
            if exc.status == 410:
                version = None
            else:
                log.warning("watching %s: HTTP %s", args[-1], exc.status)
                time.sleep(2)
        except Exception as exc:  # a dropped connection: watch again
            log.warning("watching %s: %s", args[-1], type(exc).__name__)
            time.sleep(2)


@dataclass
class Controller:
    reconciler: Reconciler
    queue: Queue = field(default_factory=Queue)
    index: Index = field(default_factory=Index)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start_watches(self, custom: client.CustomObjectsApi) -> None:
        def on_render(kind: str, obj: dict[str, Any]) -> None:
            with self.lock:
                if self.index.render_changed(kind, obj):
                    self.queue.add((obj["metadata"]["namespace"], obj["metadata"]["name"]))

        watches: list[tuple[tuple[str, ...], Callable[[str, dict[str, Any]], None]]] = [
            ((api.GROUP, api.VERSION, api.PLURAL), on_render)
        ]
        for kind, plural in api.SOURCE_PLURALS.items():

            def on_source(event: str, obj: dict[str, Any], kind: str = kind) -> None:
                with self.lock:
                    for key in self.index.renders_of(kind, obj):
                        self.queue.add(key)

            watches.append(((api.FLUX_SOURCE_GROUP, api.FLUX_SOURCE_VERSION, plural), on_source))
        for args, handle in watches:
            threading.Thread(target=_watch, args=(custom.list_cluster_custom_object, args, handle), daemon=True).start()

    def work(self) -> None:
        while True:
            key = self.queue.get()
            try:
                again = self.reconciler.reconcile(*key)
            except Exception as exc:  # the API server refused or was unreachable: retry
                log.warning("reconciling %s/%s: %s", *key, _brief(exc))
                again = 10.0
            if again is not None:
                self.queue.add(key, again)


def _brief(exc: Exception) -> str:
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason}"
    return type(exc).__name__


def _parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="secret-contract-controller",
        description="Render SecretContractRenders with secret-contract and serve them to Flux as ExternalArtifacts. "
        "Vault is configured as for secret-contract (VAULT_ADDR, SECRET_CONTRACT_AUTH_METHOD=kubernetes, ...).",
    )
    parser.add_argument("--storage-path", default=env("STORAGE_PATH", "/data"), help="where archives are kept")
    parser.add_argument("--storage-addr", default=":9090", help="the artifact server's listen address")
    parser.add_argument(
        "--storage-adv-addr",
        default=env("STORAGE_ADV_ADDR", ""),
        help="host:port the artifact URLs name (default: this host's name and the storage port)",
    )
    parser.add_argument("--metrics-addr", default=":8080", help="/metrics and /healthz")
    parser.add_argument("--leader-election-id", default="secret-contract-controller")
    parser.add_argument("--leader-election-namespace", default=env("RUNTIME_NAMESPACE", ""))
    parser.add_argument("--no-leader-election", action="store_true", help="run without a lease (one process only)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return parser


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "0.0.0.0", int(port)  # noqa: S104 - a pod listens on every interface


def _own_namespace(given: str) -> str:
    if given:
        return given
    try:
        with open(NAMESPACE_FILE, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return "default"


def _load_kube_config() -> None:
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        config.load_incluster_config()
    else:
        config.load_kube_config()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _load_kube_config()
    storage_host, storage_port = _address(args.storage_addr)
    advertised = args.storage_adv_addr or f"{socket.getfqdn()}:{storage_port}"
    os.makedirs(args.storage_path, exist_ok=True)
    metrics = Metrics()
    kube = Kube(client.CustomObjectsApi(), client.CoreV1Api())
    build_env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    controller = Controller(Reconciler(kube, Storage(args.storage_path, advertised), build_env, metrics))
    leading = threading.Event()
    worker: list[threading.Thread] = []
    files = artifact_server((storage_host, storage_port), args.storage_path, leading.is_set)
    probes = metrics_server(_address(args.metrics_addr), metrics, lambda: not worker or worker[0].is_alive())
    serve(probes)

    def lead() -> None:
        serve(files)
        controller.start_watches(kube.custom)
        worker.append(threading.Thread(target=controller.work, daemon=True))
        worker[0].start()
        leading.set()
        log.info("leading: serving artifacts at http://%s/", advertised)
        worker[0].join()

    if args.no_leader_election:
        lead()
        return 1
    return _elect(args, lead)


def _elect(args: argparse.Namespace, lead: Callable[[], None]) -> int:
    from kubernetes.leaderelection import electionconfig, leaderelection
    from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

    identity = f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"
    lock = LeaseLock(args.leader_election_id, _own_namespace(args.leader_election_namespace), identity)

    def stopped() -> None:
        # Another replica may lead now: stop at once rather than render beside it.
        log.error("lost the leader lease; exiting")
        os._exit(1)

    settings = electionconfig.Config(lock, 15, 10, 2, lead, stopped)
    leaderelection.LeaderElection(settings).run()
    return 1
