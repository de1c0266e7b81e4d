"""The KRM function protocol: ResourceList in, ResourceList out.

https://github.com/kubernetes-sigs/kustomize/blob/master/cmd/config/docs/api-conventions/functions-spec.md
"""

from __future__ import annotations

import io
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

import yaml

from secret_contract import results, yaml_codec
from secret_contract.contract import is_contract
from secret_contract.errors import InvalidResourceList
from secret_contract.results import FileRef, ResourceRef, Result

RESOURCE_LIST_KIND = "ResourceList"
RESOURCE_LIST_API_VERSIONS = ("config.kubernetes.io/v1", "config.kubernetes.io/v1beta1")

PATH_ANNOTATION = "internal.config.kubernetes.io/path"
INDEX_ANNOTATION = "internal.config.kubernetes.io/index"
LEGACY_PATH_ANNOTATION = "config.kubernetes.io/path"
LEGACY_INDEX_ANNOTATION = "config.kubernetes.io/index"
LEGACY_ORCHESTRATOR_ANNOTATIONS = frozenset({LEGACY_PATH_ANNOTATION, LEGACY_INDEX_ANNOTATION, "config.k8s.io/id"})

Item = dict[str, Any]


@dataclass
class ResourceList:
    # Items and the function config may be contracts, whose static values are stored in Vault.
    items: list[Item] = field(repr=False)
    function_config: Item | None = field(default=None, repr=False)
    results: list[dict[str, Any]] = field(default_factory=list)
    api_version: str = RESOURCE_LIST_API_VERSIONS[0]
    # The text each input item had (by the item's identity): an item that comes out unchanged
    # is written back as that text, so its comments, quoting, styles and tags stay as they were.
    sources: dict[int, str] = field(default_factory=dict, repr=False)
    indent: int = 0  # the column of the items' `-` in the input, kept in the output

    def with_items(self, items: list[Item]) -> ResourceList:
        return ResourceList(items, self.function_config, self.results, self.api_version, self.sources, self.indent)


