"""YAML in and out, the way Kubernetes tools read it.

Plain scalars are typed as kyaml and go-yaml v3 type them (what kustomize and kpt run on):
`yes` and `on` stay strings, `0644` is the octal 420, `1_000` is 1000, a date is a timestamp.
Merge keys (`<<`, also as `!!merge`) are merged. Other tags (`!!binary`, `!!timestamp`,
`!Ref`) are kept as `Tagged` values, so that a step that cares (a SecretContract) can refuse
them with a field path while every other item passes through. A mapping with a repeated key
is an error instead of silently keeping the last value.

Dumping is block style, in the order the dicts were built, quoting every string that any
YAML 1.1 or 1.2 reader (PyYAML, go-yaml v2 in kubectl, go-yaml v3 in kyaml) would read as
something else.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TextIO

import yaml

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TAG = "tag:yaml.org,2002:"


class DuplicateKeyError(yaml.constructor.ConstructorError):
    pass


class Tagged:
    """A value that carried a YAML tag this codec does not turn into a Python type."""

    tag: str


class TaggedStr(str, Tagged):
    def __new__(cls, value: str, tag: str) -> TaggedStr:
        made = super().__new__(cls, value)
        made.tag = tag
        return made


class TaggedMap(dict[Any, Any], Tagged):
    def __init__(self, tag: str) -> None:
        super().__init__()
        self.tag = tag


class TaggedSeq(list[Any], Tagged):
    def __init__(self, tag: str) -> None:
        super().__init__()
        self.tag = tag


class _Merge:
    """The merge key `<<`."""

    def __repr__(self) -> str:
        return "<<"


MERGE = _Merge()

# go-yaml v3's resolver (resolve.go), which kyaml uses.
_RESOLVE_MAP: dict[str, Any] = {
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), float("nan")),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), float("inf")),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), float("-inf")),
    "<<": MERGE,
}
_GO_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
    r"(?:[Tt][0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(?:\.[0-9]+)?(?:Z|[-+][0-9]{2}:[0-9]{2})"
    r"| [0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(?:\.[0-9]+)?)?"
)
_GO_INT = re.compile(r"([-+]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
# Read as booleans by YAML 1.1 readers (go-yaml v2 in kubectl, PyYAML): always quoted on output.
_OLD_BOOLS = frozenset(
    ["y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF"]
)


def resolve_plain(text: str) -> Any:
    """A plain (unquoted, untagged) scalar typed as go-yaml v3 types it."""
    if text in _RESOLVE_MAP:
        return _RESOLVE_MAP[text]
    first = text[:1]
    if first == ".":
        try:
            return float(text)
        except ValueError:
            return text
    if not first or first not in "0123456789+-":
        return text
    if _TIMESTAMP.fullmatch(text):
        return TaggedStr(text, _TAG + "timestamp")
    plain = text.replace("_", "")
    number = _GO_INT.fullmatch(plain)
    if number:
        sign, digits = number.groups()
        value = _go_int(digits)
        value = -value if value is not None and sign == "-" else value
        if value is not None and -(2**63) <= value < 2**64:
            return value
    if _GO_FLOAT.fullmatch(plain):
        value = float(plain)
        if not math.isinf(value):
            return value
        return TaggedStr(text, _TAG + "float")  # Go's ParseFloat refuses it (out of range)
    if number:
        return TaggedStr(text, _TAG + "int")  # past 64 bits: no Kubernetes tool reads it as a number
    return text


# Digits of the largest 64-bit value in the narrowest base: more significant digits than this
# are out of range in every base, and are never converted (Python refuses past 4,300 digits).
_MAX_INT_DIGITS = 64


def _go_int(digits: str) -> int | None:
    """strconv.ParseInt with base 0: a leading 0 means octal, as in Go. None when the number
    is out of range for any 64-bit reader."""
    prefix = digits[:2].lower()
    base, body = {"0x": (16, digits[2:]), "0o": (8, digits[2:]), "0b": (2, digits[2:])}.get(prefix, (10, digits))
    if base == 10 and len(digits) > 1 and digits[0] == "0":
        base = 8
    if len(body.lstrip("0")) > _MAX_INT_DIGITS:
        return None
    return int(body, base)


def _typed(tag: str, text: str, mark: Any) -> Any:
    short = tag[len(_TAG) :] if tag.startswith(_TAG) else None
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
    if tag in (None, "!", _TAG + "map", _TAG + "seq"):
        value: Any = {} if is_map else []
    else:
        value = TaggedMap(tag) if is_map else TaggedSeq(tag)
    return (_Mapping(event.start_mark, value) if is_map else value), value


def _documents(text: str, want_spans: bool = False) -> tuple[list[Any], Spans | None]:
    """Build Python objects straight from libyaml's events.

    Composing PyYAML's node graph first cost ~5x the parse and held every node in memory at
    once; building from events keeps only the objects. An alias refers to the anchored object.
    With `want_spans`, also find where each item of a top-level `items:` block sequence is.
    """
    docs: list[Any] = []
    stack: list[_Mapping | list[Any]] = []
    budget = _Budget(MAX_EXPANDED_NODES)
    anchors: dict[str, Any] = {}
    aliased = False
    items_seq: list[Any] | None = None
    item_lines: list[int] = []
    seq_line = seq_col = end_line = -1
    for event in yaml.parse(text, Loader=_Loader):
        kind = type(event)
        if kind is yaml.ScalarEvent:
            value = _scalar_value(event)
            if event.anchor is not None:
                anchors[event.anchor] = value
        elif kind is yaml.AliasEvent:
            if event.anchor not in anchors:
                raise yaml.composer.ComposerError(None, None, f"found undefined alias {event.anchor}", event.start_mark)
            value = anchors[event.anchor]
            aliased = True
        elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            frame, value = _collection_start(event)
            if event.anchor is not None:
                anchors[event.anchor] = value
            if want_spans:
                if (
                    kind is yaml.SequenceStartEvent
                    and len(stack) == 1
                    and isinstance(stack[0], _Mapping)
                    and stack[0].has_key
                    and stack[0].key == "items"
                    and not event.flow_style
                ):
                    items_seq, seq_line, seq_col = value, event.start_mark.line, event.start_mark.column
                elif kind is yaml.MappingStartEvent and stack and stack[-1] is items_seq:
                    item_lines.append(event.start_mark.line)
            stack.append(frame)
            continue
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            done = stack.pop()
            value = done.close(budget) if isinstance(done, _Mapping) else done
            if done is items_seq and items_seq is not None:
                end_line = event.start_mark.line
        elif kind is yaml.DocumentStartEvent:
            anchors = {}
            continue
        else:
            continue  # stream start and end, document end
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


def dump(obj: Any) -> str:
    """One block-style YAML document, keys in insertion order."""
    out: list[str] = []
    _node(obj, 0, out)
    return "".join(out)


def write(obj: Any, stream: TextIO) -> None:
    """`dump(obj)` written to `stream` as it is produced, without holding the whole text."""
    out = _Flushing(stream)
    _node(obj, 0, out)
    out.flush()


class _Flushing(list[str]):
    """A list the emitter appends to, emptied into a stream every few thousand pieces."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream

    def append(self, text: str) -> None:
        super().append(text)
        if len(self) >= 4096:
            self.flush()

    def flush(self) -> None:
        self.stream.write("".join(self))
        self.clear()


