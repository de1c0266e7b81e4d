"""The core every build shares:

ResourceList in -> contracts validated -> declarations collected -> Vault state read ->
plan -> Vault written -> ExternalSecrets out.

KRM mode, the legacy kustomize plugin and the `add` and `plan` commands all call `build()`;
they differ only in how they make the ResourceList and what they print. `render()` shares its
first steps (`prepare()`) and makes each ExternalSecret only as it is printed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from secret_contract import contract as contract_model
from secret_contract import declarations, externalsecret, krm, resolution, settings, sync
from secret_contract.contract import Contract
from secret_contract.errors import CasConflict, SecretContractError, VaultConfigError
from secret_contract.krm import Item, ResourceList
from secret_contract.model import Target
from secret_contract.resolution import ResolvedContract
from secret_contract.results import Result, counted, error, has_errors, info, warning
from secret_contract.settings import Defaults
from secret_contract.store import Progress, SecretStore
from secret_contract.validation_cache import ValidationCache

if TYPE_CHECKING:
    from secret_contract.vault_config import VaultConfig

STATS_ENV = "SECRET_CONTRACT_STATS"
STATS_FILE_ENV = "SECRET_CONTRACT_STATS_FILE"  # append a JSON line of counts per build
LENIENT_NOTE = (
    "SECRET_CONTRACT_STRICT=false: the ExternalSecrets were emitted anyway, and may point at paths Vault does not hold"
)

StoreFactory = Callable[["VaultConfig"], SecretStore]


@dataclass(frozen=True)
class Options:
    write: bool = True  # False never touches Vault (`render`)
    strict: bool | None = None  # None: the setting (SECRET_CONTRACT_STRICT, or CI)
    dry_run: bool | None = None  # None: the setting (SECRET_CONTRACT_DRY_RUN)
    verbose: bool = False  # every change listed, even past a few dozen
    store_factory: StoreFactory | None = None  # None: Vault itself (vault.VaultStore)
    progress: Progress | None = None


@dataclass
class Outcome:
    output: ResourceList
    findings: list[Result]
    contracts: list[ResolvedContract] = field(default_factory=list)
    externalsecrets: list[Item] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    report: sync.Report | None = None
    dry_run: bool = False  # Vault is (or would have been) only read, by option or setting

    @property
    def failed(self) -> bool:
        return has_errors(self.findings)

    @property
    def pending(self) -> int:
        """Changes a dry run found and did not make."""
        return len(self.report.pending) if self.report else 0


@dataclass
class Prepared:
    """What the contracts of a ResourceList declare, before anything is placed or written."""

    defaults: Defaults
    findings: list[Result]
    contracts: list[ResolvedContract]
    collected: declarations.Collected


def prepare(rl: ResourceList, env: Mapping[str, str], project: Mapping[str, Any] | None = None) -> Prepared:
    """The settings, the contracts validated and resolved, and what they declare."""
    defaults, findings = settings.load(env, _configmap_data(rl.function_config), project)
    findings += _unread_config(rl.function_config)
    contracts, contract_findings = load_contracts(rl, ValidationCache.from_env(env, contract_model.schema_text()))
    findings += contract_findings
    resolved = resolution.resolve_all(contracts, defaults)
    collected = declarations.collect(resolved)
    return Prepared(defaults, findings + collected.findings, resolved, collected)


@dataclass
class Rendered:
    """A render: the findings, and the ExternalSecrets to write, each made as it is written."""

    findings: list[Result]
    emissions: list[declarations.Emission]

    @property
    def failed(self) -> bool:
        return has_errors(self.findings)

    def externalsecrets(self) -> Iterator[Item]:
        return (e.manifest() for e in self.emissions)


def render(rl: ResourceList, env: Mapping[str, str], project: Mapping[str, Any] | None = None) -> Rendered:
    """The ExternalSecrets of `rl`'s contracts with the findings a build would have, never
    touching Vault. Only the manifests whose identity an input item also has are made to be
    checked (`krm.place`'s conflicts); the rest are made one at a time as they are written."""
    prepared = prepare(rl, env, project)
    present = {krm.identity(item) for item in rl.items}
    emissions = prepared.collected.externalsecrets
    clashing = [(e.manifest(), e.file) for e in emissions if e.identity in present]
    _, placement = krm.place(rl, clashing, externalsecret.is_generated)
    return Rendered(prepared.findings + placement, emissions)


def build(
    rl: ResourceList, env: Mapping[str, str], options: Options = Options(), project: Mapping[str, Any] | None = None
) -> Outcome:
    """Process every SecretContract in `rl`: the output ResourceList and the findings."""
    prepared = prepare(rl, env, project)
    defaults, findings, resolved = prepared.defaults, prepared.findings, prepared.contracts
    built = [(e.manifest(), e.file) for e in prepared.collected.externalsecrets]
    items, placement = krm.place(rl, built, externalsecret.is_generated)
    findings += placement
    generated = [es for es, _ in built]
    targets = prepared.collected.targets()
    dry_run = _dry_run(defaults, options)
    if has_errors(findings):
        return Outcome(_unchanged(rl), findings, resolved, generated, targets, dry_run=dry_run)
    report = None
    if options.write and targets:
        report, vault_findings = _write_vault(targets, env, defaults, options)
        findings += vault_findings
        findings = _scrubbed(findings, report.values if report else [])
    return Outcome(rl.with_items(items), findings, resolved, generated, targets, report, dry_run)


def _dry_run(defaults: Defaults, options: Options) -> bool:
    return defaults.dry_run if options.dry_run is None else options.dry_run


def load_contracts(rl: ResourceList, known: ValidationCache | None = None) -> tuple[list[Contract], list[Result]]:
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
        loaded, found = contract_model.load(item, krm.resource_ref(item), krm.file_ref(item), known)
        findings += found
        if loaded:
            contracts.append(loaded)
    return contracts, findings


def _write_vault(
    targets: list[Target], env: Mapping[str, str], defaults: Defaults, options: Options
) -> tuple[sync.Report | None, list[Result]]:
    strict = defaults.strict if options.strict is None else options.strict
    dry_run = _dry_run(defaults, options)
    config = _vault_config(env)
    if config is None:
        # No Vault configured at all: rendering only is a choice, an error only when strict.
        why = (
            f" (strict: {defaults.strict_reason})"
            if strict and defaults.strict_reason and options.strict is None
            else ""
        )
        render_only = error if strict else warning
        return None, [
            render_only(f"VAULT_ADDR is not set: rendered ExternalSecrets without writing Vault{why}", rule="vault")
        ]
    notes = [warning(message, rule="vault") for message in config.warnings()]
    # A Vault is configured: a build that could not write it emits ExternalSecrets pointing at
    # paths Vault may not hold, so it fails, unless strictness was turned off on purpose.
    lenient = defaults.lenient and options.strict is not True
    severity = warning if lenient else error
    hint = f" ({LENIENT_NOTE})" if lenient else ""
    try:
        store = (options.store_factory or _vault_store)(config)
        report = sync.sync(targets, store, dry_run=dry_run, verbose=options.verbose, progress=options.progress)
    except VaultConfigError as exc:
        return None, [*notes, error(f"Vault configuration: {exc}; Vault was not written", rule="vault")]
    except CasConflict as exc:
        return None, [*notes, error(f"gave up after repeated concurrent writes: {exc}", rule="vault")]
    except SecretContractError as exc:
        return None, [*notes, severity(f"Vault was not written: {exc}{hint}", rule="vault")]
    findings = [*notes, *report.findings]
    if report.failure is not None:
        findings.append(severity(_partly_written(report) + hint, rule="vault"))
    if settings.flag(env, STATS_ENV):
        counts = ", ".join(f"{method} {n}" for method, n in sorted(store.request_counts.items()))
        findings.append(info(f"Vault requests: {counts or 'none'}", rule="stats"))
    if env.get(STATS_FILE_ENV):
        _append_stats(env[STATS_FILE_ENV], report, store.request_counts)
    return report, findings


def _append_stats(path: str, report: sync.Report, requests: Mapping[str, int]) -> None:
    """One JSON line per build, for a caller that runs the build through kustomize (whose
    plugin output it cannot see): what was written, and the requests sent."""
    import json

    line = {"written": len(report.written), "recorded": report.recorded, "requests": dict(requests)}
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line, sort_keys=True) + "\n")


