"""Vault KV v2 access: the only module that imports hvac.

Configured like the Vault CLI, by environment: VAULT_ADDR, VAULT_TOKEN (else
~/.vault-token), VAULT_NAMESPACE, VAULT_CACERT, VAULT_CAPATH, VAULT_CLIENT_CERT,
VAULT_CLIENT_KEY, VAULT_SKIP_VERIFY, VAULT_CLIENT_TIMEOUT. hvac errors are translated
here into `errors.*`, whose messages name the address and path but never a value.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from secret_contract.errors import (
    CasConflict,
    SecretContractError,
    VaultPermissionDenied,
    VaultRequestFailed,
    VaultUnavailable,
)
from secret_contract.plan import Current
from secret_contract.settings import flag

DEFAULT_TIMEOUT = 30.0


class SecretStore(Protocol):
    """The narrow seam the sync step needs; HvacStore is the implementation."""

    def check_mount(self, mount: str) -> None: ...
    def read(self, mount: str, path: str) -> Current | None: ...
    def write(self, mount: str, path: str, data: Mapping[str, object], cas: int) -> int: ...
    def set_metadata(self, mount: str, path: str, custom_metadata: Mapping[str, str]) -> None: ...
    def read_metadata(self, mount: str, path: str) -> dict[str, Any] | None: ...
    @property
    def request_counts(self) -> dict[str, int]: ...


@dataclass(frozen=True)
class VaultConfig:
    addr: str
    token: str | None = field(default=None, repr=False)
    namespace: str | None = None
    cacert: str | None = None
    capath: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    skip_verify: bool = False
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> VaultConfig | None:
        """The configuration the environment describes, or None without VAULT_ADDR."""
        addr = env.get("VAULT_ADDR", "").strip()
        if not addr:
            return None
        token = env.get("VAULT_TOKEN", "").strip() or _token_file(env)
        return cls(
            addr=addr.rstrip("/"),
            token=token or None,
            namespace=env.get("VAULT_NAMESPACE") or None,
            cacert=env.get("VAULT_CACERT") or None,
            capath=env.get("VAULT_CAPATH") or None,
            client_cert=env.get("VAULT_CLIENT_CERT") or None,
            client_key=env.get("VAULT_CLIENT_KEY") or None,
            skip_verify=flag(env, "VAULT_SKIP_VERIFY"),
            timeout=_timeout(env.get("VAULT_CLIENT_TIMEOUT", "")),
        )

    @property
    def verify(self) -> bool | str:
        if self.skip_verify:
            return False
        return self.cacert or self.capath or True


def _token_file(env: Mapping[str, str]) -> str:
    home = env.get("HOME") or os.path.expanduser("~")
    try:
        return Path(home, ".vault-token").read_text("utf-8").strip()
    except OSError:
        return ""


def _timeout(raw: str) -> float:
    text = raw.strip().lower().removesuffix("s")
    try:
        value = float(text)
    except ValueError:
        return DEFAULT_TIMEOUT
    return value if value > 0 else DEFAULT_TIMEOUT


class HvacStore:
    """KV v2 through hvac, over kept-alive connections (one per worker thread)."""

    def __init__(self, config: VaultConfig) -> None:
        if not config.token:
            raise VaultPermissionDenied(
                f"no Vault token for {config.addr}: set VAULT_TOKEN or write it to ~/.vault-token"
            )
        import hvac

        from secret_contract.vault_http import KeepAliveSession

        self.config = config
        self._session = KeepAliveSession()
        cert = (config.client_cert, config.client_key) if config.client_cert else None
        self._hvac = hvac.Client(
            url=config.addr,
            token=config.token,
            namespace=config.namespace,
            verify=config.verify,
            cert=cert,
            timeout=config.timeout,
            session=self._session,
        )
        self._checked_mounts: set[str] = set()
        self._lock = threading.Lock()

    @property
    def request_counts(self) -> dict[str, int]:
        """HTTP requests made so far, by method."""
        return dict(self._session.counts)

    def _client(self) -> Any:
        return self._hvac

    def check_mount(self, mount: str) -> None:
        """Refuse a mount that is missing or not KV version 2 (a v1 mount would take
        `data/...` as a literal path and scatter secrets)."""
        with self._lock:
            if mount in self._checked_mounts:
                return
        with self._translate("look up the mount", mount, ""):
            info = self._client().adapter.get(f"/v1/sys/internal/ui/mounts/{mount}")["data"]
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
            with self._translate("read", mount, path):
                body = self._client().secrets.kv.v2.read_secret_version(
                    path, mount_point=mount, raise_on_deleted_version=True
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
        with self._translate("write", mount, path, cas=cas):
            body = self._client().secrets.kv.v2.create_or_update_secret(
                path, secret=dict(data), cas=cas, mount_point=mount
            )
        return int(body["data"]["version"])

    def set_metadata(self, mount: str, path: str, custom_metadata: Mapping[str, str]) -> None:
        """Merge keys into custom_metadata (HTTP PATCH), leaving the others and the
        version settings as they are (a POST would replace them)."""
        with self._translate("write metadata of", mount, path):
            self._client().adapter.request(
                "PATCH",
                f"/v1/{mount}/metadata/{path}",
                json={"custom_metadata": dict(custom_metadata)},
                headers={"Content-Type": "application/merge-patch+json"},
            )

    def read_metadata(self, mount: str, path: str) -> dict[str, Any] | None:
        try:
            with self._translate("read metadata of", mount, path):
                return self._client().secrets.kv.v2.read_secret_metadata(path, mount_point=mount)["data"]
        except _NotFound:
            return None

    def list(self, mount: str, prefix: str = "") -> Iterator[str]:
        """Every secret path under `prefix`, depth first, in Vault's (sorted) order."""
        try:
            with self._translate("list", mount, prefix):
                keys = self._client().secrets.kv.v2.list_secrets(prefix, mount_point=mount)["data"]["keys"]
        except _NotFound:
            return
        for key in keys:
            child = f"{prefix.rstrip('/')}/{key}".lstrip("/") if prefix else key
            if key.endswith("/"):
                yield from self.list(mount, child)
            else:
                yield child

    def delete(self, mount: str, path: str) -> None:
        with self._translate("delete", mount, path):
            self._client().secrets.kv.v2.delete_metadata_and_all_versions(path, mount_point=mount)

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
                f"{addr}: permission denied to {op} {where}: the token's policy lacks the capability"
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
            raise VaultUnavailable(f"{addr}: Vault is sealed or not initialized ({type(exc).__name__})") from None
        except (hx.InternalServerError, hx.BadGateway, hx.RateLimitExceeded, hx.UnexpectedError) as exc:
            raise VaultUnavailable(f"{addr}: Vault failed to {op} {where} ({type(exc).__name__})") from None
        except requests.exceptions.SSLError:
            raise VaultUnavailable(
                f"{addr}: TLS verification failed; set VAULT_CACERT to the CA that signed Vault's certificate"
            ) from None
        except requests.exceptions.Timeout:
            raise VaultUnavailable(
                f"{addr}: no answer within {self.config.timeout:g}s (VAULT_CLIENT_TIMEOUT) to {op} {where}"
            ) from None
        except requests.exceptions.ConnectionError:
            raise VaultUnavailable(f"{addr}: cannot connect to Vault") from None
        except hx.VaultError as exc:
            raise VaultRequestFailed(f"{addr}: cannot {op} {where} ({type(exc).__name__})") from None


class _NotFound(SecretContractError):
    """A 404, with the response body (a deleted version's body carries its metadata)."""

    def __init__(self, body: Any) -> None:
        super().__init__("not found")
        self.body = body


def _custom(metadata: Mapping[str, Any]) -> dict[str, str]:
    return dict(metadata.get("custom_metadata") or {})