def dump_all(objs: list[Any]) -> str:
    """A multi-document stream."""
    return "---\n".join(dump(obj) for obj in objs)


# The emitter is written here rather than using PyYAML's representer, which costs ~20x
# more: a build with thousands of secrets spent most of its time dumping. Output is plain
# block YAML that PyYAML, kyaml and go-yaml read back to the same data (tested).
_PLAIN = re.compile(r"^[A-Za-z0-9_./][A-Za-z0-9_./@:+=,()-]*(?: [A-Za-z0-9_./@:+=,()-]+)*\Z")
_RESOLVER = yaml.resolver.Resolver()


@lru_cache(maxsize=65536)
def _scalar(text: str) -> str:
    """A string as a YAML scalar: plain where every reader takes it for this string,
    else double-quoted (JSON string syntax is valid YAML)."""
    if (
        _PLAIN.match(text)
        and not text.endswith(":")
        and ": " not in text
        and " #" not in text
        and not text.startswith("...")
        and not _read_as_other(text)
    ):
        return text
    return _quoted(text)


def _read_as_other(text: str) -> bool:
    """Whether some reader takes plain `text` for a non-string: go-yaml v3 (kyaml), go-yaml
    v2 (kubectl, YAML 1.1 booleans such as `y`) or PyYAML (YAML 1.1 numbers, dates)."""
    if text in _OLD_BOOLS:
        return True
    value = resolve_plain(text)
    if not isinstance(value, str) or isinstance(value, Tagged):
        return True
    return _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) != _TAG + "str"


