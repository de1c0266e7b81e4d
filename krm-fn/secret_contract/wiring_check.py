"""Finding the kustomize wiring mistakes that make a build go wrong, often without a word
(`secret-contract check`, and `render` and `plan` on a directory before anything else).

What `kubectl kustomize --enable-alpha-plugins` (kustomize v5.5) does with each, as found by
running it:
- a contract under `resources:` (or `bases:`) is copied into the output as it is, static values
  included, and no ExternalSecret is made; exit 0;
- a contract beside a kustomization that lists it nowhere: no ExternalSecret, Vault untouched;
  exit 0;
- a contract whose `config.kubernetes.io/function` names an `exec:` function is skipped:
  kubectl has no `--enable-exec`; exit 0 (standalone `kustomize build --enable-exec` runs it);
- a plugin config whose apiVersion or kind differs from `hostk8s.io/v1` `SecretContract`
  (`hostk8s.io/v2`, `Secretcontract`), another document in the contract's file, or a missing
  legacy plugin: "expected file with Go object code at .../<Kind>.so";
- a contract under `validators:`: "validator shouldn't modify the resource map";
- a contract under `components:`: "must build at directory ...: file is not directory".

Each finding names the file, the resource and the field path, and says the fix. Nothing here
runs kustomize or reads Vault: the files are read and the findings returned.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from secret_contract import plugin, yaml_codec
from secret_contract.contract import API_VERSION, KIND
from secret_contract.results import FileRef, ResourceRef, Result, error, info, warning
from secret_contract.wiring import FUNCTION_ANNOTATION

KUSTOMIZATION_API_VERSION = "kustomize.config.k8s.io/v1beta1"
PLUGIN_FIELDS = ("generators", "transformers")
# Where a contract is a mistake, and what kustomize does with it there.
MISPLACED = {
    "resources": "kustomize copies the contract into the build output as it is, static values included, and makes "
    "no ExternalSecret",
    "bases": "kustomize copies the contract into the build output as it is, static values included, and makes "
    "no ExternalSecret",
    "validators": 'kustomize fails with "validator shouldn\'t modify the resource map"',
    "components": 'kustomize fails with "must build at directory ...: file is not directory"',
}
MAX_KUSTOMIZATIONS = 2000  # a bound on the walk, whatever the tree holds
SKIPPED_DIRECTORIES = ("node_modules",)  # and every hidden one (.git, .venv)


@dataclass(frozen=True)
class Document:
    """One YAML document of a file, with where it is."""

    file: str
    index: int
    doc: Mapping[str, Any]

    @property
    def ref(self) -> ResourceRef:
        meta = self.doc.get("metadata")
        name = meta.get("name") if isinstance(meta, Mapping) else None
        return ResourceRef(str(self.doc.get("apiVersion") or ""), str(self.doc.get("kind") or ""), str(name or ""))

    @property
    def is_contract(self) -> bool:
        return self.doc.get("apiVersion") == API_VERSION and self.doc.get("kind") == KIND

    @property
    def looks_like_contract(self) -> bool:
        """A contract, or a near miss in case or apiVersion (`Secretcontract`, `hostk8s.io/v2`)."""
        return str(self.doc.get("kind") or "").lower() == KIND.lower()

    def at(self, finding: Result) -> Result:
        return finding.at(self.ref, FileRef(self.file, self.index))


@dataclass(frozen=True)
class Report:
    """What a check found, and how much it looked at."""

    findings: list[Result] = field(default_factory=list)
    kustomizations: int = 0
    contracts: int = 0


def check(directories: Sequence[str], env: Mapping[str, str] | None = None, recursive: bool = True) -> Report:
    """The wiring mistakes in every kustomization under `directories` (each walked to any
    depth, or only itself when not `recursive`), and, when `recursive`, the contracts beside a
    kustomization that lists them nowhere. With `env`, also whether this machine has the legacy
    plugin where kustomize looks for it.

    Whether a contract is listed is a question about the whole tree: an overlay elsewhere may
    list the contract beside its base. A check of single folders (`render DIR`, `plan DIR`)
    sees only those folders, so it leaves that rule to `check` of the tree."""
    walk = _Walk(plugin.plugin_path(plugin.plugin_root(env)) if env is not None else None)
    for directory in directories:
        for folder in _folders(directory, walk.unreadable, walk.limited) if recursive else [directory]:
            walk.kustomization(folder)
    if recursive:
        walk.unlisted()
    return Report(walk.findings, len(walk.folders), walk.contracts)


def summary(report: Report) -> Result:
    """One line saying what was checked, when nothing was found."""
    k, c = report.kustomizations, report.contracts
    return info(
        f"checked {k} kustomization{'s' if k != 1 else ''} and {c} contract{'s' if c != 1 else ''}: no wiring mistakes"
    )


def _folders(root: str, unreadable: Callable[[OSError], None], limited: Callable[[str], None]) -> Iterator[str]:
    """Every directory under `root` holding a kustomization, `root` first, up to
    MAX_KUSTOMIZATIONS (past it, the root goes to `limited`); a folder that cannot be listed
    goes to `unreadable` (it may hold kustomizations nobody checks)."""
    if not os.path.isdir(root):
        yield root  # reported as missing by the walk
        return
    found = 0
    failed: list[OSError] = []
    for folder, subfolders, _ in os.walk(root, onerror=failed.append):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith(".") and d not in SKIPPED_DIRECTORIES)
        if plugin.kustomization_file(folder) is not None:
            if found >= MAX_KUSTOMIZATIONS:
                limited(root)
                return
            found += 1
            yield os.path.normpath(folder)
    for exc in failed:
        if os.path.realpath(str(exc.filename)) == os.path.realpath(root) and plugin.kustomization_file(root):
            yield os.path.normpath(root)  # its kustomization can be read: checked, and the folder named
        else:
            unreadable(exc)


class _Walk:
    def __init__(self, plugin_file: str | None) -> None:
        self.plugin_file = plugin_file
        self.folders: dict[str, str] = {}  # real path -> the path as given, of each kustomization's folder
        self.listed: set[str] = set()  # real paths of files listed by any kustomization
        self.findings: list[Result] = []
        self.contracts = 0
        self.plugin_reported = False

    def kustomization(self, folder: str) -> None:
        real = os.path.realpath(folder)
        if real in self.folders:
            return
        file = plugin.kustomization_file(folder)
        if file is None:
            if not os.path.isdir(folder):
                self.findings.append(error(f"{folder}: no such directory", rule="kustomization"))
            return  # a folder without a kustomization: kustomize never builds it
        self.folders[real] = folder
        doc = _load_one(file)
        if not isinstance(doc, Mapping):
            return  # kustomize reports an unreadable kustomization itself
        meta = doc.get("metadata")
        name = (meta.get("name") if isinstance(meta, Mapping) else None) or os.path.basename(real)
        here = Document(
            file,
            0,
            {
                "apiVersion": doc.get("apiVersion") or KUSTOMIZATION_API_VERSION,
                "kind": "Kustomization",
                "metadata": {"name": name},
            },
        )
        for key, value in doc.items():
            if key in PLUGIN_FIELDS or key in MISPLACED:
                for index, entry in enumerate(value if isinstance(value, list) else []):
                    self._entry(here, folder, str(key), index, entry)

    def _entry(self, here: Document, folder: str, key: str, index: int, entry: Any) -> None:
        if not isinstance(entry, str) or "://" in entry:
            return  # inline configs and remote entries are not read
        path = os.path.normpath(os.path.join(folder, entry))
        if not os.path.isfile(path):
            return
        self.listed.add(os.path.realpath(path))
        docs = _documents(path)
        if not any(d.looks_like_contract for d in docs):
            return
        where = f"{key}[{index}]"
        if key in MISPLACED:
            # `init` takes a contract out of `resources:` as it adds it to `generators:`.
            how = f" (`secret-contract init {folder}` moves it)" if key == "resources" else ""
            self._each_contract(
                here,
                docs,
                lambda d: error(
                    f"{d.ref} ({entry}) is listed under `{key}:`: {MISPLACED[key]}. List it under "
                    f"`generators:` instead{how}",
                    where,
                    rule=f"contract-in-{key}",
                ),
            )
            return
        if _outside(path, folder):
            # A warning: a build with LoadRestrictionsNone (as Flux's) reads it.
            self._each_contract(
                here,
                docs,
                lambda d: warning(
                    f"{d.ref} ({entry}) is outside {folder}: kustomize refuses a file that is not in or "
                    'below the kustomization\'s folder ("security; file ... is not in or below ...") '
                    "unless built with --load-restrictor LoadRestrictionsNone. List the contract in a "
                    "kustomization of its own folder and name that folder under `resources:`",
                    where,
                    rule="contract-outside-root",
                ),
            )
            return
        for d in docs:
            self._plugin_config(here, d, key, where)

    def _each_contract(self, here: Document, docs: list[Document], finding: Callable[[Document], Result]) -> None:
        """One finding, at the kustomization's entry, for each contract of a file it lists."""
        for d in (d for d in docs if d.looks_like_contract):
            self.contracts += 1
            self.findings.append(here.at(finding(d)))

    def _plugin_config(self, here: Document, d: Document, key: str, where: str) -> None:
        """One document of a file listed under generators or transformers: kustomize takes each
        as a plugin config and loads the plugin its apiVersion and kind name."""
        if not d.looks_like_contract:
            self.findings.append(
                d.at(
                    error(
                        f"this document shares a file listed under `{key}:` ({here.file}: {where}) with a "
                        f"SecretContract: kustomize takes every document there as a plugin config and fails with "
                        f'"expected file with Go object code at .../{d.ref.kind}.so". Move it to its own file '
                        "under `resources:`",
                        rule="plugin-config",
                    )
                )
            )
            return
        self.contracts += 1
        api_version, kind = d.doc.get("apiVersion"), d.doc.get("kind")
        if not d.is_contract:
            wrong = "apiVersion" if api_version != API_VERSION else "kind"
            self.findings.append(
                d.at(
                    error(
                        f"`apiVersion: {api_version}`, `kind: {kind}` names no plugin: kustomize fails with "
                        f'"expected file with Go object code at .../{kind}.so". A SecretContract is '
                        f"`apiVersion: {API_VERSION}`, `kind: {KIND}`",
                        wrong,
                        rule="plugin-kind",
                    )
                )
            )
            return
        meta = d.doc.get("metadata")
        annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
        spec = annotations.get(FUNCTION_ANNOTATION) if isinstance(annotations, Mapping) else None
        runtime = _runtime(spec)
        if runtime == "exec":
            self.findings.append(
                d.at(
                    warning(
                        "an exec function: `kubectl kustomize` skips it without a word (it has no "
                        "`--enable-exec`), so its build holds no ExternalSecret and writes nothing to Vault. Build "
                        "with `kustomize build --enable-alpha-plugins --enable-exec`, or run the legacy plugin: "
                        f"`secret-contract init {os.path.dirname(d.file) or '.'} --runtime legacy` removes the "
                        "annotation",
                        f"metadata.annotations.{FUNCTION_ANNOTATION}",
                        rule="exec-function",
                    )
                )
            )
        elif runtime is None and self._plugin_missing():
            self.findings.append(
                here.at(
                    warning(
                        f'no legacy plugin at {self.plugin_file}: kustomize fails with "expected file with Go '
                        'object code at .../SecretContract.so" (or "unable to find plugin root"). Run '
                        "`secret-contract install-plugin`, or set KUSTOMIZE_PLUGIN_HOME to where it is installed",
                        where,
                        rule="plugin-missing",
                    )
                )
            )

    def unreadable(self, exc: OSError) -> None:
        """A folder the walk could not list, named rather than skipped without a word."""
        folder = os.path.normpath(str(exc.filename))
        self.findings.append(
            warning(
                f"{folder}: cannot list this folder ({exc.strerror or exc}): kustomizations and contracts in it "
                "are not checked",
                rule="folder-unreadable",
            )
        )

    def limited(self, root: str) -> None:
        """A tree with more kustomizations than the walk reads: said, not skipped without a word."""
        self.findings.append(
            warning(
                f"{root}: more than {MAX_KUSTOMIZATIONS} kustomizations: only the first {MAX_KUSTOMIZATIONS} are "
                "checked; check its subfolders one by one",
                rule="too-many-kustomizations",
            )
        )

    def _plugin_missing(self) -> bool:
        """Whether to say that the legacy plugin is not installed (once per check)."""
        if self.plugin_file is None or self.plugin_reported or os.access(self.plugin_file, os.X_OK):
            return False
        self.plugin_reported = True
        return True

    def unlisted(self) -> None:
        """Contracts in a kustomization's folder that no kustomization lists."""
        for real, folder in self.folders.items():
            kustomization = plugin.kustomization_file(folder)
            try:
                names = sorted(os.listdir(real))
            except OSError as exc:
                self.findings.append(
                    warning(
                        f"{folder}: cannot list this folder ({exc.strerror or exc}): contracts in it that no "
                        "kustomization lists are not found",
                        rule="folder-unreadable",
                    )
                )
                continue
            for name in names:
                path = os.path.join(folder, name)
                if not name.endswith((".yaml", ".yml")) or os.path.realpath(path) in self.listed:
                    continue
                if not os.path.isfile(path) or os.path.samefile(path, kustomization or path):
                    continue
                for d in _documents(path):
                    if not d.looks_like_contract:
                        continue
                    self.contracts += 1
                    self.findings.append(
                        d.at(
                            error(
                                f"not listed in {kustomization}: its build makes no ExternalSecret for this "
                                "contract and writes nothing to Vault, without a word. List it under `generators:` "
                                f"(`secret-contract init {folder}` adds it)",
                                rule="contract-not-listed",
                            )
                        )
                    )


