"""What `list` shows: stored secrets with version, owners and key names (never values), under a
mount or for given contracts; and the folders a contract's secrets live in, which `remove` and
`prune` search too."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from secret_contract import ownership
from secret_contract.layout import VaultLayout
from secret_contract.model import Target
from secret_contract.resolution import ResolvedContract
from secret_contract.store import Entry, Progress, SecretStore, parallel

# --- list --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    where: str  # mount/path
    version: int
    state: str
    owners: tuple[str, ...]
    keys: tuple[str, ...]


def list_paths(store: SecretStore, mount: str, folder: str = "") -> list[str]:
    """Every secret path under `folder`, depth first, sorted."""
    store.check_mount(mount)
    found: list[str] = []
    pending = [folder]
    while pending:
        current = pending.pop()
        names = store.list(mount, current) or []
        for name in sorted(names, reverse=True):
            child = f"{current}{name}"
            if name.endswith("/"):
                pending.append(child)
            else:
                found.append(child)
    return sorted(found)


def rows(store: SecretStore, mount: str, paths: list[str], progress: Progress | None = None) -> list[Row]:
    entries = parallel(lambda p: store.read(mount, p), paths, progress=progress, phase="reading Vault")
    return [_row(mount, p, e) for p, e in zip(paths, entries, strict=True) if e is not None]


def _row(mount: str, path: str, entry: Entry) -> Row:
    owners = ownership.read(entry.custom_metadata)
    who = (f"managed by {owners.foreign_tool}",) if owners.foreign_tool else tuple(sorted(owners.declarations))
    return Row(f"{mount}/{path}", entry.version, entry.latest, who, tuple(sorted(entry.data)))


def contract_rows(
    store: SecretStore, contracts: list[ResolvedContract], targets: list[Target], progress: Progress | None = None
) -> list[Row]:
    """The secrets of the contracts: those each declares in its layout's mount, and those in
    its folders that its stack owns (what it left behind)."""
    found: dict[str, Row] = {}
    for contract in contracts:
        stack = contract.stack
        mine = declared_by(stack, targets)
        layout, folders = contract_folders(contract)
        store.check_mount(layout.mount)
        paths = {t.desired.path for t in mine.values() if t.desired.mount == layout.mount}
        for folder in folders:
            paths.update(list_paths(store, layout.mount, folder))  # at any depth, as remove and prune search
        for row in rows(store, layout.mount, sorted(paths), progress):
            if row.where in mine or stack in row.owners:
                found[row.where] = row
    return [found[k] for k in sorted(found)]


def check_mounts(store: SecretStore, mounts: Iterable[str]) -> None:
    """Fail, naming it, on a mount that is not KV v2, before anything is read or planned."""
    for mount in sorted(mounts):
        store.check_mount(mount)


def declared_by(stack: str, targets: list[Target]) -> dict[str, Target]:
    """The targets `stack` declares, by `mount/path`."""
    return {t.where: t for t in targets if stack in t.desired.stacks}


def contract_folders(contract: ResolvedContract) -> tuple[VaultLayout, list[str]]:
    """The contract's layout and the folders it puts the contract's secrets in."""
    layout = contract.layout
    return layout, layout.folders(contract.stack, namespaces_of(contract))


def namespaces_of(contract: ResolvedContract) -> list[str]:
    return sorted({s.namespace for s in contract.contract.secrets})
