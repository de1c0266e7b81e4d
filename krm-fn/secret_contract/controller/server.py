"""Two small HTTP servers: the artifact server (what kustomize-controller downloads, and the
readiness probe, so that a Service routes only to the elected leader), and the endpoint for
liveness and Prometheus metrics."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from secret_contract.controller.storage import KIND_DIR


class Metrics:
    """What the controller counts, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconciles = Counter(
            "secret_contract_reconciles", "Reconciles of SecretContractRenders", ["result"], registry=self.registry
        )
        self.duration = Histogram(
            "secret_contract_reconcile_duration_seconds",
            "How long a reconcile took",
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900),
            registry=self.registry,
        )
        self.failures = Counter(
            "secret_contract_render_failures", "Failed renders by reason", ["reason"], registry=self.registry
        )
        self.vault_writes = Counter(
            "secret_contract_vault_writes", "Vault secrets written by renders", registry=self.registry
        )
        self.artifacts = Counter("secret_contract_artifacts", "New artifact revisions stored", registry=self.registry)


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return

    def _send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def artifact_server(address: tuple[str, int], root: str, ready: Callable[[], bool]) -> ThreadingHTTPServer:
    """Serves `<root>/externalartifact/...` read-only, and `/readyz`."""

    class Handler(_Quiet):
        def do_GET(self) -> None:
            path = unquote(urlsplit(self.path).path)
            if path == "/readyz":
                self._send(200 if ready() else 503, b"ok" if ready() else b"not leading")
                return
            parts = [p for p in path.split("/") if p]
            if not parts or parts[0] != KIND_DIR or any(p in (".", "..") for p in parts):
                self._send(404, b"not found")
                return
            file = os.path.join(root, *parts)
            if not os.path.isfile(file):
                self._send(404, b"not found")
                return
            with open(file, "rb") as handle:
                self._send(200, handle.read(), "application/gzip")

        do_HEAD = do_GET

    return ThreadingHTTPServer(address, Handler)


def metrics_server(address: tuple[str, int], metrics: Metrics, alive: Callable[[], bool]) -> ThreadingHTTPServer:
    """`/metrics` and `/healthz`."""

    class Handler(_Quiet):
        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/metrics":
                self._send(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._send(200 if alive() else 500, b"ok" if alive() else b"unhealthy")
            else:
                self._send(404, b"not found")

    return ThreadingHTTPServer(address, Handler)


def serve(server: ThreadingHTTPServer, poll_interval: float = 0.5) -> threading.Thread:
    """Serve on a thread of its own; `server.shutdown()` waits up to `poll_interval`."""
    thread = threading.Thread(target=server.serve_forever, args=(poll_interval,), daemon=True)
    thread.start()
    return thread
