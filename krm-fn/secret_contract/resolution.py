"""Each secret's effective settings: where its values live in Vault and the ExternalSecrets
(views) over them. A view's own settings win over its secret's, then the contract's, then the
function-level defaults (`settings.Defaults`); template labels and annotations merge by key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType

from secret_contract.contract import Contract, ExternalSecretSettings, Secret
from secret_contract.layout import VaultLayout
from secret_contract.settings import Defaults


@dataclass(frozen=True, slots=True)
class ResolvedView:
    """One ExternalSecret over a secret's Vault values, with its effective settings."""

    name: str
    api_version: str
    refresh_interval: str
    store_name: str
    store_kind: str
    target_name: str
    keys: tuple[tuple[str, str], ...]  # (Secret key, Vault property), in the order written
    template_type: str | None = None
    template_labels: Mapping[str, str] = field(default_factory=dict)
    template_annotations: Mapping[str, str] = field(default_factory=dict)
    template_data: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Resolved:
    """Everything needed to write one secret and emit its ExternalSecrets: where its values
    live in Vault, and its views (the first is the ExternalSecret named after the secret)."""

    layout: VaultLayout
    path: str  # the Vault path inside the mount; ESO's remoteRef.key
    views: tuple[ResolvedView, ...]
    former_paths: tuple[str, ...] = ()

    @property
    def mount(self) -> str:
        return self.layout.mount

    @property
    def where(self) -> str:
        return f"{self.mount}/{self.path}"


@dataclass(frozen=True, slots=True)
class ResolvedContract:
    """A valid contract with the effective settings of each of its secrets."""

    contract: Contract
    secrets: tuple[Resolved, ...]

    @property
    def stack(self) -> str:
        return self.contract.stack

    @property
    def layout(self) -> VaultLayout:
        """Where the contract's secrets live (one layout per contract: `spec.vault` is its own)."""
        return self.secrets[0].layout


def layout(c: Contract, defaults: Defaults) -> VaultLayout:
    scheme = c.vault.layout or defaults.layout
    return VaultLayout(
        mount=c.vault.mount or defaults.mount,
        scheme="stack" if scheme == "stack" else "namespace",
        prefix=c.vault.prefix if c.vault.prefix is not None else defaults.prefix,
    )


def resolve(c: Contract, secret: Secret, defaults: Defaults, where: VaultLayout | None = None) -> Resolved:
    """Effective settings of one secret: a view's own over the secret's over the contract's
    over the defaults. `where` is the contract's layout, when already known."""
    where = where or layout(c, defaults)
    declared = _same_keys(tuple(sorted(e.key for e in secret.data)))
    views = [
        _view(secret.name, secret.external_secret, (secret.external_secret, c.external_secret), declared, defaults)
    ]
    views += [
        _view(v.name, v.settings, (v.settings, secret.external_secret, c.external_secret), declared, defaults)
        for v in secret.views
    ]
    return Resolved(
        layout=where,
        path=where.path(c.stack, secret.namespace, secret.name),
        views=tuple(views),
        former_paths=where.former_paths(c.stack, secret.namespace, secret.name),
    )


def _view(
    name: str,
    own: ExternalSecretSettings,
    layers: tuple[ExternalSecretSettings, ...],
    declared: tuple[tuple[str, str], ...],
    defaults: Defaults,
) -> ResolvedView:
    def pick(attr: str, default: str) -> str:
        return next((v for v in (getattr(layer, attr) for layer in layers) if v is not None), default)

    return ResolvedView(
        name=name,
        api_version=pick("api_version", defaults.api_version),
        refresh_interval=pick("refresh_interval", defaults.refresh_interval),
        store_name=pick("store_name", defaults.store_name),
        store_kind=pick("store_kind", defaults.store_kind),
        target_name=own.target_name or name,
        keys=own.keys or declared,
        template_type=next((layer.template_type for layer in layers if layer.template_type), None),
        template_labels=_merge(layers, "template_labels"),
        template_annotations=_merge(layers, "template_annotations"),
        template_data=dict(own.template_data) or _NOTHING,
    )


def resolve_all(contracts: list[Contract], defaults: Defaults) -> list[ResolvedContract]:
    resolved = []
    for c in contracts:
        where = layout(c, defaults)
        resolved.append(ResolvedContract(c, tuple(resolve(c, s, defaults, where) for s in c.secrets)))
    return resolved


@lru_cache(maxsize=4096)
def _same_keys(keys: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Each key as its own Vault property, one tuple shared by the many secrets with the same
    keys (memory: a build may hold 100,000 secrets)."""
    return tuple((key, key) for key in keys)


_NOTHING: Mapping[str, str] = MappingProxyType({})


def _merge(layers: tuple[ExternalSecretSettings, ...], attr: str) -> Mapping[str, str]:
    merged: dict[str, str] = {}
    for layer in reversed(layers):  # contract first, the most specific layer's keys win
        merged.update(getattr(layer, attr))
    return merged or _NOTHING
