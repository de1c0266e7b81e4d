"""Settings: built-in defaults, overridden by the environment (or a kpt ConfigMap), then by
the contract's optional `spec.externalSecret` / `spec.vault`, then by a secret's own
`externalSecret`. The most specific wins; template labels and annotations merge by key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from secret_contract import contract as contract_model
from secret_contract import rules
from secret_contract.contract import Contract, ExternalSecretSettings, Secret
from secret_contract.results import Result, error

DEFAULT_API_VERSION = "external-secrets.io/v1"
DEFAULT_REFRESH_INTERVAL = "1h"
DEFAULT_STORE_NAME = "vault-backend"
DEFAULT_STORE_KIND = "ClusterSecretStore"
DEFAULT_MOUNT = "secret"
DEFAULT_LAYOUT = "stack"

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Source:
    """One setting: its environment variable and its key in a kpt ConfigMap functionConfig."""

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
STRICT_ENV = "SECRET_CONTRACT_STRICT"
STRICT_CONFIG_KEY = "strict"


@dataclass(frozen=True)
class Defaults:
    """Function-level settings: what applies where a contract says nothing."""

    api_version: str = DEFAULT_API_VERSION
    refresh_interval: str = DEFAULT_REFRESH_INTERVAL
    store_name: str = DEFAULT_STORE_NAME
    store_kind: str = DEFAULT_STORE_KIND
    mount: str = DEFAULT_MOUNT
    layout: str = DEFAULT_LAYOUT
    prefix: str = ""
    strict: bool = False


@dataclass(frozen=True)
class Resolved:
    """Everything needed to write one secret and emit its ExternalSecret."""

    api_version: str
    refresh_interval: str
    store_name: str
    store_kind: str
    mount: str
    key: str  # the Vault path inside the mount; ESO's remoteRef.key
    template_type: str | None = None
    template_labels: Mapping[str, str] = field(default_factory=dict)
    template_annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def full_path(self) -> str:
        return f"{self.mount}/{self.key}"


def load(env: Mapping[str, str], config: Mapping[str, Any] | None = None) -> tuple[Defaults, list[Result]]:
    """Defaults from a kpt ConfigMap's data and the environment (the environment wins)."""
    config = config or {}
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    findings: list[Result] = []
    for src in SOURCES:
        for name, raw in (
            (f"functionConfig data.{src.config_key}", config.get(src.config_key)),
            (src.env, env.get(src.env)),
        ):
            if raw not in (None, ""):
                values[src.attr], origin[src.attr] = str(raw), name
    for src in SOURCES:
        if src.attr in values:
            findings.extend(_check(src, values[src.attr], origin[src.attr]))
    strict_raw = env.get(STRICT_ENV, config.get(STRICT_CONFIG_KEY, ""))
    strict = str(strict_raw).strip().lower()
    if strict not in TRUE_WORDS | FALSE_WORDS:
        findings.append(error(f"{STRICT_ENV} must be true or false", rule="settings"))
    values["strict"] = strict in TRUE_WORDS
    return Defaults(**values), findings


def flag(env: Mapping[str, str], name: str) -> bool:
    """A boolean environment switch: 1/true/yes/on."""
    return env.get(name, "").strip().lower() in TRUE_WORDS


def _check(src: Source, value: str, origin: str) -> list[Result]:
    if src.attr in ("mount", "prefix"):
        ok = rules.is_mount(value)
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


def vault_key(layout: str, stack: str, namespace: str, name: str, prefix: str = "") -> str:
    """The path of a secret inside its mount."""
    key = f"{namespace}/{name}" if layout == "namespace" else f"{stack}/{namespace}/{name}"
    return f"{prefix}/{key}" if prefix else key


def stack_folder(c: Contract, defaults: Defaults) -> str | None:
    """The folder inside the mount that holds only this stack's secrets (stack layout)."""
    if (c.vault.layout or defaults.layout) != "stack":
        return None
    prefix = c.vault.prefix if c.vault.prefix is not None else defaults.prefix
    return f"{prefix}/{c.stack}/" if prefix else f"{c.stack}/"


def resolve(c: Contract, secret: Secret, defaults: Defaults) -> Resolved:
    """Effective settings of one secret: secret over contract over defaults."""
    layers = (secret.external_secret, c.external_secret)

    def pick(attr: str, default: str) -> str:
        return next((v for v in (getattr(layer, attr) for layer in layers) if v is not None), default)

    return Resolved(
        api_version=pick("api_version", defaults.api_version),
        refresh_interval=pick("refresh_interval", defaults.refresh_interval),
        store_name=pick("store_name", defaults.store_name),
        store_kind=pick("store_kind", defaults.store_kind),
        mount=c.vault.mount or defaults.mount,
        key=vault_key(
            c.vault.layout or defaults.layout,
            c.stack,
            secret.namespace,
            secret.name,
            c.vault.prefix if c.vault.prefix is not None else defaults.prefix,
        ),
        template_type=next((layer.template_type for layer in layers if layer.template_type), None),
        template_labels=_merge(layers, "template_labels"),
        template_annotations=_merge(layers, "template_annotations"),
    )


def _merge(layers: tuple[ExternalSecretSettings, ...], attr: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for layer in reversed(layers):  # contract first, the secret's own keys win
        merged.update(getattr(layer, attr))
    return merged
