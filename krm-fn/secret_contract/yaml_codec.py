"""YAML in and out, the way Kubernetes tools read it.

Loading follows the YAML 1.2 core schema (as kustomize and kpt do), so `yes`, `on` and
`0755` stay strings, and a mapping with a repeated key is an error instead of silently
keeping the last value. Dumping is block style, in the order the dicts were built.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: type = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class DuplicateKeyError(yaml.constructor.ConstructorError):
    pass


class Loader(_Loader):  # type: ignore[misc,valid-type]
    """Safe loader with YAML 1.2 core scalars and duplicate-key detection."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict)):
                continue  # unhashable; the base method reports it
            if key in seen:
                raise DuplicateKeyError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


Loader.yaml_implicit_resolvers = {}
_CORE_SCHEMA = [
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", "~nN"),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+.0123456789",
    ),
]
_CORE_PATTERNS = [re.compile(pattern) for _, pattern, _ in _CORE_SCHEMA]
for (_tag, _, _first), _regex in zip(_CORE_SCHEMA, _CORE_PATTERNS, strict=True):
    Loader.add_implicit_resolver(_tag, _regex, list(_first))
Loader.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^$"), [""])


def _construct_core_int(loader: Loader, node: yaml.ScalarNode) -> int:
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)  # YAML 1.2: a leading zero is still decimal


Loader.add_constructor("tag:yaml.org,2002:int", _construct_core_int)


class Dumper(_Dumper):  # type: ignore[misc,valid-type]
    """Block-style dumper that never emits anchors (kpt and kustomize re-read our output)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: Dumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    if style is None and _looks_typed(dumper, data):
        style = '"'  # double quotes, as kubectl and kpt write them, so kpt leaves user files as they were
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


def _looks_typed(dumper: Dumper, data: str) -> bool:
    """Whether a YAML 1.1 or 1.2 reader would take the plain scalar for a non-string."""
    if any(regex.match(data) for regex in _CORE_PATTERNS):
        return True
    return dumper.resolve(yaml.ScalarNode, data, (True, False)) != "tag:yaml.org,2002:str"


Dumper.add_representer(str, _represent_str)


def load(text: str) -> Any:
    """Load one YAML document (raises yaml.YAMLError on malformed input)."""
    return yaml.load(text, Loader=Loader)  # noqa: S506 - Loader derives from SafeLoader


def load_all(text: str) -> list[Any]:
    """Load every document of a stream, dropping empty ones."""
    return [doc for doc in yaml.load_all(text, Loader=Loader) if doc is not None]


def dump(obj: Any) -> str:
    return yaml.dump(obj, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=1 << 16, allow_unicode=True)


def dump_all(objs: list[Any]) -> str:
    return yaml.dump_all(
        objs, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=1 << 16, allow_unicode=True
    )


def describe_error(exc: yaml.YAMLError) -> str:
    """`problem at line L, column C`, without the source snippet (it could hold a value)."""
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or "malformed YAML"
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is None:
        return str(problem)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
