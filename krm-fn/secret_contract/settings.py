"""Function-level settings: built-in defaults, overridden by the project file, then a kpt
ConfigMap, then the environment. What a contract and its secrets say over these is resolved per
secret in `resolution`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from secret_contract import contract as contract_model
from secret_contract.layout import DEFAULT_SCHEME
from secret_contract.results import Result, error
from secret_contract.rules_contract import is_mount

DEFAULT_API_VERSION = "external-secrets.io/v1"
DEFAULT_REFRESH_INTERVAL = "1h"
DEFAULT_STORE_NAME = "vault-backend"
DEFAULT_STORE_KIND = "ClusterSecretStore"
DEFAULT_MOUNT = "secret"

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Source:
    """One setting: its environment variable and its key in a kpt ConfigMap or project file."""

    attr: str
    env: str
    config_key: str
    fragment: tuple[str, ...]  # where it sits in the schema's externalSecret/vault definition


SOURCES = (
    Source("api_version", "SECRET_CONTRACT_ES_API_VERSION", "apiVersion", ("externalSecret", "apiVersion")),
    Source(
        "refresh_interval", "SECRET_CONTRACT_REFRESH_INTERVAL", "refreshInterval", ("externalSecret", "refreshInterval")
    ),
    Source("store_name", "SECRET_CONTRACT_STORE_NAME", "storeName", ("externalSecret", "secretStoreRef", "name")),
    Source("store_kind", "SECRET_CONTRACT_STORE_KIND", "storeKind", ("externalSecret", "secretStoreRef", "kind")),
    Source("mount", "SECRET_CONTRACT_VAULT_MOUNT", "vaultMount", ("vault", "mount")),
    Source("layout", "SECRET_CONTRACT_PATH_LAYOUT", "pathLayout", ("vault", "layout")),
    Source("prefix", "SECRET_CONTRACT_PATH_PREFIX", "pathPrefix", ("vault", "prefix")),
)
SWITCHES = {"strict": ("SECRET_CONTRACT_STRICT", "strict"), "dry_run": ("SECRET_CONTRACT_DRY_RUN", "dryRun")}
CONFIG_KEYS = frozenset([*(s.config_key for s in SOURCES), *(key for _, key in SWITCHES.values())])
CI_ENV = "CI"


@dataclass(frozen=True)
class Defaults:
    """Function-level settings: what applies where a contract says nothing."""

    api_version: str = DEFAULT_API_VERSION
    refresh_interval: str = DEFAULT_REFRESH_INTERVAL
    store_name: str = DEFAULT_STORE_NAME
    store_kind: str = DEFAULT_STORE_KIND
    mount: str = DEFAULT_MOUNT
    layout: str = DEFAULT_SCHEME
    prefix: str = ""
    strict: bool = False
    strict_reason: str = ""  # why strict is on when nobody set it
    dry_run: bool = False
    lenient: bool = False  # strictness turned off on purpose (set to false, not merely unset)


def load(
    env: Mapping[str, str], config: Mapping[str, Any] | None = None, project: Mapping[str, Any] | None = None
) -> tuple[Defaults, list[Result]]:
    """Defaults from the project file, a kpt ConfigMap's data and the environment (the
    environment wins)."""
    layers = [("project file", project or {}), ("functionConfig data", config or {})]
    # `project` holds only known keys: `project.find` reports the others as problems of the file.
    findings = [
        error(
            f"functionConfig data: unknown setting '{key}' (known: {', '.join(sorted(CONFIG_KEYS))})", rule="settings"
        )
        for key in config or {}
        if key not in CONFIG_KEYS
    ]
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for src in SOURCES:
        found = _layered(env, src.env, src.config_key, layers)
        if found is not None:
            origin[src.attr], raw = found
            values[src.attr] = _text(raw)
            findings.extend(_check(src, values[src.attr], origin[src.attr]))
    for attr, (env_name, key) in SWITCHES.items():
        found = _layered(env, env_name, key, layers)
        parsed = _switch(found[1] if found else None)
        if parsed is None:
            findings.append(error(f"{found[0] if found else env_name} must be true or false", rule="settings"))
        values[attr] = bool(parsed)
        if attr == "strict":
            values["lenient"] = found is not None and parsed is False
    if strictness_unset(env, layers) and _switch(env.get(CI_ENV)):
        # In CI nobody reads a warning: a build that could not write Vault must fail there.
        values["strict"] = True
        values["strict_reason"] = f"{CI_ENV} is set; {SWITCHES['strict'][0]}=false turns this off"
    return Defaults(**values), findings


def _layered(
    env: Mapping[str, str], env_name: str, key: str, layers: list[tuple[str, Mapping[str, Any]]]
) -> tuple[str, Any] | None:
    """(where, raw value) of a setting: the environment, else the ConfigMap, else the project file."""
    if env.get(env_name) not in (None, ""):
        return env_name, env[env_name]
    for name, data in reversed(layers):
        if data.get(key) not in (None, ""):
            return f"{name} {key}", data[key]
    return None


def strictness_unset(env: Mapping[str, str], layers: list[tuple[str, Mapping[str, Any]]]) -> bool:
    """Whether nobody set strictness, so that the CI rule applies."""
    env_name, key = SWITCHES["strict"]
    return _layered(env, env_name, key, layers) is None


def flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    """A boolean environment switch: 1/true/yes/on or 0/false/no/off; `default` when it is
    unset, empty or neither (a switch that is on by default stays on unless turned off)."""
    parsed = _switch(env.get(name)) if env.get(name, "").strip() else None
    return default if parsed is None else parsed


def _switch(raw: Any) -> bool | None:
    if isinstance(raw, bool):
        return raw
    word = str(raw if raw is not None else "").strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def _text(raw: Any) -> str:
    # An unquoted `refreshInterval: 0` arrives as a number; it means the string "0".
    return str(raw).lower() if isinstance(raw, bool) else str(raw)


def _check(src: Source, value: str, origin: str) -> list[Result]:
    if src.attr in ("mount", "prefix"):
        ok = is_mount(value)
        return [] if ok else [error(f"{origin}: '{value}' is not a safe Vault path", rule="settings")]
    fragment: dict[str, Any] = {}
    node = fragment
    for part in src.fragment[1:-1]:
        node = node.setdefault(part, {})
    node[src.fragment[-1]] = value
    return [
        error(f"{origin}: {r.message}", rule="settings")
        for r in contract_model.validate_fragment(src.fragment[0], fragment)
    ]
