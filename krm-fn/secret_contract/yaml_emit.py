"""YAML out: block style, keys in the order the dicts were built, every string quoted that any
YAML 1.1 or 1.2 reader (PyYAML, go-yaml v2 in kubectl, go-yaml v3 in kyaml) would read as
something else. Callers reach it through `yaml_codec`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, TextIO

import yaml

from secret_contract.yaml_resolve import TAG, Tagged, resolve_plain

# Read as booleans by YAML 1.1 readers (go-yaml v2 in kubectl, PyYAML): always quoted on output.
_OLD_BOOLS = frozenset(
    ["y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF"]
)


def dump(obj: Any) -> str:
    """One block-style YAML document, keys in insertion order."""
    out: list[str] = []
    _node(obj, 0, out)
    return "".join(out)


def write(obj: Any, stream: TextIO, indent: int = 0) -> None:
    """`dump(obj)` written to `stream`; `indent` shifts every line right (a sequence's entries
    nested under a key)."""
    out: list[str] = []
    _node(obj, indent, out)
    stream.write("".join(out))


def dump_all(objs: list[Any]) -> str:
    """A multi-document stream."""
    return "---\n".join(dump(obj) for obj in objs)


def write_all(objs: Iterable[Any], stream: TextIO) -> None:
    """`dump_all(objs)` written to `stream` as it is produced: a render of 100,000 secrets
    would otherwise hold its whole output text (hundreds of MB) before writing any of it.
    The text is written every few thousand pieces, between documents."""
    out: list[str] = []
    for number, obj in enumerate(objs):
        if number:
            out.append("---\n")
        _node(obj, 0, out)
        if len(out) >= 4096:
            stream.write("".join(out))
            out.clear()
    stream.write("".join(out))


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
    return _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) != TAG + "str"


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


@lru_cache(maxsize=65536)
def _scalar_line(text: str) -> str:
    return _scalar(text) + "\n"


def _inline(value: Any, indent: int) -> str | None:
    """A scalar (or empty collection) as text after `key: ` or `- `; None for a block."""
    kind = type(value)
    if kind is str and "\n" not in value:
        return _scalar_line(value)  # most values: one line of text, often repeated
    if kind is dict or kind is list:
        return None if value else ("{}\n" if kind is dict else "[]\n")
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
            head, explicit = _head(prefix, pad, key) if type(key) is str else _head.__wrapped__(prefix, pad, key)
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
        # Only a document that is a lone scalar gets here: a `|` block needs its lines
        # indented past the document's column 0, which libyaml requires.
        text = _inline(value, indent + 2)
        out.append(f"{prefix}{text}" if text is not None else "")


MAX_IMPLICIT_KEY = 1000


@lru_cache(maxsize=65536)
def _head(prefix: str, pad: str, key: Any) -> tuple[str, bool]:
    """A mapping entry's text up to its `:` and whether the key is explicit. Cached for plain
    strings only (the same few keys at the same few indentations make most of a large output);
    a tagged key equals its text and must not share its entry."""
    rendered = _key(key)
    # YAML limits an implicit key to 1024 characters; a longer one needs `? key`.
    if len(rendered) > MAX_IMPLICIT_KEY:
        return f"{prefix}? {rendered}\n{pad}:", True
    return f"{prefix}{rendered}:", False


def _key(key: Any) -> str:
    if isinstance(key, str):
        return _scalar(key)
    text = _inline(key, 0)
    if text is None:
        raise TypeError("mapping keys must be scalars")
    return text.rstrip("\n")
