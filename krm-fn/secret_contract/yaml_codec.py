"""YAML in and out, the way Kubernetes tools read it.

Loading follows the YAML 1.2 core schema (as kustomize and kpt do), so `yes`, `on` and
`0755` stay strings, and a mapping with a repeated key is an error instead of silently
keeping the last value. Dumping is block style, in the order the dicts were built.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, TextIO

import yaml

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DuplicateKeyError(yaml.constructor.ConstructorError):
    pass


_NULL = re.compile(r"^(?:~|null|Null|NULL|)\Z")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)\Z")
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)\Z")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z"
)
_CORE_PATTERNS = (_NULL, _BOOL, _INT, _FLOAT)
_TAG = "tag:yaml.org,2002:"


def _int(text: str) -> int:
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)  # YAML 1.2: a leading zero is still decimal


def _float(text: str) -> float:
    lowered = text.lower()
    if lowered.endswith(".inf"):
        return float("-inf") if lowered.startswith("-") else float("inf")
    if lowered == ".nan":
        return float("nan")
    return float(text)


_BY_TAG = {
    "str": str,
    "null": lambda _text: None,
    "bool": lambda text: text.lower() == "true",
    "int": _int,
    "float": _float,
}


def _scalar_value(event: yaml.ScalarEvent) -> Any:
    text = event.value
    tag = event.tag
    if tag is None or tag == "!":
        if event.style or tag == "!" or not event.implicit[0]:
            return text  # quoted, block or non-specific: a string
        first = text[:1]
        if first in "~nN" and _NULL.match(text):
            return None
        if first in "tTfF" and _BOOL.match(text):
            return text.lower() == "true"
        if first in "-+0123456789" and _INT.match(text):
            return _int(text)
        if first in "-+.0123456789" and _FLOAT.match(text):
            return _float(text)
        return text
    if tag.startswith(_TAG) and tag[len(_TAG) :] in _BY_TAG:
        try:
            return _BY_TAG[tag[len(_TAG) :]](text)
        except ValueError:
            raise yaml.constructor.ConstructorError(
                None, None, f"invalid value for tag {tag}", event.start_mark
            ) from None
    raise yaml.constructor.ConstructorError(None, None, f"unsupported tag {tag}", event.start_mark)


class _Mapping:
    """A mapping being built, and the key waiting for its value."""

    __slots__ = ("has_key", "key", "mark", "value")

    def __init__(self, mark: Any) -> None:
        self.value: dict[Any, Any] = {}
        self.key: Any = None
        self.has_key = False
        self.mark = mark


def _documents(text: str) -> list[Any]:
    """Build Python objects straight from libyaml's events.

    Composing PyYAML's node graph first cost ~5x the parse and held every node in memory at
    once; building from events keeps only the objects. An alias refers to the anchored object.
    """
    docs: list[Any] = []
    stack: list[_Mapping | list[Any]] = []
    anchors: dict[str, Any] = {}
    aliased = False
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
            if event.tag not in (None, "!", _TAG + "map", _TAG + "seq"):
                raise yaml.constructor.ConstructorError(None, None, f"unsupported tag {event.tag}", event.start_mark)
            frame: _Mapping | list[Any] = _Mapping(event.start_mark) if kind is yaml.MappingStartEvent else []
            if event.anchor is not None:
                anchors[event.anchor] = frame.value if isinstance(frame, _Mapping) else frame
            stack.append(frame)
            continue
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            done = stack.pop()
            value = done.value if isinstance(done, _Mapping) else done
        elif kind is yaml.DocumentStartEvent:
            anchors = {}
            continue
        else:
            continue  # stream start and end, document end
        if not stack:
            docs.append(value)
            continue
        parent = stack[-1]
        if type(parent) is list:
            parent.append(value)
        elif parent.has_key:
            parent.value[parent.key] = value
            parent.has_key = False
        else:
            if isinstance(value, (dict, list)):
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", parent.mark, "found unhashable key", event.start_mark
                )
            if value in parent.value:
                raise DuplicateKeyError(
                    "while constructing a mapping", parent.mark, f"found duplicate key {value!r}", event.start_mark
                )
            parent.key, parent.has_key = value, True
    if aliased:
        _check_expansion(docs)
    return docs


MAX_EXPANDED_NODES = 1_000_000


def _check_expansion(docs: list[Any]) -> None:
    """Refuse documents whose aliases expand past MAX_EXPANDED_NODES ("billion laughs"):
    every later step walks the expanded tree."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: Any) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        known = sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in open_nodes:
            raise yaml.composer.ComposerError(None, None, "an alias refers to a node that contains it", None)
        open_nodes.add(id(node))
        children = node.values() if isinstance(node, dict) else node
        total = 1
        for child in children:
            total += size(child)
            if total > MAX_EXPANDED_NODES:
                break
        open_nodes.discard(id(node))
        sizes[id(node)] = total
        return total

    if sum(size(doc) for doc in docs) > MAX_EXPANDED_NODES:
        raise yaml.composer.ComposerError(
            None, None, f"aliases expand the document past {MAX_EXPANDED_NODES:,} nodes", None
        )


def load(text: str) -> Any:
    """Load one YAML document (raises yaml.YAMLError on malformed input or several documents)."""
    docs = _documents(text)
    if len(docs) > 1:
        raise yaml.composer.ComposerError(None, None, "expected a single document, but found another", None)
    return docs[0] if docs else None


def load_all(text: str) -> list[Any]:
    """Load every document of a stream, dropping empty ones."""
    return [doc for doc in _documents(text) if doc is not None]


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
        and not any(regex.match(text) for regex in _CORE_PATTERNS)
        and _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == "tag:yaml.org,2002:str"
    ):
        return text
    return _quoted(text)


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
            head = f"{prefix}{_key(key)}:"
            prefix = pad
            text = _inline(item, indent + 2)
            if text is not None:
                out.append(f"{head} {text}")
            elif isinstance(item, dict):
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
