"""Vault KV v2 as a `SecretStore`: the only module that talks to Vault.

Configured by `vault_config.VaultConfig` (the environment, as the Vault CLI reads it). KV
reads and writes go straight through the lean transport (`vault_http`); a configured login
is performed by `vault_login` (hvac, imported only then).

Every answer is checked for being Vault's, and every failure becomes an `errors.*`
exception whose text names the address, the operation and the path. Text from the server
is reduced to Vault's `errors` list and scrubbed of everything the request carried, so a
server or proxy that echoes a request can never put a value or a token into a message.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from secret_contract import redact, vault_auth
from secret_contract.errors import (
    CasConflict,
    RefusedAfterRedirect,
    SecretContractError,
    VaultConfigError,
    VaultPermissionDenied,
    VaultRequestFailed,
    VaultUnavailable,
)
from secret_contract.store import Entry, KvArea, Version, WriteCheck, kv_path, parallel
from secret_contract.vault_config import VaultConfig
from secret_contract.vault_http import Response, Transport, TransportError, answered_in_plain_http

BACKOFF_BASE = 0.25
BACKOFF_CAP = 4.0
CAPABILITY_BATCH = 500
PROBE_CAS = 2**31 - 1  # a version no secret reaches: the write is refused after the policy check
RETRYABLE = {412, 429, 500, 502, 503, 504}
ALLOW_ALL = {"root", "sudo"}
_INVALID_TOKEN = "the token was refused: it is invalid or expired (VAULT_TOKEN, the token file, or the login)"  # noqa: S105


# A data read that found nothing while the metadata shows a live version: another writer
# created it between the two requests.
WRITTEN_MEANWHILE = object()
READ_ATTEMPTS = 3


class VaultStore:
    """KV v2 over HTTP. Each request is retried on 412, 429, 5xx and refused or reset
    connections, VAULT_MAX_RETRIES times with capped exponential backoff and full jitter;
    never on other 4xx answers or a timeout. Every data write carries check-and-set, which
    makes a resent write safe. A token obtained by login is renewed by logging in again
    when Vault starts refusing it."""

    def __init__(self, config: VaultConfig, transport: Transport | None = None) -> None:
        if config.problems:
            raise VaultConfigError("; ".join(config.problems))
        credentials = config.credentials
        if not credentials.token and not credentials.login:
            raise VaultConfigError(
                f"no Vault token for {config.named_addr}: set VAULT_TOKEN, write ~/.vault-token, "
                f"or choose a login with {vault_auth.METHOD_ENV}"
            )
        self.config = config
        self.addr = config.named_addr
        self._transport = transport or Transport(config.addr, config.tls, config.timeout, config.proxies)
        self._token = credentials.token
        self._lock = threading.Lock()
        self._login_generation = 0
        self._checked_mounts: set[str] = set()
        self._valid: bool | None = None
        self._cached_headers: dict[str, str] | None = None
        self._sent_token: str | None = None
        if credentials.login:
            self._login()

    @property
    def request_counts(self) -> dict[str, int]:
        return dict(self._transport.counts)

    # --- the SecretStore operations ---------------------------------------------------

    def check_mount(self, mount: str) -> None:
        """Refuse a mount that is missing or not KV version 2 (a v1 mount would take
        `data/...` as a literal path and scatter secrets)."""
        with self._lock:
            if mount in self._checked_mounts:
                return
        try:
            body = self._json("look up the mount", mount, "GET", f"/v1/sys/internal/ui/mounts/{_quote(mount)}")
        except RefusedAfterRedirect:
            raise
        except VaultPermissionDenied:
            # Vault answers 403 for a mount that does not exist, whatever the token.
            raise VaultPermissionDenied(self._mount_refused(mount)) from None
        info = _mapping(body.get("data"), self.addr, "look up the mount")
        found = str(info.get("path", "")).rstrip("/")
        version = str((info.get("options") or {}).get("version", "1"))
        if info.get("type") not in ("kv", "generic") or found != mount:
            raise VaultRequestFailed(f"{self.addr}: '{mount}' is not a KV mount (found '{found}/')")
        if version != "2":
            raise VaultRequestFailed(
                f"{self.addr}: mount '{mount}' is KV version {version}; secret-contract needs KV version 2"
            )
        with self._lock:
            self._checked_mounts.add(mount)

    def read(self, mount: str, path: str) -> Entry | None:
        for _ in range(READ_ATTEMPTS):
            entry = self._read(mount, path)
            if entry is not WRITTEN_MEANWHILE:
                return entry  # type: ignore[return-value]
        raise VaultRequestFailed(f"{self.addr}: {mount}/{path} kept changing while it was read")

    def _read(self, mount: str, path: str) -> Entry | object | None:
        resp = self._call("read", f"{mount}/{path}", "GET", _url(mount, "data", path), missing=True)
        body = self._body(resp, "read", f"{mount}/{path}")
        data = body.get("data") if isinstance(body, dict) else None
        if resp.status == 404 and not data:
            return self._metadata_entry(mount, path)
        data = _mapping(data, self.addr, f"read {mount}/{path}")
        meta = _mapping(data.get("metadata"), self.addr, f"read {mount}/{path}")
        custom = _strings(meta.get("custom_metadata"))
        version = _int(meta.get("version"))
        if resp.status == 404 or data.get("data") is None:
            # The latest version was deleted, destroyed, or expired through delete_version_after.
            latest = "destroyed" if meta.get("destroyed") else "deleted"
            return Entry({}, version, custom, latest, str(meta.get("deletion_time") or ""))
        return Entry(_strings(data.get("data")), version, custom)

    def read_version(self, mount: str, path: str, version: int) -> Version:
        where = f"{mount}/{path}"
        resp = self._call("read", where, "GET", _url(mount, "data", path, f"?version={int(version)}"), missing=True)
        body = self._body(resp, "read", where).get("data")
        if not isinstance(body, dict):
            return Version("none")
        if resp.status != 404 and isinstance(body.get("data"), dict):
            return Version("live", _strings(body.get("data")))
        meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        if meta.get("destroyed"):
            return Version("destroyed")
        return Version("deleted" if meta.get("deletion_time") else "none")

    def list(self, mount: str, folder: str) -> list[str] | None:
        where = f"{mount}/{folder}".rstrip("/")
        try:
            resp = self._call("list", where, "GET", _url(mount, "metadata", folder, "?list=true"), missing=True)
        except VaultPermissionDenied:
            return None
        if resp.status == 404:
            return []
        keys = _mapping(self._body(resp, "list", where).get("data"), self.addr, f"list {where}").get("keys")
        if not isinstance(keys, list):
            raise VaultUnavailable(f"{self.addr}: unexpected answer to list {where}: no key list")
        return [str(k) for k in keys]

    def write(self, mount: str, path: str, data: Mapping[str, str], cas: int) -> int:
        where = f"{mount}/{path}"
        body = {"options": {"cas": cas}, "data": dict(data)}
        resp = self._call("write", where, "POST", _url(mount, "data", path), json=body, cas=cas)
        result = _mapping(self._body(resp, "write", where).get("data"), self.addr, f"write {where}")
        return _int(result.get("version"))

    def update_metadata(self, mount: str, path: str, changes: Mapping[str, str | None]) -> None:
        """A merge patch of custom_metadata: other keys and the version settings stay (a POST
        would replace them)."""
        self._call(
            "write metadata of",
            f"{mount}/{path}",
            "PATCH",
            _url(mount, "metadata", path),
            json={"custom_metadata": dict(changes)},
            headers={"Content-Type": "application/merge-patch+json"},
        )

    def delete(self, mount: str, path: str) -> None:
        self._call("delete", f"{mount}/{path}", "DELETE", _url(mount, "metadata", path))

    def denied(self, checks: list[WriteCheck]) -> list[WriteCheck]:
        """Asks `sys/capabilities-self` in batches; a token without the `default` policy may
        not, and then each write is probed with a request Vault refuses after its policy
        check and before writing (a data write naming an impossible check-and-set version, a
        metadata patch of the wrong type)."""
        paths = sorted({c.api_path for c in checks})
        granted: dict[str, set[str]] = {}
        try:
            for start in range(0, len(paths), CAPABILITY_BATCH):
                batch = paths[start : start + CAPABILITY_BATCH]
                body = self._json("check capabilities on", "sys", "POST", "/v1/sys/capabilities-self", {"paths": batch})
                data = body.get("data", body)
                granted.update({p: set(_string_list(data.get(p))) for p in batch})
        except VaultPermissionDenied:
            return [c for c, allowed in zip(checks, parallel(self._probe, checks), strict=True) if not allowed]
        return [c for c in checks if not granted.get(c.api_path, set()) & ({c.capability} | ALLOW_ALL)]

    # --- requests ------------------------------------------------------------------------

    def _probe(self, check: WriteCheck) -> bool:
        if check.kind == "delete":
            return True  # no request tells without deleting; the delete itself reports a refusal
        where = f"{check.mount}/{check.path}"
        try:
            if check.kind == "metadata":
                self._call(
                    "check permission to write metadata of",
                    where,
                    "PATCH",
                    _url(check.mount, "metadata", check.path),
                    json={"custom_metadata": "permission-probe"},
                    headers={"Content-Type": "application/merge-patch+json"},
                    missing=True,
                    probe=True,
                )
            else:
                body = {"options": {"cas": PROBE_CAS}, "data": {}}
                self._call(
                    "check permission to write",
                    where,
                    "POST",
                    _url(check.mount, "data", check.path),
                    json=body,
                    probe=True,
                )
        except VaultPermissionDenied:
            return False
        return True

    def _json(self, op: str, where: str, method: str, path: str, json: Any = None) -> dict[str, Any]:
        return self._body(self._call(op, where, method, path, json=json), op, where)

    def _body(self, resp: Response, op: str, where: str) -> dict[str, Any]:
        try:
            body = resp.json()
        except TransportError as exc:
            raise VaultUnavailable(f"{self.addr}: unexpected answer to {op} {where}: {exc}") from None
        if not isinstance(body, dict):
            raise VaultUnavailable(f"{self.addr}: unexpected answer to {op} {where}: not a JSON object")
        return body

    def _call(
        self,
        op: str,
        where: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        cas: int | None = None,
        missing: bool = False,
        probe: bool = False,
    ) -> Response:
        """One Vault request, retried as the class docstring says. `missing` accepts a 404;
        `probe` accepts the 400 a permission probe provokes."""
        relogged = False
        for attempt in range(self.config.max_retries + 1):
            generation = self._login_generation
            try:
                sent = self._headers() if headers is None else {**self._headers(), **headers}
                resp = self._transport.request(method, path, json=json, headers=sent)
            except TransportError as exc:
                error = self._transport_error(exc, op, where)
                if exc.kind != "connect" or attempt == self.config.max_retries:
                    raise error from None
                self._backoff(attempt)
                continue
            status = resp.status
            if status in (200, 204) or (status == 404 and missing) or (probe and status in (400, 404)):
                return resp
            if status in (401, 403) and self.config.credentials.login and not relogged:
                self._login(after=generation)  # the login token may have expired
                relogged = True
                continue
            if status in RETRYABLE and attempt < self.config.max_retries:
                self._backoff(attempt)
                continue
            raise self._status_error(resp, op, where, json, cas)
        raise AssertionError("unreachable")

    def _headers(self) -> dict[str, str]:
        """The headers every request carries (made again only when the token changes)."""
        if self._sent_token != self._token or self._cached_headers is None:
            headers = {"X-Vault-Request": "true"}
            if self._token:
                headers["X-Vault-Token"] = self._token
            if self.config.namespace:
                headers["X-Vault-Namespace"] = self.config.namespace
            self._cached_headers, self._sent_token = headers, self._token
        return self._cached_headers

    def _backoff(self, attempt: int) -> None:
        time.sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)))

    def _transport_error(self, exc: TransportError, op: str, where: str) -> SecretContractError:
        text = str(exc).replace(self.config.display_addr + ": ", "")
        if exc.kind == "tls" and "verification failed" in text:
            text += "; set VAULT_CACERT to the CA that signed Vault's certificate"
        elif exc.kind == "tls" and answered_in_plain_http(text):
            plain = "http://" + self.config.display_addr.removeprefix("https://")
            text += f"; the server answers plain HTTP, not TLS: is the address {plain}?"
        if exc.kind == "too-large":
            return VaultRequestFailed(f"{self.addr}: cannot {op} {where}: {text}")
        prefix = "cannot connect to Vault" if exc.kind == "connect" else f"cannot {op} {where}"
        return VaultUnavailable(f"{self.addr}: {prefix}: {text}")

    def _status_error(self, resp: Response, op: str, where: str, sent: Any, cas: int | None) -> SecretContractError:
        status = resp.status
        reasons = self._reasons(resp, sent)
        detail = f": {reasons}" if reasons else ""
        if status == 400 and cas is not None and "check-and-set" in reasons:
            return CasConflict(where, cas)
        if resp.redirected_to:
            return self._redirected_error(resp, op, where, detail)
        if status in (401, 403):
            why = _INVALID_TOKEN if self._token_valid() is False else "the token's policy lacks that capability"
            return VaultPermissionDenied(f"{self.addr}: permission denied to {op} {where}: {why}")
        if status == 503 and "sealed" in reasons.lower():
            return VaultUnavailable(f"{self.addr}: Vault is sealed (HTTP 503) on {op} {where}")
        if status in RETRYABLE:
            return VaultUnavailable(f"{self.addr}: HTTP {status} from Vault on {op} {where}{detail}")
        if 300 <= status < 400:
            return VaultUnavailable(
                f"{self.addr}: HTTP {status} redirect on {op} {where} that was not followed (a second redirect, or "
                "no Location): is VAULT_ADDR the address of Vault?"
            )
        if status == 404:
            return VaultRequestFailed(f"{self.addr}: not found: {op} {where} (HTTP 404){detail}")
        return VaultRequestFailed(f"{self.addr}: cannot {op} {where} (HTTP {status}){detail}")

    def _redirected_error(self, resp: Response, op: str, where: str, detail: str) -> SecretContractError:
        """An error answer from the host a redirect led to: named as that host's, since it says
        nothing about whether Vault accepts the token."""
        status = resp.status
        text = f"{self.addr}: redirected to {resp.redirected_to}, which answered HTTP {status} to {op} {where}{detail}"
        if status in (401, 403):
            return RefusedAfterRedirect(text)
        if status in RETRYABLE or 300 <= status < 400:
            return VaultUnavailable(text)
        return VaultRequestFailed(text)

    def _reasons(self, resp: Response, sent: Any) -> str:
        """Vault's `errors` list, scrubbed of anything the request or this client holds."""
        try:
            body = resp.json()
        except TransportError:
            kind = resp.headers.get("content-type", "no Content-Type").split(";")[0]
            return f"the answer is {kind}, not Vault's JSON"
        errors = body.get("errors") if isinstance(body, dict) else None
        if not isinstance(errors, list):
            return ""
        held = [*_strings_in(sent), *self._transport.credentials, *([self._token] if self._token else [])]
        # Scrubbed before the cut: a credential cut in half would no longer match.
        return "; ".join(redact.scrub(" ".join(str(e).split()), held)[:300] for e in errors if str(e).strip())

    def _token_valid(self) -> bool | None:
        """Whether Vault accepts the token at all (None: could not tell). The UI's mount list
        answers any valid token, even one without the `default` policy, and refuses others."""
        if self._valid is None:
            try:
                resp = self._transport.request("GET", "/v1/sys/internal/ui/mounts", headers=self._headers())
            except TransportError:
                return None
            if resp.redirected_to:
                return None  # another host's answer says nothing about this token
            self._valid = resp.status == 200
        return self._valid

    def _mount_refused(self, mount: str) -> str:
        if self._token_valid() is False:
            return f"{self.addr}: {_INVALID_TOKEN}"
        try:
            resp = self._transport.request("GET", _url(mount, "data", ""), headers=self._headers())
            missing = resp.status == 404 and b"no handler for route" in resp.body
        except TransportError:
            missing = False
        if missing:
            return (
                f"{self.addr}: there is no mount '{mount}' (SECRET_CONTRACT_VAULT_MOUNT or spec.vault.mount)"
                + self._nearest_mount(mount)
            )
        return f"{self.addr}: mount '{mount}' does not exist, or the token's policy grants nothing under it"

    def _nearest_mount(self, mount: str) -> str:
        """`; did you mean 'kv'?` when a KV mount the token can see has a close name, else ''."""
        import difflib

        try:
            resp = self._transport.request("GET", "/v1/sys/internal/ui/mounts", headers=self._headers())
            mounts = resp.json().get("data", {}).get("secret", {}) if resp.status == 200 else {}
        except (TransportError, AttributeError):
            return ""
        names = [str(name).rstrip("/") for name, info in mounts.items() if isinstance(info, dict)]
        kv = [name for name in names if mounts.get(f"{name}/", {}).get("type") in ("kv", "generic")]
        close = difflib.get_close_matches(mount, kv, n=1)
        return f"; did you mean '{close[0]}'?" if close else ""

    def _metadata_entry(self, mount: str, path: str) -> Entry | object | None:
        """A data read found nothing: metadata may still be there (a reservation, or every
        version deleted), or another writer created a version in between (WRITTEN_MEANWHILE:
        read again)."""
        where = f"{mount}/{path}"
        resp = self._call("read metadata of", where, "GET", _url(mount, "metadata", path), missing=True)
        if resp.status == 404:
            return None
        meta = _mapping(self._body(resp, "read metadata of", where).get("data"), self.addr, f"read metadata of {where}")
        version = _int(meta.get("current_version"))
        custom = _strings(meta.get("custom_metadata"))
        if version == 0:
            return Entry({}, 0, custom, "none")
        latest = (meta.get("versions") or {}).get(str(version)) or {}
        deletion = str(latest.get("deletion_time") or "")
        if not latest.get("destroyed") and (not deletion or _in_future(deletion)):
            # A live version (at most scheduled to expire) that the data read did not see yet.
            return WRITTEN_MEANWHILE
        state = "destroyed" if latest.get("destroyed") else "deleted"
        return Entry({}, version, custom, state, str(latest.get("deletion_time") or ""))

    # --- login ---------------------------------------------------------------------------

    def _login(self, after: int | None = None) -> None:
        """Log in with the configured method; concurrent callers log in once."""
        login = self.config.credentials.login
        assert login is not None
        with self._lock:
            if after is not None and self._login_generation != after:
                return  # another thread already renewed the token
            from secret_contract.vault_login import login_with_hvac  # a token from the environment needs none

            token = login_with_hvac(self._transport, self.config, login)
            problem = vault_auth.token_problem(token)
            if problem:
                raise VaultPermissionDenied(f"{self.addr}: {login.describe()} returned an unusable token ({problem})")
            self._token = token
            self._login_generation += 1


def _in_future(timestamp: str) -> bool:
    """Whether Vault's RFC 3339 time (nanoseconds allowed) is still ahead; False if unreadable."""
    import datetime
    import re

    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", timestamp)
    if not match:
        return False
    fraction = (match.group(2) or "0")[:6].ljust(6, "0")
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    when = datetime.datetime.fromisoformat(f"{match.group(1)}.{fraction}{zone}")
    return when > datetime.datetime.now(datetime.UTC)


def _quote(path: str) -> str:
    return quote(path, safe="/")


def _url(mount: str, area: KvArea, path: str, query: str = "") -> str:
    """The request path of a KV v2 call (quoting each part leaves the slashes between them)."""
    return f"/v1/{_quote(kv_path(mount, area, path))}{query}"


def _mapping(value: Any, addr: str, op: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise VaultUnavailable(f"{addr}: unexpected answer to {op}: it is not shaped like Vault's")
    return value


def _strings(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v if isinstance(v, str) else str(v) for k, v in value.items()}


def _string_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _strings_in(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings_in(item)