def _vault_config(env: Mapping[str, str]) -> VaultConfig | None:
    if not env.get("VAULT_ADDR", "").strip():
        return None
    from secret_contract.vault_config import VaultConfig  # only a build that writes Vault needs HTTP and TLS

    return VaultConfig.from_env(env)


def _vault_store(config: VaultConfig) -> SecretStore:
    from secret_contract.vault import VaultStore

    return VaultStore(config)


def _partly_written(report: sync.Report) -> str:
    written = set(report.written)
    planned = [t.where for t, c in report.changes if c.writes_data or t.where in written]
    if not written:
        head = "Vault was not written"
        if report.recorded:
            were = "was" if report.recorded == 1 else "were"
            head = f"No secret's data was written ({counted(report.recorded, 'ownership record')} {were} updated first)"
        secrets = f"; none of the {counted(len(planned), 'secret')} to write was written" if planned else ""
        return f"{head}: {report.failure}{secrets}"
    missing = [where for where in planned if where not in written]
    shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
    text = (
        f"Vault was partly written: {len(written)} of {len(planned)} secrets were written before this failure: "
        f"{report.failure}. Not written: {shown or 'none'}. Every written secret is complete; a re-run writes the "
        "rest and keeps what was written"
    )
    if report.unrecorded:
        paths = ", ".join(sorted(t.where for t in report.unrecorded))
        stacks = " ".join(sorted({s for t in report.unrecorded for s in t.desired.stacks}))
        text += (
            f". The failure came between the data and the ownership record of {paths}: a build will not take them "
            f"over, so once Vault is back run `secret-contract migrate {stacks}` (it adopts them, values kept)"
        )
    return text


def _scrubbed(findings: list[Result], values: list[str]) -> list[Result]:
    """A last guard: no generated value in any message, whatever produced it."""
    secret_values = {v for v in values if len(v) >= 4}
    if not secret_values:
        return findings
    out = []
    for finding in findings:
        message = finding.message
        for value in secret_values:
            if value in message:
                message = message.replace(value, "***")
        out.append(finding if message == finding.message else replace(finding, message=message))
    return out


def _configmap_data(config: Item | None) -> dict[str, Any]:
    if config and config.get("kind") == "ConfigMap" and isinstance(config.get("data"), dict):
        return config["data"]
    return {}


def _unread_config(config: Item | None) -> list[Result]:
    """A functionConfig this function does not read (only a ConfigMap's data or a
    SecretContract): said, rather than ignored, since its settings silently do nothing."""
    if not config or config.get("kind") in ("ConfigMap", contract_model.KIND):
        return []
    kind = str(config.get("kind") or "(none)")
    shown = kind[:63] if kind.isprintable() else repr(kind[:63])  # a name from a file, never an escape sequence
    found = warning(
        f"functionConfig of kind {shown} is ignored: settings go in a ConfigMap's data, or give a SecretContract",
        rule="settings",
    )
    return [replace(found, resource=krm.resource_ref(config))]


def _unchanged(rl: ResourceList) -> ResourceList:
    return rl.with_items([] if krm.is_generator_call(rl) else rl.items)
