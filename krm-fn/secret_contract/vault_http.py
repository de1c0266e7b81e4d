"""HTTP to Vault the way Vault's own client does it, on stdlib `http.client`.

- Kept-alive connections, one set per thread: most of a large build's client time is
  per-request overhead, and `requests` costs about four times this per call.
- Proxies from the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`, lower case too;
  loopback addresses are never proxied), or `VAULT_PROXY_ADDR` / `VAULT_HTTP_PROXY` for
  every request, as the Vault CLI reads them. HTTPS goes through a CONNECT tunnel.
- One redirect (301, 302, 307, 308: an HA standby sends clients to the active node),
  never from https to http, with the same headers, as Vault's client follows it.
- A deadline on each whole request (connect, send, headers, body), kept by one watchdog
  thread, so a server that drips its answer cannot hold a build; answers are bounded.

Every failure is a `TransportError` whose text names the address and never the token or
anything that was sent.
"""

from __future__ import annotations

import base64
import contextlib
import heapq
import http.client
import ipaddress
import json as jsonlib
import os
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from secret_contract.errors import VaultUnavailable
from secret_contract.redact import basic_forms

MAX_BODY = 32 * 1024 * 1024
REDIRECTS = (301, 302, 307, 308)
ErrorKind = Literal["connect", "timeout", "tls", "protocol", "too-large"]
_STALE = (http.client.RemoteDisconnected, http.client.CannotSendRequest, BrokenPipeError, ConnectionResetError)
# OpenSSL's words for a TLS hello answered by a plain-HTTP server (1.1 and 3.x, and 3.2+).
PLAIN_HTTP_SIGNS = ("WRONG_VERSION_NUMBER", "wrong version number", "RECORD_LAYER_FAILURE", "record layer failure")


def answered_in_plain_http(tls_failure: str) -> bool:
    """Whether a TLS handshake's failure text says the server spoke plain HTTP: the one test,
    for Vault's transport and for a registry (`publish`)."""
    return any(sign in tls_failure for sign in PLAIN_HTTP_SIGNS)


class TransportError(Exception):
    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]  # case-insensitive lookups (http.client's message; parsed on demand)
    body: bytes
    url: str
    redirected_to: str | None = None  # the other origin that answered, after a redirect

    def json(self) -> Any:
        """The body as JSON; a `TransportError` if it is not (a proxy's or a web server's page)."""
        try:
            return jsonlib.loads(self.body) if self.body.strip() else {}
        except ValueError:
            kind = self.headers.get("content-type", "no Content-Type").split(";")[0]
            raise TransportError(
                "protocol", f"HTTP {self.status} with a {kind} body that is not JSON: not an answer from Vault"
            ) from None