def decode(data: bytes) -> str:
    """stdin as text: the functions spec says UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidResourceList(f"stdin is not UTF-8 (invalid byte at offset {exc.start})") from None


def parse(text: str) -> ResourceList:
    """Parse a ResourceList from stdin text; raise InvalidResourceList if it is not one."""
    if not text.strip():
        raise InvalidResourceList("stdin is empty: expected a ResourceList (kind: ResourceList)")
    try:
        doc, spans = yaml_codec.load_with_spans(text)
    except yaml.YAMLError as exc:
        raise InvalidResourceList(f"stdin is not valid YAML: {yaml_codec.describe_error(exc)}") from None
    if not isinstance(doc, dict) or doc.get("kind") != RESOURCE_LIST_KIND:
        raise InvalidResourceList("stdin is not a ResourceList (expected kind: ResourceList)")
    items = doc.get("items") if doc.get("items") is not None else []
    if not isinstance(items, list):
        raise InvalidResourceList("ResourceList.items must be a list")
    for index, item in enumerate(items):
        if not (isinstance(item, dict) and item.get("apiVersion") and item.get("kind")):
            raise InvalidResourceList(f"ResourceList.items[{index}] is not a KRM object (needs apiVersion and kind)")
    config = doc.get("functionConfig")
    if config is not None and not isinstance(config, dict):
        raise InvalidResourceList("ResourceList.functionConfig must be an object")
    prior = doc.get("results") or []
    sources: dict[int, str] = {}
    if spans is not None and len(spans.items) == len(items):
        sources = {id(item): text[start:end] for item, (start, end) in zip(items, spans.items, strict=True)}
    return ResourceList(
        items=items,
        function_config=config,
        results=prior if isinstance(prior, list) else [],
        api_version=str(doc.get("apiVersion") or RESOURCE_LIST_API_VERSIONS[0]),
        sources=sources,
        indent=spans.indent if spans else 0,
    )


def emit(rl: ResourceList, findings: Iterable[Result]) -> str:
    """Serialize the output ResourceList: prior results kept, ours appended and sorted."""
    out = io.StringIO()
    write(rl, findings, out)
    return out.getvalue()


def write(rl: ResourceList, findings: Iterable[Result], stream: TextIO) -> None:
    """The output ResourceList, streamed: items that came in unchanged are written as the
    text they came in as; new items in block style at the input's indentation. The
    functionConfig is input only, and is not written back."""
    yaml_codec.write({"apiVersion": rl.api_version, "kind": RESOURCE_LIST_KIND}, stream)
    if not rl.items:
        stream.write("items: []\n")
    else:
        stream.write("items:\n")
        for item in rl.items:
            source = rl.sources.get(id(item))
            if source is not None:
                stream.write(source if source.endswith("\n") else source + "\n")
            else:
                yaml_codec.write([item], stream, indent=rl.indent)
    out_results = list(rl.results) + [results.to_krm(r) for r in results.sort(findings)]
    if out_results:
        yaml_codec.write({"results": out_results}, stream)


def annotations(item: Item) -> dict[str, Any]:
    meta = item.get("metadata")
    if not isinstance(meta, dict):
        return {}
    notes = meta.get("annotations")
    return notes if isinstance(notes, dict) else {}


def resource_ref(item: Item) -> ResourceRef:
    meta = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
    return ResourceRef(
        api_version=str(item.get("apiVersion", "")),
        kind=str(item.get("kind", "")),
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "") or ""),
    )


def file_ref(item: Item) -> FileRef | None:
    """Where the orchestrator read the item from, if it said."""
    notes = annotations(item)
    path = notes.get(PATH_ANNOTATION) or notes.get(LEGACY_PATH_ANNOTATION)
    if not path:
        return None
    raw_index = notes.get(INDEX_ANNOTATION, notes.get(LEGACY_INDEX_ANNOTATION, 0))
    try:
        index = int(raw_index)
    except (TypeError, ValueError):
        index = 0
    return FileRef(str(path), index)


def identity(item: Item) -> tuple[str, str, str, str]:
    ref = resource_ref(item)
    return (ref.api_version.split("/")[0] if "/" in ref.api_version else "", ref.kind, ref.namespace, ref.name)


def is_generator_call(rl: ResourceList) -> bool:
    """kustomize `generators:` sends the config as functionConfig and as the only item."""
    config = rl.function_config
    if config is None or len(rl.items) != 1:
        return False
    item = rl.items[0]
    return resource_ref(item) == resource_ref(config) and file_ref(item) is None


def is_orchestrator_annotation(key: str) -> bool:
    return key.startswith("internal.config.kubernetes.io/") or key in LEGACY_ORCHESTRATOR_ANNOTATIONS


def set_file(item: Item, file: FileRef) -> None:
    """Place a new item in a file (kpt writes it there); both annotation forms must agree."""
    notes = item.setdefault("metadata", {}).setdefault("annotations", {})
    notes[PATH_ANNOTATION] = file.path
    notes[LEGACY_PATH_ANNOTATION] = file.path
    notes[INDEX_ANNOTATION] = str(file.index)
    notes[LEGACY_INDEX_ANNOTATION] = str(file.index)


def sibling_path(file: FileRef, name: str) -> str:
    return posixpath.join(posixpath.dirname(file.path), name)


def strip_orchestrator_annotations(item: Item) -> Item:
    """A copy without path/index bookkeeping, for printing outside of an orchestrator."""
    notes = {k: v for k, v in annotations(item).items() if not is_orchestrator_annotation(k)}
    meta = dict(item.get("metadata") or {})
    if notes:
        meta["annotations"] = notes
    else:
        meta.pop("annotations", None)
    return {**item, "metadata": meta}


GENERATED_FILE = "external-secrets.generated.yaml"


def place(
    rl: ResourceList, built: list[tuple[Item, FileRef | None]], is_ours: Callable[[Item], bool]
) -> tuple[list[Item], list[Result]]:
    """The output items: `built` (each with the file of the contract that declared it) added
    to the input the way the orchestrator needs it.

    A kustomize generator returns only what it generated (the contract must not reach the
    build). A kpt function returns every item: others untouched, new items placed beside their
    contract. Only what this function placed (an item `is_ours` in the generated file beside a
    contract of this run) is its own earlier output, replaced in place or dropped when stale:
    anything else carrying the label (another stack's committed `render` output) passes through,
    since kpt deletes a file whose items a function leaves out. An item of a generated identity
    that the function did not place is kept in its stead when identical, else a conflict.
    """
    if is_generator_call(rl):
        return [item for item, _ in built], []
    new = {identity(item): (item, home) for item, home in built}
    homes = _generated_files(rl, built)
    kept: list[Item] = []
    previous: dict[tuple[str, str, str, str], Item] = {}
    delivered: set[tuple[str, str, str, str]] = set()
    findings: list[Result] = []
    for item in rl.items:
        ident, placed_here = identity(item), _in(item, homes) and is_ours(item)
        if placed_here:
            if ident in new:
                previous[ident] = item
            continue  # this function's stale output: it left the contract
        kept.append(item)
        if is_ours(item) and _in_generated_file(item):
            findings.append(_stale(item))
        if ident not in new:
            continue
        if is_ours(item) and _same(item, new[ident][0]):
            delivered.add(ident)  # delivered from where it was committed; not twice
        else:
            findings.append(_conflict(item, new[ident][1], is_ours(item)))
    used = _used_indexes([*kept, *previous.values()])
    placed = [
        _place(item, previous.get(identity(item)), home, used)
        for item, home in built
        if identity(item) not in delivered
    ]
    return kept + placed, findings


def _generated_files(rl: ResourceList, built: list[tuple[Item, FileRef | None]]) -> set[str]:
    """The files this run writes: the generated file beside each contract it was given."""
    contracts = [file_ref(item) for item in rl.items if is_contract(item)]
    contracts += [home for _, home in built]
    return {sibling_path(ref, GENERATED_FILE) for ref in contracts if ref is not None}


def _in(item: Item, files: set[str]) -> bool:
    ref = file_ref(item)
    return ref is not None and ref.path in files


def _in_generated_file(item: Item) -> bool:
    ref = file_ref(item)
    return ref is not None and posixpath.basename(ref.path) == GENERATED_FILE


def _same(existing: Item, generated: Item) -> bool:
    return strip_orchestrator_annotations(existing) == strip_orchestrator_annotations(generated)


def _stale(item: Item) -> Result:
    ref = resource_ref(item)
    message = (
        f"{ref.kind} {ref.namespace}/{ref.name} looks stale: it is in a generated file beside no SecretContract "
        "of this run, so it is left as it is; delete the file if its contract is gone"
    )
    return Result("warning", message, "metadata.name", resource=ref, file=file_ref(item), rule="identity")


def _conflict(existing: Item, contract_file: FileRef | None, labelled: bool) -> Result:
    ref = resource_ref(existing)
    how = "committed here with other content" if labelled else "written by hand here"
    message = (
        f"{ref.kind} {ref.namespace}/{ref.name} is {how} and generated from a SecretContract"
        f"{f' ({contract_file.path})' if contract_file else ''}: remove one of them"
    )
    return Result("error", message, "metadata.name", resource=ref, file=file_ref(existing), rule="identity")


@dataclass
class _FileIndexes:
    """The document indexes taken in one file; the lowest free one is found from a cursor
    that only moves forward, so placing N items costs O(N), not O(N^2)."""

    taken: set[int] = field(default_factory=set)
    cursor: int = 0

    def claim(self) -> int:
        while self.cursor in self.taken:
            self.cursor += 1
        self.taken.add(self.cursor)
        return self.cursor


def _used_indexes(items: list[Item]) -> dict[str, _FileIndexes]:
    used: dict[str, _FileIndexes] = {}
    for item in items:
        ref = file_ref(item)
        if ref:
            used.setdefault(ref.path, _FileIndexes()).taken.add(ref.index)
    return used


def _place(item: Item, previous: Item | None, contract_file: FileRef | None, used: dict[str, _FileIndexes]) -> Item:
    """Keep an item where it already lives; put a new one beside its contract."""
    if previous is not None:
        # Orchestrator bookkeeping (path, index, ids) lets kpt write it back in place.
        bookkeeping = {k: v for k, v in annotations(previous).items() if is_orchestrator_annotation(k)}
        if bookkeeping:
            item["metadata"]["annotations"] = {**item["metadata"].get("annotations", {}), **bookkeeping}
        return item
    if contract_file is None:
        return item
    path = sibling_path(contract_file, GENERATED_FILE)
    index = used.setdefault(path, _FileIndexes()).claim()
    set_file(item, FileRef(path, index))
    return item