def _outside(path: str, folder: str) -> bool:
    """Whether kustomize's default load restrictor refuses `path` for the kustomization in
    `folder`: it compares real paths, so a symbolic link out of the folder counts as outside."""
    real, root = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([real, root]) != root


def _runtime(spec: Any) -> str | None:
    """`exec` or `container` from a function annotation; None without one (the legacy plugin)."""
    if spec is None:
        return None
    try:
        parsed = yaml_codec.load(str(spec))
    except yaml_codec.yaml.YAMLError:
        return "unreadable"
    if isinstance(parsed, Mapping):
        for runtime in ("exec", "container"):
            if runtime in parsed:
                return runtime
    return "other"


def _load_one(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml_codec.load(handle.read())
    except (OSError, UnicodeDecodeError, yaml_codec.yaml.YAMLError):
        return None


def _documents(path: str) -> list[Document]:
    """The mapping documents of a YAML file; none when it cannot be read (kustomize says why)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        if KIND.lower() not in text.lower():
            return []  # no contract in it: not parsed
        docs = yaml_codec.load_all(text)
    except (OSError, UnicodeDecodeError, yaml_codec.yaml.YAMLError):
        return []
    return [Document(path, index, doc) for index, doc in enumerate(docs) if isinstance(doc, Mapping)]
