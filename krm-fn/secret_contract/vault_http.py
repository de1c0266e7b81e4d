"""The HTTP transport under hvac: kept-alive `http.client` connections, one per thread.

hvac talks through a `requests.Session`; this class provides the small part of that
interface hvac uses. It costs about a quarter of `requests` per call, which is most of a
build's client-side time against a local Vault. Connection failures surface as
`requests.exceptions` so hvac's callers see the errors they expect.
"""

from __future__ import annotations

import http.client
import json as jsonlib
import os
import ssl
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests.exceptions

_STALE = (http.client.RemoteDisconnected, http.client.CannotSendRequest, BrokenPipeError, ConnectionResetError)


class Response:
    """The attributes of `requests.Response` that hvac reads."""

    def __init__(self, status: int, reason: str, headers: Mapping[str, str], content: bytes, url: str) -> None:
        self.status_code = status
        self.reason = reason
        self.headers = headers
        self.content = content
        self.url = url

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


class KeepAliveSession:
    """`requests.Session`-shaped, thread-safe; counts requests by method."""

    verify: Any = None  # hvac reads these three; the client passes verify/cert per request
    cert: Any = None
    proxies: Any = None

    def __init__(self, tls_server_name: str | None = None) -> None:
        self.tls_server_name = tls_server_name
        self._local = threading.local()
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        timeout: float | None = None,
        verify: bool | str = True,
        cert: tuple[str, str] | None = None,
        **_: Any,
    ) -> Response:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        if params:
            target += ("&" if "?" in target else "?") + urlencode(params)
        body = jsonlib.dumps(json).encode() if json is not None else data
        sent_headers = dict(headers or {})
        if body is not None:
            sent_headers.setdefault("Content-Type", "application/json")
        method = method.upper()
        key = (parts.scheme, parts.netloc)
        for attempt in (1, 2):
            conn = self._connection(key, timeout, verify, cert)
            try:
                conn.request(method, target, body=body, headers=sent_headers)
                resp = conn.getresponse()
                content = resp.read()
            except _STALE as exc:
                # A kept-alive connection the server closed while idle: reconnect once. Every
                # data write carries check-and-set, so a request resent after all stays correct.
                reused = getattr(conn, "served", False)
                self._drop(key)
                if attempt == 2 or not reused:
                    raise requests.exceptions.ConnectionError(f"{type(exc).__name__} from {parts.netloc}") from None
                continue
            except TimeoutError:
                self._drop(key)
                raise requests.exceptions.Timeout(f"no answer from {parts.netloc} within {timeout}s") from None
            except ssl.SSLError as exc:
                self._drop(key)
                raise requests.exceptions.SSLError(f"TLS error with {parts.netloc}: {exc.reason}") from None
            except OSError as exc:
                self._drop(key)
                raise requests.exceptions.ConnectionError(f"{exc.strerror or type(exc).__name__}") from None
            if resp.will_close:
                self._drop(key)
            else:
                conn.served = True  # type: ignore[attr-defined]
            with self._lock:
                self.counts[method] += 1
            return Response(resp.status, resp.reason, _Headers(resp.getheaders()), content, url)
        raise AssertionError("unreachable")

    def close(self) -> None:
        for conn in getattr(self._local, "connections", {}).values():
            conn.close()
        self._local.connections = {}

    def _connection(
        self, key: tuple[str, str], timeout: float | None, verify: bool | str, cert: tuple[str, str] | None
    ) -> http.client.HTTPConnection:
        connections: dict[tuple[str, str], http.client.HTTPConnection] = self._local.__dict__.setdefault(
            "connections", {}
        )
        conn = connections.get(key)
        if conn is None:
            scheme, netloc = key
            if scheme == "https":
                conn = _HTTPSConnection(
                    netloc, timeout=timeout, context=_tls_context(verify, cert), server_name=self.tls_server_name
                )
            else:
                conn = http.client.HTTPConnection(netloc, timeout=timeout)
            connections[key] = conn
        return conn

    def _drop(self, key: tuple[str, str]) -> None:
        conn = self._local.__dict__.get("connections", {}).pop(key, None)
        if conn is not None:
            conn.close()


class _HTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection that can verify the certificate for another name than the one it
    dials (VAULT_TLS_SERVER_NAME)."""

    def __init__(self, netloc: str, *, timeout: float | None, context: ssl.SSLContext, server_name: str | None) -> None:
        super().__init__(netloc, timeout=timeout, context=context)
        self._server_name = server_name

    def connect(self) -> None:
        if not self._server_name:
            super().connect()
            return
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self._server_name)  # type: ignore[attr-defined]


class _Headers(dict[str, str]):
    """Case-insensitive lookups, as `requests` offers."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__((k.lower(), v) for k, v in pairs)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())


_CONTEXTS: dict[tuple[Any, Any], ssl.SSLContext] = {}


def _tls_context(verify: bool | str, cert: tuple[str, str] | None) -> ssl.SSLContext:
    cache_key = (verify, cert)
    context = _CONTEXTS.get(cache_key)
    if context is None:
        if verify is False:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif isinstance(verify, str):
            if os.path.isdir(verify):
                context = ssl.create_default_context(capath=verify)
            else:
                context = ssl.create_default_context(cafile=verify)
        else:
            context = ssl.create_default_context()
        if cert:
            context.load_cert_chain(*cert)
        _CONTEXTS[cache_key] = context
    return context
