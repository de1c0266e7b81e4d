"""Servers the tests put between the function and the real OpenBao server, or in its place:
a fault proxy that answers chosen requests itself (429, 5xx, a redirect) before forwarding the
rest, a server that never answers, one that answers like something other than Vault, one that
drips or floods, and a forwarding proxy. Only loopback, bounded, stopped by the tests. And
`FailingRecord`, a store whose ownership records fail."""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from secret_contract.errors import VaultUnavailable

DROP = -1  # close the connection without answering (a reset, as when Vault goes away)

# (request number from 1, method, path) -> a status to answer instead of forwarding, DROP,
# a float (seconds to wait before forwarding), or None to forward at once.
Rule = Callable[[int, str, str], int | float | None]


class _Handler(BaseHTTPRequestHandler):
    """What every server here shares: HTTP/1.1 keep-alive, no log lines, answers with a
    Content-Length, and relaying a request to another server."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *_: object) -> None:
        pass

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def answer(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def relay(self, host: str, port: int, target: str, body: bytes, drop: tuple[str, ...]) -> None:
        """Send this request to host:port (without the headers named in `drop`) and answer
        with what comes back."""
        conn = http.client.HTTPConnection(host, port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in drop}
        conn.request(self.command, target, body=body or None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        hop = ("transfer-encoding", "connection", "content-length")
        self.answer(resp.status, [(k, v) for k, v in resp.getheaders() if k.lower() not in hop], data)


@contextmanager
def _serving(handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """A threaded HTTP server (HTTPS with `tls`) on a free loopback port: its address, until the
    block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class FaultProxy:
    def __init__(self, upstream: str, rule: Rule) -> None:
        self.upstream = urlsplit(upstream)
        self.rule = rule
        self.seen: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()
        proxy = self

        self.addr = ""  # set while it serves

        class Handler(_Handler):
            def _handle(self) -> None:
                body = self.read_body()
                with proxy._lock:
                    number = len(proxy.seen) + 1
                    status = proxy.rule(number, self.command, self.path)
                    proxy.seen.append((self.command, self.path, status if isinstance(status, int) else 0))
                if status == DROP:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if isinstance(status, float):
                    time.sleep(status)
                    status = None
                if status:
                    self.answer(status, [("Content-Type", "application/json")], b'{"errors":["injected"]}')
                    return
                upstream = proxy.upstream
                self.relay(str(upstream.hostname), int(upstream.port or 80), self.path, body, ("host", "connection"))

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_LIST = _handle

        self.handler = Handler

    def statuses(self) -> list[int]:
        return [status for _, _, status in self.seen]


@contextmanager
def fault_proxy(upstream: str, rule: Rule) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream, rule)
    with _serving(proxy.handler) as addr:
        proxy.addr = addr
        yield proxy


@contextmanager
def silent_server() -> Iterator[str]:
    """Accepts TCP connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


Answer = tuple[int, dict[str, str], bytes]
Responder = Callable[[str, str, bytes], Answer]  # (method, path, body) -> (status, headers, body)
# (method, path, request headers, body) -> (status, headers, body): for servers that echo headers
HeaderResponder = Callable[[str, str, dict[str, str], bytes], Answer]


@contextmanager
def answering_server(respond: Responder, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """An HTTP (with `tls`, HTTPS) server on loopback that answers every request with what
    `respond` says: a web page, a proxy's error, a redirect, JSON that is not Vault's."""
    with header_answering_server(lambda method, path, _headers, body: respond(method, path, body), tls) as addr:
        yield addr


@contextmanager
def header_answering_server(respond: HeaderResponder, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """`answering_server`, with the request's headers given to `respond` (a server that
    echoes them, as some proxies and registries do in their errors)."""

    class Handler(_Handler):
        def _handle(self) -> None:
            status, headers, payload = respond(self.command, self.path, dict(self.headers.items()), self.read_body())
            self.answer(status, list(headers.items()), payload)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    with _serving(Handler, tls) as addr:
        yield addr


@contextmanager
def raw_server(serve: Callable[[socket.socket], None], limit: float = 30.0) -> Iterator[str]:
    """A TCP server that hands each connection to `serve` (for answers no HTTP library would
    send: a body dripped a byte at a time, hundreds of megabytes). Bounded by `limit` seconds."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.2)
    stop = threading.Event()
    deadline = time.monotonic() + limit

    def accept() -> None:
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            threading.Thread(target=_serve_one, args=(serve, conn), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        sock.close()


def _serve_one(serve: Callable[[socket.socket], None], conn: socket.socket) -> None:
    with conn:
        conn.settimeout(10)
        try:
            conn.recv(65536)  # the request (small: headers and a short body)
            serve(conn)
        except OSError:
            pass


def drip(conn: socket.socket, seconds: float = 20.0) -> None:
    """A 200 whose body arrives one byte every half second, for `seconds`."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        conn.sendall(b" ")
        time.sleep(0.5)


def flood(conn: socket.socket, megabytes: int = 300) -> None:
    """A 200 with a body of `megabytes`, streamed in chunks, without a Content-Length."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
    chunk = b" " * (1024 * 1024)
    for _ in range(megabytes):
        conn.sendall(chunk)


@contextmanager
def forwarding_proxy(names: dict[str, int]) -> Iterator[tuple[str, list[str]]]:
    """An HTTP proxy on loopback, as corporate networks have: absolute-URI requests for plain
    HTTP and CONNECT tunnels for HTTPS. `names` maps host names the client uses to loopback
    ports (the client never resolves them itself). Yields its address and a log of requests."""
    seen: list[str] = []

    class Handler(_Handler):
        def _target(self, host: str) -> tuple[str, int]:
            name, _, port = host.partition(":")
            return "127.0.0.1", names.get(name, int(port or 80))

        def do_CONNECT(self) -> None:
            seen.append(f"CONNECT {self.path}")
            upstream = socket.create_connection(self._target(self.path), timeout=10)
            self.send_response(200, "Connection established")
            self.end_headers()
            self.close_connection = True
            _pipe(self.connection, upstream)

        def _forward(self) -> None:
            seen.append(f"{self.command} {self.path}")
            parts = urlsplit(self.path)
            body = self.read_body()
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            self.relay(*self._target(parts.netloc), target, body, ("connection", "proxy-connection"))

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    with _serving(Handler) as addr:
        yield addr, seen


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy both ways until either side closes."""

    def one_way(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    other = threading.Thread(target=one_way, args=(b, a), daemon=True)
    other.start()
    one_way(a, b)
    other.join(timeout=30)
    b.close()


class FailingRecord:
    """A store whose ownership records fail: Vault went away between a data write and its record."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def update_metadata(self, mount: str, path: str, changes: Any) -> None:
        raise VaultUnavailable(f"{mount}/{path}: connection refused")
