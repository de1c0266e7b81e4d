"""How to reach Vault, read from the environment the way the Vault CLI reads it.

VAULT_ADDR, VAULT_TOKEN (else ~/.vault-token), VAULT_NAMESPACE, VAULT_CACERT, VAULT_CAPATH,
VAULT_CLIENT_CERT, VAULT_CLIENT_KEY, VAULT_SKIP_VERIFY, VAULT_TLS_SERVER_NAME,
VAULT_CLIENT_TIMEOUT, VAULT_MAX_RETRIES, VAULT_PROXY_ADDR and the usual proxy variables; other
auth methods as `vault_auth` reads them. OpenBao's `BAO_*` names stand in for these as `bao`
reads them (`vault_env`). Nothing here talks to Vault: problems found in the environment are
collected in `VaultConfig.problems`, for `vault.VaultStore` to refuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from secret_contract import vault_auth, vault_env
from secret_contract.settings import flag
from secret_contract.vault_http import TLS, Proxies, display_address

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 2  # the Vault CLI's default


@dataclass(frozen=True)
class VaultConfig:
    # The address and proxies may carry user info (a password): shown through display_addr only.
    addr: str = field(repr=False)
    credentials: vault_auth.Credentials = field(default_factory=vault_auth.Credentials, repr=False)
    namespace: str | None = None
    tls: TLS = field(default_factory=TLS)
    proxies: Proxies = field(default_factory=Proxies, repr=False)
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    problems: tuple[str, ...] = ()
    addr_from: str | None = None  # the project file the address came from, to name in errors

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> VaultConfig | None:
        """The configuration the environment describes, or None without VAULT_ADDR (or BAO_ADDR)."""
        named = vault_env.source(env, "ADDR")
        env = vault_env.with_openbao_names(env)
        addr = env.get("VAULT_ADDR", "").strip()
        if not addr:
            return None
        addr_from = env.get(vault_auth.ADDR_FROM_ENV, "").strip() or None
        if addr_from:
            named = f"vaultAddr in {addr_from}"
        problems: list[str] = []
        if not addr.startswith(("http://", "https://")) or not urlsplit(addr).hostname:
            problems.append(f"{named} must be an http:// or https:// address, not '{display_address(addr)}'")
        elif urlsplit(addr).path.rstrip("/").endswith("/v1"):
            # Every request adds /v1 itself: an address with it would ask for /v1/v1/...
            base = display_address(addr.rstrip("/").removesuffix("/v1"))
            problems.append(f"{named} is '{display_address(addr)}': leave out the API prefix /v1 ({base})")
        if bool(env.get("VAULT_CLIENT_CERT")) != bool(env.get("VAULT_CLIENT_KEY")):
            problems.append("set both VAULT_CLIENT_CERT and VAULT_CLIENT_KEY, or neither")
        credentials = vault_auth.from_env(env)
        return cls(
            addr=addr.rstrip("/"),
            credentials=credentials,
            namespace=env.get("VAULT_NAMESPACE") or None,
            tls=TLS(
                cacert=env.get("VAULT_CACERT") or None,
                capath=env.get("VAULT_CAPATH") or None,
                client_cert=env.get("VAULT_CLIENT_CERT") or None,
                client_key=env.get("VAULT_CLIENT_KEY") or None,
                skip_verify=flag(env, "VAULT_SKIP_VERIFY"),
                server_name=env.get("VAULT_TLS_SERVER_NAME") or None,
            ),
            proxies=Proxies.from_env(env),
            timeout=_number(env, "VAULT_CLIENT_TIMEOUT", DEFAULT_TIMEOUT, problems),
            max_retries=int(_number(env, "VAULT_MAX_RETRIES", DEFAULT_MAX_RETRIES, problems, minimum=0)),
            problems=(*problems, *credentials.problems),
            addr_from=addr_from,
        )

    @property
    def display_addr(self) -> str:
        return display_address(self.addr)

    @property
    def named_addr(self) -> str:
        """The address as errors show it: without user info, and saying where it came from
        when a project file chose it (a clone's file can point at a server nobody meant)."""
        if self.addr_from:
            return f"{self.display_addr} (vaultAddr from {self.addr_from})"
        return self.display_addr

    def warnings(self) -> list[str]:
        if self.tls.skip_verify and self.addr.startswith("https://"):
            return [f"VAULT_SKIP_VERIFY is set: the TLS certificate of {self.display_addr} is not verified"]
        return []


def _number(env: Mapping[str, str], name: str, default: float, problems: list[str], minimum: float = 0.001) -> float:
    raw = env.get(name, "").strip().lower().removesuffix("s")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < minimum or value != value:
        problems.append(f"{name} must be a number of at least {minimum:g}")
        return default
    return value