def _quoted(text: str) -> str:
    quoted = json.dumps(text, ensure_ascii=False)
    if quoted.isprintable():
        return quoted
    # Characters YAML reads as line breaks or forbids raw (U+2028, U+0085, controls,
    # unassigned code points) become YAML escapes; JSON's surrogate pairs are not valid YAML.
    return "".join(c if c.isprintable() else _escape(c) for c in quoted)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _literal(text: str, indent: int) -> str | None:
    """A multi-line string as a `|` block, when that reads back exactly."""
    lines = text.split("\n")
    trailing = len(text) - len(text.rstrip("\n"))
    body = lines[: len(lines) - trailing] if trailing else lines
    first = next((line for line in body if line), "")
    # The first non-empty line sets the block's indentation, so it must not start with blanks.
    if (
        not first
        or first[:1] in (" ", "\t")
        or any(line != line.rstrip(" \t") or not line.isprintable() for line in body)
    ):
        return None
    chomp = "-" if trailing == 0 else "" if trailing == 1 else "+"
    pad = " " * indent
    rest = "\n" * (trailing - 1) if trailing > 1 else ""
    return f"|{chomp}\n" + "".join(f"{pad}{line}\n" if line else "\n" for line in body) + rest


def _inline(value: Any, indent: int) -> str | None:
    """A scalar (or empty collection) as text after `key: ` or `- `; None for a block."""
    if isinstance(value, str):
        if "\n" in value:
            return _literal(value, indent) or _quoted(value) + "\n"
        return _scalar(value) + "\n"
    if value is None:
        return "null\n"
    if isinstance(value, bool):
        return "true\n" if value else "false\n"
    if isinstance(value, int):
        return f"{value}\n"
    if isinstance(value, float):
        if value != value:
            return ".nan\n"
        if value in (float("inf"), float("-inf")):
            return (".inf" if value > 0 else "-.inf") + "\n"
        text = repr(value)
        mantissa, _, exponent = text.partition("e")
        if exponent and "." not in mantissa:
            text = f"{mantissa}.0e{exponent}"  # YAML 1.1 readers need the dot to see a float
        return text + "\n"
    if isinstance(value, dict) and not value:
        return "{}\n"
    if isinstance(value, list) and not value:
        return "[]\n"
    if isinstance(value, (dict, list)):
        return None
    raise TypeError(f"cannot represent {type(value).__name__} in YAML")


def _node(value: Any, indent: int, out: list[str], first_prefix: str = "") -> None:
    """Emit `value` at `indent`; `first_prefix` replaces the indentation of its first line
    (used for a mapping that starts right after `- `)."""
    pad = " " * indent
    prefix = first_prefix or pad
    if isinstance(value, dict) and value:
        for key, item in value.items():
            rendered = _key(key)
            explicit = len(rendered) > MAX_IMPLICIT_KEY
            # YAML limits an implicit key to 1024 characters; a longer one needs `? key`.
            head = f"{prefix}? {rendered}\n{pad}:" if explicit else f"{prefix}{rendered}:"
            prefix = pad
            text = _inline(item, indent + 2)
            if text is not None:
                out.append(f"{head} {text}")
            elif isinstance(item, dict) or explicit:
                out.append(head + "\n")
                _node(item, indent + 2, out)
            else:
                out.append(head + "\n")
                _node(item, indent, out)  # sequences sit at their key's indentation
    elif isinstance(value, list) and value:
        for item in value:
            text = _inline(item, indent + 2)
            if text is not None:
                out.append(f"{prefix}- {text}")
            else:
                _node(item, indent + 2, out, first_prefix=f"{prefix}- ")
            prefix = pad
    else:
        text = _inline(value, indent)
        out.append(f"{prefix}{text}" if text is not None else "")


MAX_IMPLICIT_KEY = 1000


def _key(key: Any) -> str:
    if isinstance(key, str):
        return _scalar(key)
    text = _inline(key, 0)
    if text is None:
        raise TypeError("mapping keys must be scalars")
    return text.rstrip("\n")


def describe_error(exc: yaml.YAMLError) -> str:
    """`problem at line L, column C`, without the source snippet (it could hold a value)."""
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or "malformed YAML"
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is None:
        return str(problem)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
