"""YAML in and out, the way Kubernetes tools read it.

Plain scalars are typed as kyaml and go-yaml v3 type them (what kustomize and kpt run on):
`yes` and `on` stay strings, `0644` is the octal 420, `1_000` is 1000, a date is a timestamp.
Merge keys (`<<`, also as `!!merge`) are merged. Other tags (`!!binary`, `!!timestamp`,
`!Ref`) are kept as `Tagged` values, so that a step that cares (a SecretContract) can refuse
them with a field path while every other item passes through. A mapping with a repeated key
is an error instead of silently keeping the last value.

This module is the loader, and the one place callers go for YAML in either direction: the
scalar typing lives in `yaml_resolve`, the writer (`dump`, `dump_all`, `write`, `write_all`) in `yaml_emit`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from secret_contract.yaml_emit import dump, dump_all, write, write_all
from secret_contract.yaml_resolve import (
    KEYWORDS,
    MERGE,
    NUMBER_START,
    TAG,
    Tagged,
    TaggedMap,
    TaggedSeq,
    TaggedStr,
    resolve_plain,
)

__all__ = [
    "DuplicateKeyError",
    "Spans",
    "Tagged",
    "describe_error",
    "dump",
    "dump_all",
    "load",
    "load_all",
    "load_with_spans",
    "write",
    "write_all",
    "yaml",
]

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DuplicateKeyError(yaml.constructor.ConstructorError):
    pass


def _typed(tag: str, text: str, mark: Any) -> Any:
    short = tag[len(TAG) :] if tag.startswith(TAG) else None
    try:
        if short == "str":
            return text
        if short == "null":
            return None
        if short == "bool":
            return {"true": True, "false": False}[text.lower()]
        if short in ("int", "float"):
            value = resolve_plain(text)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(text)
            return float(value) if short == "float" else int(value)
        if short == "merge":
            return MERGE
    except (KeyError, ValueError):
        raise yaml.constructor.ConstructorError(None, None, f"invalid value for tag {tag}", mark) from None
    return TaggedStr(text, tag)


def _scalar_value(event: yaml.ScalarEvent) -> Any:
    tag = event.tag
    if tag is None or tag == "!":
        if event.style or tag == "!" or not event.implicit[0]:
            return event.value  # quoted, block or non-specific: a string
        return resolve_plain(event.value)
    return _typed(tag, event.value, event.start_mark)


class _Mapping:
    """A mapping being built, the key waiting for its value, and what `<<` merges into it."""

    __slots__ = ("has_key", "key", "mark", "merges", "value")

    def __init__(self, mark: Any, value: dict[Any, Any]) -> None:
        self.value = value
        self.key: Any = None
        self.has_key = False
        self.mark = mark
        self.merges: list[Any] = []

    def close(self, budget: _Budget) -> dict[Any, Any]:
        """Merge keys: explicit keys win, then earlier merged mappings over later ones. Each
        merged entry is paid for before it is copied, so a few lines of `<<: *a` cannot make
        the parser build gigabytes before the size check runs."""
        for source in self.merges:
            for merged in source if isinstance(source, list) else [source]:
                if not isinstance(merged, dict):
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", self.mark, "a merge key needs a mapping", None
                    )
                budget.spend(len(merged), self.mark)
                for key, value in merged.items():
                    self.value.setdefault(key, value)
        return self.value


@dataclass
class _Budget:
    """Entries that merge keys may still copy in one stream (the expansion limit)."""

    left: int

    def spend(self, entries: int, mark: Any) -> None:
        self.left -= entries
        if self.left < 0:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                mark,
                f"merge keys expand the document past {MAX_EXPANDED_NODES:,} nodes",
                None,
            )


@dataclass(frozen=True)
class Spans:
    """Where each entry of a top-level `items:` block sequence sits in the text."""

    items: list[tuple[int, int]]  # [start, end) character offsets, comments after an item included
    indent: int  # the column of the entries' `-`


def _collection_start(event: Any) -> tuple[_Mapping | list[Any], Any]:
    tag = event.tag
    is_map = type(event) is yaml.MappingStartEvent
    if tag in (None, "!", TAG + "map", TAG + "seq"):
        value: Any = {} if is_map else []
    else:
        value = TaggedMap(tag) if is_map else TaggedSeq(tag)
    return (_Mapping(event.start_mark, value) if is_map else value), value


def _documents(text: str, want_spans: bool = False) -> tuple[list[Any], Spans | None]:
    """Build Python objects straight from libyaml's events.

    Composing PyYAML's node graph first cost ~5x the parse and held every node in memory at
    once; building from events keeps only the objects. An alias refers to the anchored object.
    With `want_spans`, also find where each item of a top-level `items:` block sequence is.

    This loop runs once per event (hundreds of thousands for a large contract), so the common
    cases come first and are written out here rather than in helpers: an untagged plain scalar
    that cannot be a number or keyword is its own text, and a value goes into a list or dict
    without further checks.
    """
    docs: list[Any] = []
    stack: list[_Mapping | list[Any]] = []
    budget = _Budget(MAX_EXPANDED_NODES)
    anchors: dict[str, Any] = {}
    texts: dict[str, str] = {}  # one string object for each short text, however often it occurs
    aliased = False
    items_seq: list[Any] | None = None
    item_lines: list[int] = []
    seq_line = seq_col = end_line = -1
    scalar_event, mapping_start, mapping_end = yaml.ScalarEvent, yaml.MappingStartEvent, yaml.MappingEndEvent
    sequence_start, sequence_end, alias_event = yaml.SequenceStartEvent, yaml.SequenceEndEvent, yaml.AliasEvent
    document_start, stream_end = yaml.DocumentStartEvent, yaml.StreamEndEvent
    keywords, number_start = KEYWORDS, NUMBER_START
    parser = _Loader(text)
    try:
        while True:
            event = parser.get_event()
            kind = type(event)
            if kind is scalar_event:
                value = event.value
                if len(value) <= SHARED_TEXT:
                    value = texts.setdefault(value, value)
                if event.tag is not None or event.style or not event.implicit[0]:
                    value = _scalar_value(event)
                elif value[:1] in number_start or value in keywords:
                    value = resolve_plain(value)
                if event.anchor is not None:
                    anchors[event.anchor] = value
            elif kind is mapping_start or kind is sequence_start:
                frame, value = _collection_start(event)
                if event.anchor is not None:
                    anchors[event.anchor] = value
                if want_spans:
                    if (
                        kind is sequence_start
                        and len(stack) == 1
                        and isinstance(stack[0], _Mapping)
                        and stack[0].has_key
                        and stack[0].key == "items"
                        and not event.flow_style
                    ):
                        items_seq, seq_line, seq_col = value, event.start_mark.line, event.start_mark.column
                    elif kind is mapping_start and stack and stack[-1] is items_seq:
                        item_lines.append(event.start_mark.line)
                stack.append(frame)
                continue
            elif kind is mapping_end or kind is sequence_end:
                done = stack.pop()
                value = done.close(budget) if type(done) is _Mapping else done
                if done is items_seq and items_seq is not None:
                    end_line = event.start_mark.line
            elif kind is alias_event:
                if event.anchor not in anchors:
                    raise yaml.composer.ComposerError(
                        None, None, f"found undefined alias {event.anchor}", event.start_mark
                    )
                value = anchors[event.anchor]
                aliased = True
            elif kind is document_start:
                anchors = {}
                continue
            elif kind is stream_end or event is None:
                break
            else:
                continue  # stream start, document end
            if not stack:
                docs.append(value)
                continue
            parent = stack[-1]
            if type(parent) is list or isinstance(parent, TaggedSeq):
                parent.append(value)
            elif parent.has_key:
                if parent.key is MERGE:
                    parent.merges.append(value)
                else:
                    parent.value[parent.key] = value
                parent.has_key = False
            else:
                if isinstance(value, (dict, list)):
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", parent.mark, "found unhashable key", event.start_mark
                    )
                if value is not MERGE and value in parent.value:
                    raise DuplicateKeyError(
                        "while constructing a mapping", parent.mark, f"found duplicate key {value!r}", event.start_mark
                    )
                parent.key, parent.has_key = value, True
    finally:
        parser.dispose()
    if aliased:
        _check_expansion(docs)
    spans = _item_spans(text, item_lines, seq_line, seq_col, end_line) if items_seq is not None else None
    return docs, spans


def _item_spans(text: str, item_lines: list[int], seq_line: int, column: int, end_line: int) -> Spans | None:
    """Each item's text from its `-` line to the next item's (the last one's to where the
    sequence ends), found from the lines the parser reported."""
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)

    def is_entry(number: int) -> bool:
        line = lines[number] if number < len(lines) else ""
        return (
            len(line) > column
            and line[column] == "-"
            and not line[:column].strip()
            and (len(line) == column + 1 or line[column + 1] in " \t\r")
        )

    entry_lines: list[int] = []
    floor = seq_line
    for line in item_lines:
        found = next((n for n in range(line, floor - 1, -1) if is_entry(n)), None)
        if found is None or (entry_lines and found <= entry_lines[-1]):
            return None  # not laid out as this reader expects: no verbatim pass-through
        entry_lines.append(found)
        floor = found + 1
    end = starts[end_line] if 0 <= end_line < len(starts) else len(text)
    offsets = [starts[n] for n in entry_lines] + [end]
    return Spans([(offsets[i], offsets[i + 1]) for i in range(len(entry_lines))], column)


MAX_EXPANDED_NODES = 1_000_000
# Texts up to this length (keys, names, short values) share one object per distinct text:
# a contract repeats its keys and values thousands of times.
SHARED_TEXT = 64


def _check_expansion(docs: list[Any]) -> None:
    """Refuse documents whose aliases expand past MAX_EXPANDED_NODES ("billion laughs"):
    every later step walks the expanded tree. Iterative, so any nesting depth is fine."""
    sizes: dict[int, int] = {}
    total = 0
    for doc in docs:
        total += _expanded_size(doc, sizes)
        if total > MAX_EXPANDED_NODES:
            raise yaml.composer.ComposerError(
                None, None, f"aliases expand the document past {MAX_EXPANDED_NODES:,} nodes", None
            )


def _expanded_size(root: Any, sizes: dict[int, int]) -> int:
    """Nodes in `root` with every alias expanded (shared subtrees counted each time)."""
    if not isinstance(root, (dict, list)):
        return 1
    open_nodes: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            children = node.values() if isinstance(node, dict) else node
            total = 1 + sum(sizes[id(c)] if isinstance(c, (dict, list)) else 1 for c in children)
            sizes[key] = min(total, MAX_EXPANDED_NODES + 1)
            open_nodes.discard(key)
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise yaml.composer.ComposerError(None, None, "an alias refers to a node that contains it", None)
        open_nodes.add(key)
        stack.append((node, True))
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, False) for child in children if isinstance(child, (dict, list)) and id(child) not in sizes)
    return sizes[id(root)]


def load(text: str) -> Any:
    """Load one YAML document (raises yaml.YAMLError on malformed input or several documents)."""
    return load_with_spans(text)[0]


def load_with_spans(text: str) -> tuple[Any, Spans | None]:
    """One document, and where the entries of its top-level `items:` sequence are."""
    docs, spans = _documents(text, want_spans=True)
    if len(docs) > 1:
        raise yaml.composer.ComposerError(None, None, "expected a single document, but found another", None)
    return (docs[0] if docs else None), spans


def load_all(text: str) -> list[Any]:
    """Load every document of a stream, dropping empty ones."""
    return [doc for doc in _documents(text)[0] if doc is not None]


def describe_error(exc: yaml.YAMLError) -> str:
    """`problem at line L, column C`, without the source snippet (it could hold a value)."""
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or "malformed YAML"
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is None:
        return str(problem)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