@dataclass(frozen=True)
class TLS:
    """TLS settings, as VAULT_CACERT, VAULT_CAPATH, VAULT_CLIENT_CERT/KEY, VAULT_SKIP_VERIFY
    and VAULT_TLS_SERVER_NAME give them."""

    cacert: str | None = None
    capath: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    skip_verify: bool = False
    server_name: str | None = None

    def context(self) -> ssl.SSLContext:
        """The SSL context; `VaultUnavailable` naming a trust or certificate file that cannot be used."""
        context = ssl.create_default_context()
        if self.skip_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        for name, path, load in (
            ("VAULT_CACERT", self.cacert, lambda p: context.load_verify_locations(cafile=p)),
            ("VAULT_CAPATH", self.capath, lambda p: context.load_verify_locations(capath=p)),
            ("VAULT_CLIENT_CERT", self.client_cert, lambda p: context.load_cert_chain(p, self.client_key)),
        ):
            if not path:
                continue
            # Without a usable trust file Vault cannot be reached safely: the same as an unreachable
            # Vault (a warning by default, an error when strict), naming the file.
            if not os.path.exists(path):
                raise VaultUnavailable(f"{name}: {path} does not exist")
            try:
                load(path)
            except (ssl.SSLError, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or type(exc).__name__
                raise VaultUnavailable(f"{name}: cannot use {path} ({reason})") from None
        return context


@dataclass(frozen=True)
class Proxies:
    """Which proxy, if any, a request to a URL goes through."""

    explicit: str | None = None  # VAULT_PROXY_ADDR: every request, NO_PROXY does not apply
    by_scheme: Mapping[str, str] = field(default_factory=dict)  # from HTTPS_PROXY, HTTP_PROXY; 'no' for NO_PROXY

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Proxies:
        explicit = (env.get("VAULT_PROXY_ADDR") or env.get("VAULT_HTTP_PROXY") or "").strip() or None
        found: dict[str, str] = {}
        for name in ("https_proxy", "http_proxy", "no_proxy"):
            value = env.get(name) or env.get(name.upper())
            if value:
                found[name.removesuffix("_proxy")] = value.strip()
        return cls(explicit, found)

    def credentials(self) -> list[str]:
        """The user names and passwords in the proxies' addresses, in every form they travel in."""
        urls = [self.explicit or "", *(v for k, v in self.by_scheme.items() if k != "no")]
        return [form for url in urls if url for form in basic_forms(*_userinfo(url))]

    def for_url(self, scheme: str, host: str, port: int) -> str | None:
        if self.explicit:
            return self.explicit
        proxy = self.by_scheme.get(scheme)
        if not proxy or _is_loopback(host):
            return None
        return None if bypasses(self.by_scheme.get("no", ""), host, port) else proxy


def bypasses(no_proxy: str, host: str, port: int) -> bool:
    """Whether NO_PROXY exempts host:port, as Go's net/http/httpproxy reads it (so the Vault
    CLI and this client agree): `*`; a CIDR or an IP address (optionally with a port), which
    match only a literal IP address; a domain (`example.com`, `.example.com`, `*.example.com`,
    optionally with a port), which matches it and its subdomains (with a leading dot only the
    subdomains)."""
    host = host.strip("[]").lower().rstrip(".")
    ip = _ip(host)
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if entry == "*":
            return True
        if entry and _matches(entry, host, ip, port):
            return True
    return False


def _matches(entry: str, host: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None, port: int) -> bool:
    try:
        network = ipaddress.ip_network(entry, strict=False) if "/" in entry else None
    except ValueError:
        network = None
    if network is not None:
        return ip is not None and ip in network
    name, wanted = _split_port(entry)
    if _ip(name) is not None:
        return ip is not None and ip == _ip(name) and wanted in ("", str(port))
    if not name or (wanted and wanted != str(port)):
        return False
    if ip is not None:
        return False  # a domain entry never matches a literal address
    name = name.removeprefix("*")
    if name.startswith("."):
        return host.endswith(name)
    return host == name or host.endswith("." + name)


def _split_port(entry: str) -> tuple[str, str]:
    """`host:port`, `[v6]:port` or a bare host (an IPv6 address without brackets has no port)."""
    if entry.startswith("["):
        name, _, rest = entry[1:].partition("]")
        return name, rest.removeprefix(":")
    if entry.count(":") == 1:
        name, _, port = entry.partition(":")
        return name, port
    return entry, ""


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Watchdog:
    """Shuts down the socket of any request still running at its deadline (one thread for all)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, http.client.HTTPConnection]] = []
        self._armed: dict[int, http.client.HTTPConnection] = {}
        self._fired: set[int] = set()
        self._cond = threading.Condition()
        self._seq = 0
        self._thread: threading.Thread | None = None

    def arm(self, deadline: float, conn: http.client.HTTPConnection) -> int:
        with self._cond:
            self._seq += 1
            heapq.heappush(self._heap, (deadline, self._seq, conn))
            self._armed[self._seq] = conn
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="vault-deadlines", daemon=True)
                self._thread.start()
            elif self._heap[0][1] == self._seq:
                self._cond.notify()
            return self._seq

    def disarm(self, seq: int) -> bool:
        """Stop watching; True if the deadline already fired."""
        with self._cond:
            self._armed.pop(seq, None)
            if seq in self._fired:
                self._fired.discard(seq)
                return True
            return False

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][1] not in self._armed:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, seq, conn = self._heap[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
                self._armed.pop(seq, None)
                self._fired.add(seq)
                sock = conn.sock
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)


_WATCHDOG = _Watchdog()


@dataclass(frozen=True)
class _Route:
    """Where requests to one origin go: straight there, or through a proxy."""

    scheme: str
    host: str
    port: int
    netloc: str
    proxy: str | None
    proxy_auth: str | None
    where: str  # the origin as messages name it

    @property
    def key(self) -> tuple[str, str, int, str | None]:
        return (self.scheme, self.host, self.port, self.proxy)


class Transport:
    """Requests to one Vault address; thread-safe, counts requests by method."""

    def __init__(
        self, addr: str, tls: TLS | None = None, timeout: float = 30.0, proxies: Proxies | None = None
    ) -> None:
        parts = urlsplit(addr)
        self.addr = display_address(addr)
        self._base = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"
        self._base_path = parts.path.rstrip("/")
        self._auth = _basic(parts.username, parts.password)
        self._tls = tls or TLS()
        self._context = self._tls.context() if parts.scheme == "https" else None
        self._timeout = timeout
        self._proxies = proxies or Proxies()
        # Sent with requests (as Basic headers), so scrubbed from anything a server answers.
        self.credentials = (*basic_forms(parts.username, parts.password), *self._proxies.credentials())
        self._local = threading.local()
        self._lock = threading.Lock()
        self._routes: dict[str, _Route] = {}
        self._home = self._route(parts.scheme, parts.netloc)
        self.counts: Counter[str] = Counter()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        follow_redirects: bool = True,
    ) -> Response:
        """Send `method` to `path` (e.g. `/v1/secret/data/x`); return the final answer."""
        method = method.upper()
        body = jsonlib.dumps(json).encode() if json is not None else None
        sent = {"Accept": "application/json", **(headers or {})}
        if body is not None:
            sent.setdefault("Content-Type", "application/json")
        if self._auth:
            sent.setdefault("Authorization", self._auth)
        response = self._send(method, self._home, self._base_path + path, body, sent)
        if follow_redirects and response.status in REDIRECTS:
            location = response.headers.get("location", "").strip()
            if not location:
                raise TransportError("protocol", f"{self.addr}: HTTP {response.status} without a usable Location")
            target = urlsplit(location if "://" in location else self._base + location)
            if self._home.scheme == "https" and target.scheme != "https":
                raise TransportError("protocol", f"{self.addr}: refusing a redirect from https to {target.scheme}")
            if target.scheme not in ("http", "https") or not target.hostname:
                raise TransportError("protocol", f"{self.addr}: HTTP {response.status} without a usable Location")
            path = target.path + (f"?{target.query}" if target.query else "")
            route = self._route(target.scheme, target.netloc)
            response = self._send(method, route, path, body, sent)
            if route.key[:3] != self._home.key[:3]:
                response = replace(response, redirected_to=route.where)
        with self._lock:
            self.counts[method] += 1
        return response

    def _route(self, scheme: str, netloc: str) -> _Route:
        found = self._routes.get(f"{scheme}://{netloc}")
        if found is None:
            parts = urlsplit(f"{scheme}://{netloc}")
            host = parts.hostname or ""
            port = parts.port or (443 if scheme == "https" else 80)
            proxy = self._proxies.for_url(scheme, host, port)
            found = _Route(
                scheme=scheme,
                host=host,
                port=port,
                netloc=netloc,
                proxy=proxy,
                proxy_auth=_basic(*_userinfo(proxy)) if proxy else None,
                where=display_address(f"{scheme}://{netloc}"),
            )
            self._routes[f"{scheme}://{netloc}"] = found
        return found

    def _send(self, method: str, route: _Route, target: str, body: bytes | None, headers: dict[str, str]) -> Response:
        if route.proxy and route.scheme == "http":
            target = f"http://{route.netloc}{target}"  # a plain-HTTP proxy takes the absolute URL
            if route.proxy_auth:
                headers = {**headers, "Proxy-Authorization": route.proxy_auth}
        key, where = route.key, route.where
        for attempt in (1, 2):
            conn = self._connection(key)
            seq = _WATCHDOG.arm(time.monotonic() + self._timeout, conn)
            try:
                conn.request(method, target, body=body, headers=headers)
                resp = conn.getresponse()
                content = _read_bounded(resp, where)
            except _STALE as exc:
                fired = _WATCHDOG.disarm(seq)
                reused = getattr(conn, "served", False)
                self._drop(key)
                if fired:
                    raise self._timed_out(where) from None
                if attempt == 1 and reused:
                    # A kept-alive connection the server closed while idle: reconnect once. Every
                    # data write carries check-and-set, so a request resent after all stays correct.
                    continue
                raise TransportError("connect", f"{where}: connection closed ({type(exc).__name__})") from None
            except TransportError:
                _WATCHDOG.disarm(seq)
                self._drop(key)
                raise
            except TimeoutError:
                _WATCHDOG.disarm(seq)
                self._drop(key)
                raise self._timed_out(where) from None
            except ssl.SSLError as exc:
                fired = _WATCHDOG.disarm(seq)
                self._drop(key)
                if fired:
                    raise self._timed_out(where) from None
                if isinstance(exc, ssl.SSLCertVerificationError):
                    detail = exc.verify_message or exc.reason
                    raise TransportError("tls", f"{where}: TLS verification failed ({detail})") from None
                raise TransportError("tls", f"{where}: TLS failed ({exc.reason or type(exc).__name__})") from None
            except (OSError, http.client.HTTPException) as exc:
                fired = _WATCHDOG.disarm(seq)
                self._drop(key)
                if fired:
                    raise self._timed_out(where) from None
                reason = getattr(exc, "strerror", None) or type(exc).__name__
                via = f" through proxy {display_address(route.proxy)}" if route.proxy else ""
                raise TransportError("connect", f"{where}: cannot connect{via} ({reason})") from None
            if _WATCHDOG.disarm(seq):
                self._drop(key)
                raise self._timed_out(where)
            if resp.will_close:
                self._drop(key)
            else:
                conn.served = True  # type: ignore[attr-defined]
            return Response(resp.status, resp.msg, content, f"{route.scheme}://{route.netloc}{target}")
        raise AssertionError("unreachable")

    def _timed_out(self, where: str) -> TransportError:
        return TransportError(
            "timeout", f"{where}: no complete answer within {self._timeout:g}s (VAULT_CLIENT_TIMEOUT)"
        )

    def _connection(self, key: tuple[str, str, int, str | None]) -> http.client.HTTPConnection:
        connections: dict[Any, http.client.HTTPConnection] = self._local.__dict__.setdefault("connections", {})
        conn = connections.get(key)
        if conn is None:
            scheme, host, port, proxy = key
            conn = self._open(scheme, host, port, proxy)
            connections[key] = conn
        return conn

    def _open(self, scheme: str, host: str, port: int, proxy: str | None) -> http.client.HTTPConnection:
        dial_host, dial_port = host, port
        if proxy:
            pp = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            dial_host, dial_port = pp.hostname or "", pp.port or 80
        if scheme != "https":
            return http.client.HTTPConnection(dial_host, dial_port, timeout=self._timeout)
        assert self._context is not None
        conn = _HTTPSConnection(
            dial_host, dial_port, timeout=self._timeout, context=self._context, server_name=self._tls.server_name
        )
        if proxy:
            auth = _basic(*_userinfo(proxy))
            conn.set_tunnel(host, port, headers={"Proxy-Authorization": auth} if auth else None)
        return conn

    def _drop(self, key: tuple[str, str, int, str | None]) -> None:
        conn = self._local.__dict__.get("connections", {}).pop(key, None)
        if conn is not None:
            conn.close()


def _read_bounded(resp: http.client.HTTPResponse, where: str) -> bytes:
    length = (resp.getheader("Content-Length") or "").strip()
    # A length of thousands of digits is over the limit too, and too long for int() to read.
    if length.isdigit() and (len(length) > len(str(MAX_BODY)) or int(length) > MAX_BODY):
        size = f"{int(length):,}" if len(length) <= 20 else f"a {len(length)}-digit number of"
        raise TransportError("too-large", f"{where}: answer of {size} bytes is over the {MAX_BODY:,} limit")
    content = resp.read(MAX_BODY + 1)
    if len(content) > MAX_BODY:
        raise TransportError("too-large", f"{where}: answer is over the {MAX_BODY:,} byte limit")
    return content


class _HTTPSConnection(http.client.HTTPSConnection):
    """HTTPS that can verify the certificate for another name than the one it dials
    (VAULT_TLS_SERVER_NAME), also through a proxy tunnel."""

    def __init__(
        self, host: str, port: int, *, timeout: float, context: ssl.SSLContext, server_name: str | None
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._server_name = server_name

    def connect(self) -> None:
        if not self._server_name:
            super().connect()
            return
        http.client.HTTPConnection.connect(self)  # TCP, and the CONNECT tunnel when proxied
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self._server_name)  # type: ignore[attr-defined]


def _userinfo(url: str) -> tuple[str | None, str | None]:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    return parts.username, parts.password


def _basic(username: str | None, password: str | None) -> str | None:
    if not username:
        return None
    pair = f"{unquote(username)}:{unquote(password or '')}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def display_address(url: str) -> str:
    """An address fit for messages: user info (`user:password@`) removed."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url.rstrip("/") if not parts.path.strip("/") else url
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"***@{host}").geturl().rstrip("/")
