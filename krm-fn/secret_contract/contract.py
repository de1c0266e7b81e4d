"""The SecretContract model, and validation of a raw object into it.

`load()` never raises: it returns the contract, or the list of every problem found
(schema first, then the semantic rules in `rules.py`), each with its field path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secret_contract import results, rules
from secret_contract.results import FileRef, ResourceRef, Result, error, has_errors
from secret_contract.rules_contract import type_name

if TYPE_CHECKING:
    from secret_contract.validation_cache import ValidationCache

SCHEMA_FILE = Path(__file__).with_name("schemas") / "secretcontract.v1.json"

API_VERSION = "hostk8s.io/v1"
KIND = "SecretContract"


@dataclass(frozen=True, slots=True)
class DataEntry:
    key: str
    value: str | None = field(default=None, repr=False)
    generate: str | None = None
    length: int | None = None
    provided: bool = False  # a value a person writes into Vault: never written or deleted here


@dataclass(frozen=True, slots=True)
class ExternalSecretSettings:
    """Optional ExternalSecret settings; None means "inherit". The last three are a view's
    own: its target Secret's name, template data, and (Secret key, Vault property) pairs."""

    api_version: str | None = None
    refresh_interval: str | None = None
    store_name: str | None = None
    store_kind: str | None = None
    template_type: str | None = None
    template_labels: Mapping[str, str] = field(default_factory=dict)
    template_annotations: Mapping[str, str] = field(default_factory=dict)
    target_name: str | None = None
    template_data: Mapping[str, str] = field(default_factory=dict)
    keys: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class View:
    """Another ExternalSecret over a secret's Vault values (`externalSecrets[]`)."""

    name: str
    settings: ExternalSecretSettings


@dataclass(frozen=True, slots=True)
class VaultSettings:
    mount: str | None = None
    layout: str | None = None
    prefix: str | None = None


@dataclass(frozen=True, slots=True)
class Secret:
    name: str
    namespace: str
    data: tuple[DataEntry, ...]
    external_secret: ExternalSecretSettings = ExternalSecretSettings()
    views: tuple[View, ...] = ()
    index: int = 0  # position in spec.secrets, for field paths in findings

    @property
    def field_path(self) -> str:
        return f"spec.secrets[{self.index}]"


@dataclass(frozen=True, slots=True)
class Contract:
    stack: str
    secrets: tuple[Secret, ...]
    resource: ResourceRef
    file: FileRef | None = None
    external_secret: ExternalSecretSettings = ExternalSecretSettings()
    vault: VaultSettings = VaultSettings()


def is_contract(obj: Any) -> bool:
    return (
        isinstance(obj, dict) and obj.get("kind") == KIND and str(obj.get("apiVersion", "")).startswith("hostk8s.io/")
    )


def load(
    obj: dict[str, Any], resource: ResourceRef, file: FileRef | None, known: ValidationCache | None = None
) -> tuple[Contract | None, list[Result]]:
    """Validate a raw SecretContract object; return it as a Contract if it has no errors."""
    findings = [r.at(resource, file) for r in validate(obj, known)]
    if has_errors(findings):
        return None, findings
    return _build(obj, resource, file), findings


def validate(obj: Any, known: ValidationCache | None = None) -> list[Result]:
    """Every problem of a raw contract: schema violations, then semantic rules. `known`
    remembers contracts that passed the schema, which then need not be checked again."""
    key = known.key(obj) if known else None
    found = [] if known and known.known(key) else list(_schema_errors(obj))
    if known and not found:
        known.remember(key)
    found.extend(rules.check(obj))
    return found


@cache
def schema_text() -> str:
    return SCHEMA_FILE.read_text("utf-8")


@cache
def schema() -> dict[str, Any]:
    return json.loads(schema_text())


@cache
def _validator_class() -> Any:
    """Draft 2020-12, except that an integer is an int: the standard counts 2.0 and 1e9 as
    integers, and a length of 1e9 must never reach a generator."""
    from jsonschema import Draft202012Validator, validators

    checker = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    )
    return validators.extend(Draft202012Validator, type_checker=checker)


