"""A login with an auth method, performed by hvac over this package's transport.

hvac knows every auth method's request and answer; `vault_http` knows the TLS, proxy, redirect
and deadline settings. hvac is therefore given a stand-in for `requests.Session` that sends
through the transport, and is imported only when a login is configured (it costs a build
that uses a plain token nothing). Failures become `errors.*` exceptions naming the method.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from secret_contract import vault_auth
from secret_contract.errors import VaultPermissionDenied, VaultUnavailable
from secret_contract.vault_config import VaultConfig
from secret_contract.vault_http import Response, Transport, TransportError


def login_with_hvac(transport: Transport, config: VaultConfig, login: vault_auth.Login) -> str:
    import hvac
    import hvac.exceptions as hx

    client = hvac.Client(url=config.addr, namespace=config.namespace, session=_HvacSession(transport))
    addr = config.display_addr
    try:
        response = client.adapter.login(login.path, json=dict(login.body))
    except TransportError as exc:
        raise VaultUnavailable(f"{addr}: cannot log in ({login.describe()}): {exc}") from None
    except (hx.Forbidden, hx.InvalidRequest, hx.InvalidPath, hx.Unauthorized):
        # Vault answers 400 or 403 both for refused credentials and for a path with no auth method.
        raise VaultPermissionDenied(
            f"{addr}: {login.describe()} was refused: wrong credentials or role, or no "
            f"{login.method} auth method at auth/{login.mount} (see {vault_auth.MOUNT_ENV})"
        ) from None
    except hx.VaultError as exc:
        raise VaultUnavailable(f"{addr}: {login.describe()} failed ({type(exc).__name__})") from None
    except ValueError:
        raise VaultUnavailable(f"{addr}: {login.describe()}: the answer is not Vault's JSON") from None
    token = (response.get("auth") or {}).get("client_token") if isinstance(response, dict) else None
    if not isinstance(token, str):
        raise VaultUnavailable(f"{addr}: {login.describe()}: the answer carries no token")
    return token


class _HvacSession:
    """The part of `requests.Session` hvac's adapter uses, over this module's transport.

    hvac is constructed without verify, cert, proxies or timeout: the transport applies the
    configured ones to every request, and honours `allow_redirects`."""

    verify: Any = None
    cert: Any = None
    proxies: Any = None

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def request(
        self, method: str, url: str, headers: Mapping[str, str] | None = None, allow_redirects: bool = True, **kw: Any
    ) -> _HvacResponse:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        resp = self._transport.request(
            method, path, json=kw.get("json"), headers=headers, follow_redirects=allow_redirects
        )
        return _HvacResponse(resp)

    def close(self) -> None:
        pass


class _HvacResponse:
    def __init__(self, resp: Response) -> None:
        self._resp = resp
        self.status_code = resp.status
        self.content = resp.body
        self.url = resp.url
        self.reason = ""
        self.headers = resp.headers

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    @property
    def text(self) -> str:
        return ""  # hvac puts the text into exception messages; only its `errors` are used here

    def json(self) -> Any:
        try:
            return self._resp.json()
        except TransportError:
            raise ValueError("not JSON") from None
