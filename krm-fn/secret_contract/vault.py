"""Vault KV v2 access: the only module that imports hvac.

Configured like the Vault CLI, by environment: VAULT_ADDR, VAULT_TOKEN (else
~/.vault-token), VAULT_NAMESPACE, VAULT_CACERT, VAULT_CAPATH, VAULT_CLIENT_CERT,
VAULT_CLIENT_KEY, VAULT_SKIP_VERIFY, VAULT_TLS_SERVER_NAME, VAULT_CLIENT_TIMEOUT,
VAULT_MAX_RETRIES; other auth methods as `vault_auth` reads them. hvac errors are
translated here into `errors.*`, whose messages name the address and path but never a
value or a credential.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from secret_contract import vault_auth
from secret_contract.errors import (
    CasConflict,
    SecretContractError,
    VaultConfigError,
    VaultPermissionDenied,
    VaultRequestFailed,
    VaultUnavailable,
)
from secret_contract.plan import Current
from secret_contract.settings import flag

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 2  # the Vault CLI's default
BACKOFF_BASE = 0.25
BACKOFF_CAP = 4.0
CAPABILITY_BATCH = 500

T = TypeVar("T")


class SecretStore(Protocol):
    """The narrow seam the sync step needs; HvacStore is the implementation."""

    def check_mount(self, mount: str) -> None: ...
    def read(self, mount: str, path: str) -> Current | None: ...
    def write(self, mount: str, path: str, data: Mapping[str, object], cas: int) -> int: ...
    def set_metadata(self, mount: str, path: str, custom_metadata: Mapping[str, str]) -> None: ...
    def read_metadata(self, mount: str, path: str) -> dict[str, Any] | None: ...
    def capabilities(self, paths: list[str]) -> dict[str, set[str]] | None: ...
    @property
    def request_counts(self) -> dict[str, int]: ...


@dataclass(frozen=True)
class VaultConfig:
    addr: str
    credentials: vault_auth.Credentials = field(default_factory=vault_auth.Credentials, repr=False)
    namespace: str | None = None
    cacert: str | None = None
    capath: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    skip_verify: bool = False
    tls_server_name: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    problems: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> VaultConfig | None:
        """The configuration the environment describes, or None without VAULT_ADDR."""
        addr = env.get("VAULT_ADDR", "").strip()
        if not addr:
            return None
        problems: list[str] = []
        if not addr.startswith(("http://", "https://")):
            problems.append(f"VAULT_ADDR must start with http:// or https://, not '{addr}'")
        if bool(env.get("VAULT_CLIENT_CERT")) != bool(env.get("VAULT_CLIENT_KEY")):
            problems.append("set both VAULT_CLIENT_CERT and VAULT_CLIENT_KEY, or neither")
        credentials = vault_auth.from_env(env)
        return cls(
            addr=addr.rstrip("/"),
            credentials=credentials,
            namespace=env.get("VAULT_NAMESPACE") or None,
            cacert=env.get("VAULT_CACERT") or None,
            capath=env.get("VAULT_CAPATH") or None,
            client_cert=env.get("VAULT_CLIENT_CERT") or None,
            client_key=env.get("VAULT_CLIENT_KEY") or None,
            skip_verify=flag(env, "VAULT_SKIP_VERIFY"),
            tls_server_name=env.get("VAULT_TLS_SERVER_NAME") or None,
            timeout=_number(env, "VAULT_CLIENT_TIMEOUT", DEFAULT_TIMEOUT, problems),
            max_retries=int(_number(env, "VAULT_MAX_RETRIES", DEFAULT_MAX_RETRIES, problems, minimum=0)),
            problems=(*problems, *credentials.problems),
        )

    @property
    def verify(self) -> bool | str:
        if self.skip_verify:
            return False
        return self.cacert or self.capath or True

    def warnings(self) -> list[str]:
        if self.skip_verify and self.addr.startswith("https://"):
            return [f"VAULT_SKIP_VERIFY is set: the TLS certificate of {self.addr} is not verified"]
        return []


def _number(env: Mapping[str, str], name: str, default: float, problems: list[str], minimum: float = 0.001) -> float:
    raw = env.get(name, "").strip().lower().removesuffix("s")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < minimum:
        problems.append(f"{name} must be a number of at least {minimum:g}, not '{env[name]}'")
        return default
    return value


class HvacStore:
    """KV v2 through hvac, over kept-alive connections (one per worker thread).

    Each request is retried on 429, 5xx and refused or reset connections, VAULT_MAX_RETRIES
    times with capped exponential backoff and full jitter; never on other 4xx answers or a
    timeout. Every data write carries check-and-set, which makes a resent write safe. A
    token obtained by login is renewed by logging in again when Vault starts refusing it.
    """

    def __init__(self, config: VaultConfig) -> None:
        if config.problems:
            raise VaultConfigError("; ".join(config.problems))
        credentials = config.credentials
        if not credentials.token and not credentials.login:
            raise VaultConfigError(
                f"no Vault token for {config.addr}: set VAULT_TOKEN, write ~/.vault-token, "
                f"or choose a login with {vault_auth.METHOD_ENV}"
            )
        import hvac

        from secret_contract.vault_http import KeepAliveSession

        self.config = config
        self._session = KeepAliveSession(tls_server_name=config.tls_server_name)
        cert = (config.client_cert, config.client_key) if config.client_cert else None
        self._hvac = hvac.Client(
            url=config.addr,
            token=credentials.token,
            namespace=config.namespace,
            verify=config.verify,
            cert=cert,
            timeout=config.timeout,
            session=self._session,
        )
        self._checked_mounts: set[str] = set()
        self._lock = threading.Lock()
        self._login_generation = 0
        if credentials.login:
            self._login()

    @property
    def request_counts(self) -> dict[str, int]:
        """HTTP requests made so far, by method."""
        return dict(self._session.counts)

    def check_mount(self, mount: str) -> None:
        """Refuse a mount that is missing or not KV version 2 (a v1 mount would take
        `data/...` as a literal path and scatter secrets)."""
        with self._lock:
            if mount in self._checked_mounts:
                return
        info = self._call(
            "look up the mount", mount, "", lambda c: c.adapter.get(f"/v1/sys/internal/ui/mounts/{mount}")
        )
        info = info["data"]
        found = str(info.get("path", "")).rstrip("/")
        version = str((info.get("options") or {}).get("version", "1"))
        if info.get("type") not in ("kv", "generic") or found != mount:
            raise VaultRequestFailed(f"{self.config.addr}: '{mount}' is not a KV mount (found '{found}/')")
        if version != "2":
            raise VaultRequestFailed(
                f"{self.config.addr}: mount '{mount}' is KV version {version}; secret-contract needs KV version 2"
            )
        with self._lock:
            self._checked_mounts.add(mount)

    def read(self, mount: str, path: str) -> Current | None:
        try:
            body = self._call(
                "read",
                mount,
                path,
                lambda c: c.secrets.kv.v2.read_secret_version(path, mount_point=mount, raise_on_deleted_version=True),
            )
        except _NotFound as missing:
            meta = (missing.body.get("data") or {}).get("metadata") if isinstance(missing.body, dict) else None
            if not meta:
                return None
            # The latest version was deleted or destroyed: its number is what CAS needs.
            return Current(data={}, version=int(meta.get("version", 0)), custom_metadata=_custom(meta), deleted=True)
        data, meta = body["data"].get("data") or {}, body["data"]["metadata"]
        return Current(data=data, version=int(meta["version"]), custom_metadata=_custom(meta))

    def write(self, mount: str, path: str, data: Mapping[str, object], cas: int) -> int:
        body = self._call(
            "write",
            mount,
            path,
            lambda c: c.secrets.kv.v2.create_or_update_secret(path, secret=dict(data), cas=cas, mount_point=mount),
            cas=cas,
        )
        return int(body["data"]["version"])

    def set_metadata(self, mount: str, path: str, custom_metadata: Mapping[str, str]) -> None:
        """Merge keys into custom_metadata (HTTP PATCH), leaving the others and the
        version settings as they are (a POST would replace them)."""
        self._call(
            "write metadata of",
            mount,
            path,
            lambda c: c.adapter.request(
                "PATCH",
                f"/v1/{mount}/metadata/{path}",
                json={"custom_metadata": dict(custom_metadata)},
                headers={"Content-Type": "application/merge-patch+json"},
            ),
        )

    def read_metadata(self, mount: str, path: str) -> dict[str, Any] | None:
        try:
            body = self._call(
                "read metadata of", mount, path, lambda c: c.secrets.kv.v2.read_secret_metadata(path, mount_point=mount)
            )
        except _NotFound:
            return None
        return dict(body["data"])

    def capabilities(self, paths: list[str]) -> dict[str, set[str]] | None:
        """The token's capabilities on each API path (`mount/data/...`), or None where the
        token may not ask (then writes find out for themselves)."""
        found: dict[str, set[str]] = {}
        for start in range(0, len(paths), CAPABILITY_BATCH):
            batch = paths[start : start + CAPABILITY_BATCH]
            try:
                body = self._call(
                    "check capabilities on",
                    "sys",
                    "capabilities-self",
                    lambda c, batch=batch: c.adapter.post("/v1/sys/capabilities-self", json={"paths": batch}),
                )
            except (VaultPermissionDenied, VaultRequestFailed, _NotFound):
                return None
            data = body.get("data", body)
            found.update({path: set(data.get(path) or []) for path in batch})
        return found

    def list(self, mount: str, prefix: str = "") -> Iterator[str]:
        """Every secret path under `prefix`, depth first, in Vault's (sorted) order."""
        try:
            body = self._call("list", mount, prefix, lambda c: c.secrets.kv.v2.list_secrets(prefix, mount_point=mount))
        except _NotFound:
            return
        for key in body["data"]["keys"]:
            child = f"{prefix.rstrip('/')}/{key}".lstrip("/") if prefix else key
            if key.endswith("/"):
                yield from self.list(mount, child)
            else:
                yield child

    def delete(self, mount: str, path: str) -> None:
        self._call(
            "delete", mount, path, lambda c: c.secrets.kv.v2.delete_metadata_and_all_versions(path, mount_point=mount)
        )

    def _call(self, op: str, mount: str, path: str, request: Callable[[Any], T], cas: int | None = None) -> T:
        """One Vault request, retried as the class docstring says."""
        relogged = False
        for attempt in range(self.config.max_retries + 1):
            generation = self._login_generation
            try:
                with self._translate(op, mount, path, cas):
                    return request(self._hvac)
            except VaultPermissionDenied:
                if self.config.credentials.login is None or relogged:
                    raise
                self._login(after=generation)  # the login token may have expired
                relogged = True
            except _Retryable as exc:
                if attempt == self.config.max_retries:
                    raise exc.error from None
                time.sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)))
        raise AssertionError("unreachable")

    def _login(self, after: int | None = None) -> None:
        """Log in with the configured method; concurrent callers log in once."""
        login = self.config.credentials.login
        assert login is not None
        with self._lock:
            if after is not None and self._login_generation != after:
                return  # another thread already renewed the token
            try:
                with self._translate(f"log in ({login.describe()}) for", "auth", login.mount):
                    response = self._hvac.adapter.post(login.path, json=dict(login.body))
            except _Retryable as exc:
                raise exc.error from None
            except (_NotFound, VaultPermissionDenied):
                # Vault answers 403 both for refused credentials and for a path with no auth method.
                raise VaultPermissionDenied(
                    f"{self.config.addr}: {login.describe()} was refused: wrong credentials or role, or no "
                    f"{login.method} auth method at auth/{login.mount} (see {vault_auth.MOUNT_ENV})"
                ) from None
            self._hvac.token = response["auth"]["client_token"]
            self._login_generation += 1

    @contextmanager
    def _translate(self, op: str, mount: str, path: str, cas: int | None = None) -> Iterator[None]:
        import hvac.exceptions as hx
        import requests

        where = f"{mount}/{path}".rstrip("/")
        addr = self.config.addr
        try:
            yield
        except hx.InvalidPath as exc:
            raise _NotFound(getattr(exc, "json", None)) from None
        except hx.Forbidden:
            raise VaultPermissionDenied(
                f"{addr}: permission denied to {op} {where}: the token's policy lacks the capability, "
                "or the token expired"
            ) from None
        except hx.Unauthorized:
            raise VaultPermissionDenied(
                f"{addr}: the token was rejected (expired or invalid) on {op} {where}"
            ) from None
        except hx.InvalidRequest as exc:
            reasons = "; ".join(str(e) for e in (exc.errors or []))
            if cas is not None and "check-and-set" in reasons:
                raise CasConflict(where, cas) from None
            raise VaultRequestFailed(f"{addr}: cannot {op} {where}: {reasons or 'bad request'}") from None
        except (hx.VaultDown, hx.VaultNotInitialized) as exc:
            raise _Retryable(
                VaultUnavailable(f"{addr}: Vault is sealed or not initialized ({type(exc).__name__}) on {op} {where}")
            ) from None
        except (hx.InternalServerError, hx.BadGateway, hx.RateLimitExceeded) as exc:
            status = {"InternalServerError": 500, "BadGateway": 502, "RateLimitExceeded": 429}[type(exc).__name__]
            raise _Retryable(VaultUnavailable(f"{addr}: HTTP {status} from Vault on {op} {where}")) from None
        except hx.UnexpectedError as exc:
            raise _Retryable(
                VaultUnavailable(f"{addr}: unexpected answer from Vault on {op} {where} ({exc})")
            ) from None
        except requests.exceptions.SSLError:
            raise VaultUnavailable(
                f"{addr}: TLS verification failed; set VAULT_CACERT to the CA that signed Vault's certificate"
            ) from None
        except requests.exceptions.Timeout:
            raise VaultUnavailable(
                f"{addr}: no answer within {self.config.timeout:g}s (VAULT_CLIENT_TIMEOUT) to {op} {where}"
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise _Retryable(VaultUnavailable(f"{addr}: cannot connect to Vault ({exc})")) from None
        except hx.VaultError as exc:
            raise VaultRequestFailed(f"{addr}: cannot {op} {where} ({type(exc).__name__})") from None


class _NotFound(SecretContractError):
    """A 404, with the response body (a deleted version's body carries its metadata)."""

    def __init__(self, body: Any) -> None:
        super().__init__("not found")
        self.body = body


class _Retryable(Exception):
    """Carries the error to raise once retries are used up."""

    def __init__(self, error: SecretContractError) -> None:
        super().__init__(str(error))
        self.error = error


def _custom(metadata: Mapping[str, Any]) -> dict[str, str]:
    return dict(metadata.get("custom_metadata") or {})
