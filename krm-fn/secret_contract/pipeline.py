"""The one core every entry point shares:

ResourceList in -> contracts validated -> Vault state read -> plan -> Vault written ->
ExternalSecrets out.

KRM mode, the legacy kustomize plugin and the `add`/`render` commands all call `run()`;
they differ only in how they build the ResourceList and what they print.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from secret_contract import contract as contract_model
from secret_contract import externalsecret, krm, settings, sync
from secret_contract.contract import Contract
from secret_contract.errors import CasConflict, SecretContractError, VaultConfigError
from secret_contract.krm import Item, ResourceList
from secret_contract.plan import Desired, GeneratedKey
from secret_contract.results import FileRef, Result, error, has_errors, info, warning
from secret_contract.settings import Defaults, Resolved
from secret_contract.vault import HvacStore, SecretStore, VaultConfig

GENERATED_FILE = "external-secrets.generated.yaml"
STATS_ENV = "SECRET_CONTRACT_STATS"

StoreFactory = Callable[[VaultConfig], SecretStore]


@dataclass(frozen=True)
class Planned:
    """A valid contract with the effective settings of each of its secrets."""

    contract: Contract
    resolved: list[Resolved]


@dataclass
class Outcome:
    output: ResourceList
    findings: list[Result]
    planned: list[Planned] = field(default_factory=list)
    externalsecrets: list[Item] = field(default_factory=list)
    report: sync.Report | None = None

    @property
    def failed(self) -> bool:
        return has_errors(self.findings)

    @property
    def contracts(self) -> list[Contract]:
        return [p.contract for p in self.planned]


def run(
    rl: ResourceList,
    env: Mapping[str, str],
    *,
    write: bool = True,
    strict: bool | None = None,
    store_factory: StoreFactory = HvacStore,
    progress: sync.Progress | None = None,
) -> Outcome:
    """Process every SecretContract in `rl`; return the output ResourceList and findings.

    `write=False` never touches Vault (the `render` command). `strict` (default: the
    SECRET_CONTRACT_STRICT setting) turns "Vault not written" from a warning into an error.
    """
    config_data = _configmap_data(rl.function_config)
    defaults, findings = settings.load(env, config_data)
    strict = defaults.strict if strict is None else strict
    contracts, contract_findings = load_contracts(rl)
    findings += contract_findings
    planned = plan_contracts(contracts, defaults)
    findings += _collisions(planned)
    if has_errors(findings):
        return Outcome(_passthrough(rl), findings, planned)

    report = None
    if write:
        report, vault_findings = _write_vault(planned, env, strict, store_factory, progress)
        findings += vault_findings
    built = [(es, p.contract.file) for p in planned for es in externalsecret.build_all(p.contract, p.resolved)]
    output = _output(rl, planned, built)
    return Outcome(output, findings, planned, [es for es, _ in built], report)


def load_contracts(rl: ResourceList) -> tuple[list[Contract], list[Result]]:
    """Every SecretContract in the items (and a transformer's functionConfig), validated."""
    candidates = [item for item in rl.items if contract_model.is_contract(item)]
    config = rl.function_config
    if contract_model.is_contract(config) and not any(
        krm.resource_ref(i) == krm.resource_ref(config) for i in candidates
    ):
        candidates.append(config)
    contracts: list[Contract] = []
    findings: list[Result] = []
    for item in candidates:
        loaded, found = contract_model.load(item, krm.resource_ref(item), krm.file_ref(item))
        findings += found
        if loaded:
            contracts.append(loaded)
    return contracts, findings


def targets(planned: list[Planned]) -> list[sync.Target]:
    """The Vault secrets the contracts declare."""
    out = []
    for p in planned:
        c = p.contract
        for secret, r in zip(c.secrets, p.resolved, strict=True):
            desired = Desired(
                path=r.key,
                owner=c.stack,
                static={d.key: d.value for d in secret.data if d.value is not None},
                generated={d.key: GeneratedKey(d.generate, d.length) for d in secret.data if d.generate},
            )
            out.append(sync.Target(desired, r.mount, c.resource, c.file, secret.field_path))
    return out


def plan_contracts(contracts: list[Contract], defaults: Defaults) -> list[Planned]:
    return [Planned(c, [settings.resolve(c, s, defaults) for s in c.secrets]) for c in contracts]


def _write_vault(
    planned: list[Planned],
    env: Mapping[str, str],
    strict: bool,
    store_factory: StoreFactory,
    progress: sync.Progress | None,
) -> tuple[sync.Report | None, list[Result]]:
    severity = error if strict else warning
    config = VaultConfig.from_env(env)
    if config is None:
        return None, [severity("VAULT_ADDR is not set: rendered ExternalSecrets without writing Vault", rule="vault")]
    notes = [warning(message, rule="vault") for message in config.warnings()]
    try:
        store = store_factory(config)
        report = sync.sync(targets(planned), store, progress=progress)
    except CasConflict as exc:
        return None, [*notes, error(f"gave up after repeated concurrent writes: {exc}", rule="vault")]
    except VaultConfigError as exc:
        return None, [*notes, error(f"Vault configuration: {exc}", rule="vault")]
    except SecretContractError as exc:
        suffix = "" if strict else " (ExternalSecrets were emitted anyway; set SECRET_CONTRACT_STRICT=true to fail)"
        return None, [*notes, severity(f"Vault was not written: {exc}{suffix}", rule="vault")]
    findings = [*notes, *report.findings]
    if settings.flag(env, STATS_ENV):
        counts = ", ".join(f"{method} {n}" for method, n in sorted(store.request_counts.items()))
        findings.append(info(f"Vault requests: {counts or 'none'}", rule="stats"))
    return report, findings


def _collisions(planned: list[Planned]) -> list[Result]:
    """Two contracts (or layouts) must not map two secrets onto one Vault path."""
    seen: dict[str, str] = {}
    found = []
    for p in planned:
        for secret, r in zip(p.contract.secrets, p.resolved, strict=True):
            owner = f"SecretContract/{p.contract.stack} {secret.field_path}"
            if r.full_path in seen and seen[r.full_path] != owner:
                found.append(
                    error(
                        f"Vault path {r.full_path} is also declared by {seen[r.full_path]}",
                        secret.field_path,
                        "vault-path",
                    ).at(p.contract.resource, p.contract.file)
                )
            seen.setdefault(r.full_path, owner)
    return found


def _configmap_data(config: Item | None) -> dict[str, Any]:
    if config and config.get("kind") == "ConfigMap" and isinstance(config.get("data"), dict):
        return config["data"]
    return {}


def _passthrough(rl: ResourceList) -> ResourceList:
    items = [] if krm.is_generator_call(rl) else rl.items
    return ResourceList(items, rl.function_config, rl.results, rl.api_version)


def _output(rl: ResourceList, planned: list[Planned], built: list[tuple[Item, FileRef | None]]) -> ResourceList:
    """The output items; `built` pairs each ExternalSecret with its contract's file."""
    generated = [es for es, _ in built]
    if krm.is_generator_call(rl):
        # kustomize adds generator output to the build: the contract itself must not be in it.
        return ResourceList(generated, rl.function_config, rl.results, rl.api_version)
    stacks = {p.contract.stack for p in planned}
    new_ids = {krm.identity(es) for es in generated}
    kept: list[Item] = []
    existing: dict[tuple[str, str, str, str], Item] = {}
    for item in rl.items:
        ident = krm.identity(item)
        if ident in new_ids:
            existing[ident] = item
        elif not any(externalsecret.is_generated_by(item, s) for s in stacks):
            kept.append(item)  # anything that is not our stale output passes through untouched
    used = _used_indexes(kept + list(existing.values()))
    placed = [_place(es, existing.get(krm.identity(es)), home, used) for es, home in built]
    return ResourceList(kept + placed, rl.function_config, rl.results, rl.api_version)


def _used_indexes(items: list[Item]) -> dict[str, set[int]]:
    used: dict[str, set[int]] = {}
    for item in items:
        ref = krm.file_ref(item)
        if ref:
            used.setdefault(ref.path, set()).add(ref.index)
    return used


def _place(es: Item, previous: Item | None, contract_file: FileRef | None, used: dict[str, set[int]]) -> Item:
    """Keep an ExternalSecret where it already lives; put a new one beside its contract."""
    if previous is not None:
        # Orchestrator bookkeeping (path, index, ids) lets kpt write it back in place.
        notes = {k: v for k, v in krm.annotations(previous).items() if krm.is_orchestrator_annotation(k)}
        if notes:
            es["metadata"]["annotations"] = {**es["metadata"]["annotations"], **notes}
        return es
    if contract_file is None:
        return es
    path = krm.sibling_path(contract_file, GENERATED_FILE)
    taken = used.setdefault(path, set())
    index = next(i for i in range(len(taken) + 1) if i not in taken)
    taken.add(index)
    krm.set_file(es, FileRef(path, index))
    return es
