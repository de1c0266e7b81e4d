"""How a plain YAML scalar is typed, as go-yaml v3 types it (kyaml, and so kustomize and kpt),
and the values that keep a tag no Python type stands for.

Shared by the loader (`yaml_codec`), which types what it reads, and the emitter (`yaml_emit`),
which quotes every string a reader would take for something else.
"""

from __future__ import annotations

import math
import re
from typing import Any

TAG = "tag:yaml.org,2002:"


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

# go-yaml v3's resolver (resolve.go), which kyaml uses: the plain scalars typed by their whole text.
KEYWORDS: dict[str, Any] = {
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), float("nan")),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), float("inf")),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), float("-inf")),
    "<<": MERGE,
}
# The first characters of a plain scalar that may be typed as a number or timestamp; any other
# plain scalar is its own text unless it is one of KEYWORDS (the loader's shortcut).
NUMBER_START = frozenset("0123456789+-.")
_GO_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
    r"(?:[Tt][0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(?:\.[0-9]+)?(?:Z|[-+][0-9]{2}:[0-9]{2})"
    r"| [0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(?:\.[0-9]+)?)?"
)
_GO_INT = re.compile(r"([-+]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")


def resolve_plain(text: str) -> Any:
    """A plain (unquoted, untagged) scalar typed as go-yaml v3 types it."""
    if text in KEYWORDS:
        return KEYWORDS[text]
    first = text[:1]
    if first == ".":
        try:
            return float(text)
        except ValueError:
            return text
    if not first or first not in "0123456789+-":
        return text
    if _TIMESTAMP.fullmatch(text):
        return TaggedStr(text, TAG + "timestamp")
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
        return TaggedStr(text, TAG + "float")  # Go's ParseFloat refuses it (out of range)
    if number:
        return TaggedStr(text, TAG + "int")  # past 64 bits: no Kubernetes tool reads it as a number
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