@cache
def _validator() -> Any:
    return _validator_class()(_inline_refs(schema(), schema()["$defs"]))


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    """The schema with local `$ref`s replaced by their targets: resolving a reference for
    each of thousands of entries dominated validation time."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _inline_refs(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline_refs(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


def _schema_errors(obj: Any) -> Iterator[Result]:
    if _passes_fast_check(obj):
        return
    for err in _validator().iter_errors(obj):
        yield from _describe(err)


class _PythonInt:
    """The `integer` type as `_validator_class` reads it, for the fast validator."""

    def __init__(self, _parent_schema: Any, _value: Any, _schema_path: Any) -> None:
        pass

    def validate(self, instance: Any) -> None:
        if not isinstance(instance, int) or isinstance(instance, bool):
            raise ValueError("not an integer")


def _strict_integers(node: Any) -> Any:
    """The schema with each `"type": "integer"` read as a Python int (see `_validator_class`)."""
    if isinstance(node, dict):
        out = {k: _strict_integers(v) for k, v in node.items()}
        if out.get("type") == "integer":
            out["x-python-int"] = True
        return out
    if isinstance(node, list):
        return [_strict_integers(v) for v in node]
    return node


@cache
def _fast_validator() -> Any:
    import jsonschema_rs

    inlined = _inline_refs(schema(), schema()["$defs"])
    return jsonschema_rs.validator_for(_strict_integers(inlined), keywords={"x-python-int": _PythonInt})


def _passes_fast_check(obj: Any) -> bool:
    """Whether the compiled validator finds `obj` valid: two hundred times faster than
    jsonschema on a large contract. It only ever clears a contract; anything it rejects, or
    cannot read (a date, a key that is not a string), goes to jsonschema, whose errors are
    the ones described. Its regular expressions are stricter than Python's (`$` never
    matches before a final newline), so it never clears what jsonschema rejects."""
    try:
        return bool(_fast_validator().is_valid(obj))
    except Exception:  # whatever it cannot take, jsonschema judges
        return False


def _describe(err: Any) -> Iterator[Result]:
    """Turn a jsonschema error into findings whose text never repeats the offending value."""
    path = results.field_path(err.absolute_path)
    custom = err.schema.get("x-message") if isinstance(err.schema, dict) else None
    validator = err.validator
    if validator == "required":
        missing = [name for name in err.validator_value if name not in err.instance]
        for name in missing:
            yield error("required field is missing", results.join(path, name), "schema")
    elif validator == "additionalProperties":
        known = err.schema.get("properties", {})
        for name in sorted(k for k in err.instance if k not in known):
            yield error("unknown field" + _nearest(str(name), known), results.join(path, str(name)), "schema")
    elif custom:
        yield error(custom, path, "schema")
    elif validator == "type":
        expected = err.validator_value
        yield error(f"must be {_article(expected)} {expected}, not {type_name(err.instance)}", path, "schema")
    elif validator == "minItems":
        yield error(f"must have at least {err.validator_value} entries", path, "schema")
    else:
        yield error(f"fails the schema's '{validator}' check", path, "schema")


def _nearest(name: str, known: Any) -> str:
    """`; did you mean 'length'?` for a misspelt field, else ''."""
    import difflib

    close = difflib.get_close_matches(name, [str(k) for k in known], n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _article(word: str) -> str:
    return "an" if str(word)[:1] in "aeiou" else "a"


def _build(obj: dict[str, Any], resource: ResourceRef, file: FileRef | None) -> Contract:
    spec = obj["spec"]
    vault = spec.get("vault") or {}
    return Contract(
        stack=obj["metadata"]["name"],
        secrets=tuple(
            Secret(
                name=s["name"],
                namespace=s["namespace"],
                data=tuple(
                    DataEntry(d["key"], d.get("value"), d.get("generate"), d.get("length"), d.get("provided") is True)
                    for d in s["data"]
                ),
                external_secret=_external_secret_settings(s.get("externalSecret") or {}),
                views=tuple(View(v["name"], _external_secret_settings(v)) for v in s.get("externalSecrets") or ()),
                index=i,
            )
            for i, s in enumerate(spec["secrets"])
        ),
        resource=resource,
        file=file,
        external_secret=_external_secret_settings(spec.get("externalSecret") or {}),
        vault=VaultSettings(mount=vault.get("mount"), layout=vault.get("layout"), prefix=vault.get("prefix")),
    )


# What a secret without `externalSecret` holds: one shared instance, as the settings are frozen.
_NO_SETTINGS = ExternalSecretSettings()


def _external_secret_settings(raw: dict[str, Any]) -> ExternalSecretSettings:
    if not raw:
        return _NO_SETTINGS
    store = raw.get("secretStoreRef") or {}
    target = raw.get("target") or {}
    template = target.get("template") or {}
    meta = template.get("metadata") or {}
    return ExternalSecretSettings(
        api_version=raw.get("apiVersion"),
        refresh_interval=raw.get("refreshInterval"),
        store_name=store.get("name"),
        store_kind=store.get("kind"),
        template_type=template.get("type"),
        template_labels=dict(meta.get("labels") or {}),
        template_annotations=dict(meta.get("annotations") or {}),
        target_name=target.get("name"),
        template_data=dict(template.get("data") or {}),
        keys=tuple((d["secretKey"], d["property"]) for d in raw.get("data") or ()),
    )


def validate_fragment(definition: str, obj: Any) -> list[Result]:
    """Validate `obj` against one of the schema's `$defs` (used for settings from env)."""
    sub = {"$ref": f"#/$defs/{definition}", "$defs": schema()["$defs"]}
    return [r for err in _validator_class()(sub).iter_errors(obj) for r in _describe(err)]
