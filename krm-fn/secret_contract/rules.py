"""Semantic rules of a SecretContract, beyond what the JSON schema can say.

Each rule is a small function registered under a stable id; it walks the raw object
defensively (the schema may have failed) and yields findings with field paths. A rule's
docstring is its user documentation, with a passing and a failing example.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from secret_contract import generators
from secret_contract.results import Result, error, field_path, warning
from secret_contract.yaml_codec import Tagged

Rule = Callable[[dict[str, Any]], Iterable[Result]]
RULES: dict[str, Rule] = {}

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
MOUNT_SEGMENT = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
QUALIFIED_NAME_PART = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
SECRET_TYPE = re.compile(r"^[\x21-\x7e]{1,253}$")
MAX_ANNOTATIONS_SIZE = 256 * 1024  # Kubernetes' limit on all annotations of an object, in bytes
# Keys a Secret of a built-in type must carry, or the API server refuses it (ValidateSecret).
SECRET_TYPE_KEYS = {
    "kubernetes.io/basic-auth": ({"username", "password"}, "any"),
    "kubernetes.io/ssh-auth": ({"ssh-privatekey"}, "all"),
    "kubernetes.io/tls": ({"tls.crt", "tls.key"}, "all"),
    "kubernetes.io/dockercfg": ({".dockercfg"}, "all"),
    "kubernetes.io/dockerconfigjson": ({".dockerconfigjson"}, "all"),
}


def rule(rule_id: str) -> Callable[[Rule], Rule]:
    def add(fn: Rule) -> Rule:
        RULES[rule_id] = fn
        return fn

    return add


def check(obj: Any) -> list[Result]:
    """Run every rule; findings carry the id of the rule that produced them."""
    if not isinstance(obj, dict):
        return []
    found: list[Result] = []
    for rule_id, fn in RULES.items():
        found.extend(Result(r.severity, r.message, r.path, rule=rule_id) for r in fn(obj))
    return found


def type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "a string"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_dns_label(name: Any) -> bool:
    return isinstance(name, str) and len(name) <= 63 and bool(DNS_LABEL.fullmatch(name))


def is_stack_name(name: Any) -> bool:
    return isinstance(name, str) and len(name) <= 253 and all(is_dns_label(part) for part in name.split("/"))


def is_mount(mount: Any) -> bool:
    return isinstance(mount, str) and all(
        MOUNT_SEGMENT.fullmatch(part) and part not in (".", "..") for part in mount.split("/")
    )


def qualified_name_problem(key: str) -> str | None:
    """Why `key` is not a Kubernetes qualified name (label and annotation keys), or None."""
    prefix, slash, name = key.rpartition("/")
    if slash and not (len(prefix) <= 253 and DNS_SUBDOMAIN.fullmatch(prefix)):
        return "its prefix must be a DNS subdomain of at most 253 characters"
    if not name or len(name) > 63 or not QUALIFIED_NAME_PART.fullmatch(name):
        return "its name must be 1-63 letters, digits, '-', '_' or '.', starting and ending alphanumeric"
    return None


def secret_key_problem(key: str) -> str | None:
    """Why `key` is not a valid Secret data key (Kubernetes IsConfigMapKey), or None."""
    if len(key) > 253:
        return "must be at most 253 characters"
    if not SECRET_KEY.fullmatch(key):
        return "must consist of letters, digits, '-', '_' or '.'"
    if key in (".", "..") or key.startswith(".."):
        return "must not be '.' or '..', nor start with '..'"
    return None


def _secrets(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    spec = obj.get("spec")
    items = spec.get("secrets") if isinstance(spec, dict) else None
    if isinstance(items, list):
        for i, item in enumerate(items):
            if isinstance(item, dict):
                yield f"spec.secrets[{i}]", item


def _entries(secret: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    data = secret.get("data")
    if isinstance(data, list):
        for j, entry in enumerate(data):
            if isinstance(entry, dict):
                yield f"data[{j}]", entry


@rule("stack-name")
def stack_name(obj: dict[str, Any]) -> Iterator[Result]:
    """metadata.name is one or more DNS-1123 labels joined by '/'; it prefixes Vault paths.

    PASS: `name: foundation/airflow`    FAIL: `name: ../other`, `name: /abs`, `name: a//b`
    """
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if isinstance(name, str) and not is_stack_name(name):
        yield error(
            f"'{name}' is not a valid stack name: use DNS-1123 labels joined by '/' "
            "(lowercase letters, digits and '-', e.g. sample-app or foundation/airflow)",
            "metadata.name",
        )


@rule("secret-name")
def secret_name(obj: dict[str, Any]) -> Iterator[Result]:
    """A secret's name is a DNS-1123 subdomain and its namespace a DNS-1123 label.

    PASS: `name: postgres-credentials`, `namespace: sample-app`    FAIL: `name: Postgres_Creds`
    """
    for at, secret in _secrets(obj):
        name, namespace = secret.get("name"), secret.get("namespace")
        if isinstance(name, str) and not (len(name) <= 253 and DNS_SUBDOMAIN.fullmatch(name)):
            yield error(f"'{name}' is not a DNS-1123 subdomain (lowercase letters, digits, '-' and '.')", f"{at}.name")
        if isinstance(namespace, str) and not is_dns_label(namespace):
            yield error(
                f"'{namespace}' is not a DNS-1123 label (lowercase letters, digits and '-', at most 63)",
                f"{at}.namespace",
            )


@rule("duplicate-secret")
def duplicate_secret(obj: dict[str, Any]) -> Iterator[Result]:
    """Each (namespace, name) pair appears once in a contract.

    FAIL: two entries both named `db` in namespace `app`.
    """
    seen: dict[tuple[Any, Any], str] = {}
    for at, secret in _secrets(obj):
        ident = (secret.get("namespace"), secret.get("name"))
        if not all(isinstance(part, str) for part in ident):
            continue
        if ident in seen:
            yield error(f"secret {ident[0]}/{ident[1]} is already declared at {seen[ident]}", f"{at}.name")
        else:
            seen[ident] = at


@rule("data-key")
def data_key(obj: dict[str, Any]) -> Iterator[Result]:
    """A data key is a valid Secret key ([-._a-zA-Z0-9]+, at most 253) and unique in its secret.

    PASS: `key: DB_PASSWORD`    FAIL: `key: "db password"`, the same key twice
    """
    for at, secret in _secrets(obj):
        seen: dict[str, str] = {}
        for where, entry in _entries(secret):
            key = entry.get("key")
            if not isinstance(key, str):
                continue
            problem = secret_key_problem(key)
            if problem:
                yield error(f"key {problem}", f"{at}.{where}.key")
            elif key in seen:
                yield error(f"key '{key}' is already declared at {at}.{seen[key]}", f"{at}.{where}.key")
            else:
                seen[key] = where


@rule("value-or-generate")
def value_or_generate(obj: dict[str, Any]) -> Iterator[Result]:
    """Each data entry has exactly one of `value`, `generate` or `provided: true`; a `value`
    is a string.

    PASS: `value: "5432"`, `provided: true`    FAIL: `value: 5432` (YAML reads a number), two or none set
    """
    for at, secret in _secrets(obj):
        for where, entry in _entries(secret):
            path = f"{at}.{where}"
            has_value = "value" in entry
            kinds = [k for k in ("value", "generate", "provided") if k in entry]
            if len(kinds) > 1:
                yield error(f"set one of 'value', 'generate' or 'provided', not {' and '.join(kinds)}", path)
            elif not kinds:
                yield error("needs a 'value', a 'generate' or 'provided: true'", path)
            if has_value and not isinstance(entry["value"], str):
                yield error(
                    f"must be a string, but YAML read {type_name(entry['value'])}: quote it",
                    f"{path}.value",
                )


@rule("generator")
def generator(obj: dict[str, Any]) -> Iterator[Result]:
    """`generate` names a known generator; `length` is only given with it and within its bounds.

    PASS: `generate: password` with `length: 24`    FAIL: `generate: pasword`, `length: 4`
    """
    known = ", ".join(sorted(generators.GENERATORS))
    for at, secret in _secrets(obj):
        for where, entry in _entries(secret):
            path = f"{at}.{where}"
            name, length = entry.get("generate"), entry.get("length")
            has_length = "length" in entry
            if has_length and "generate" not in entry:
                yield error("'length' is only allowed with 'generate'", f"{path}.length")
            if not isinstance(name, str):
                continue
            gen = generators.get(name)
            if gen is None:
                yield error(f"unknown generator '{name}' (known: {known})", f"{path}.generate")
                continue
            if not has_length:
                continue
            if gen.length == "forbidden":
                yield error(f"generator '{name}' has a fixed length; remove 'length'", f"{path}.length")
            elif gen.length == "ignored":
                yield warning(f"generator '{name}' ignores 'length'", f"{path}.length")
            elif _is_int(length) and not gen.min_length <= length <= gen.max_length:
                yield error(
                    f"must be between {gen.min_length} and {gen.max_length} for generator '{name}'",
                    f"{path}.length",
                )


@rule("vault-mount")
def vault_mount(obj: dict[str, Any]) -> Iterator[Result]:
    """spec.vault.mount and spec.vault.prefix are Vault paths: segments of letters, digits,
    '_', '-', '.', joined by '/'.

    PASS: `mount: secret`, `mount: kv/platform`, `prefix: teams/data`    FAIL: `mount: ../sys`, `prefix: /abs`
    """
    spec = obj.get("spec")
    vault = spec.get("vault") if isinstance(spec, dict) else None
    if not isinstance(vault, dict):
        return
    for field in ("mount", "prefix"):
        value = vault.get(field)
        if isinstance(value, str) and not is_mount(value):
            yield error(f"'{value}' is not a safe Vault path", f"spec.vault.{field}")


@rule("yaml-tag")
def yaml_tag(obj: dict[str, Any]) -> Iterator[Result]:
    """YAML tags (`!Ref`, `!!binary`) and dates have no meaning in a contract, whose values are
    strings: merge keys are fine, other tags are refused where they appear.

    PASS: `value: "2001-12-14"`    FAIL: `value: !Ref db-password`, `value: 2001-12-14`
    """
    pending: list[tuple[list[str | int], Any]] = [([], obj)]
    while pending:
        path, node = pending.pop()
        if isinstance(node, Tagged):
            what = _tag_description(node.tag)
            yield error(
                f"YAML reads {what} here, which has no meaning in a SecretContract: quote the value", field_path(path)
            )
        if isinstance(node, dict):
            pending.extend(([*path, str(k)], v) for k, v in node.items())
        elif isinstance(node, list):
            pending.extend(([*path, i], v) for i, v in enumerate(node))


@rule("control-characters")
def control_characters(obj: dict[str, Any]) -> Iterator[Result]:
    """Names (the stack, secrets, keys, views, stores, template keys) hold no control
    characters: an ANSI escape in a name would reach every terminal that prints it. Values
    (static values, templates, annotation values) may hold line breaks and are not checked.

    PASS: `name: vault-backend`    FAIL: a store name holding ESC (`\x1b[31m`)
    """
    meta = obj.get("metadata")
    pending: list[tuple[list[str | int], Any]] = [
        (["metadata", "name"], meta.get("name") if isinstance(meta, dict) else None)
    ]
    pending.append((["spec"], obj.get("spec")))
    while pending:
        path, node = pending.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                where = [*path, str(key)]
                if isinstance(key, str) and _control(key):
                    yield error(f"the key {_control(key)}", field_path(where))
                if not _is_free_text(where):
                    pending.append((where, value))
        elif isinstance(node, list):
            pending.extend(([*path, i], v) for i, v in enumerate(node))
        elif isinstance(node, str) and _control(node):
            yield error(f"this name {_control(node)}", field_path(path))


def _control(text: str) -> str | None:
    """What is wrong with a name holding a control character, naming the first one."""
    found = next((c for c in text if not c.isprintable()), None)
    return None if found is None else f"holds the control character U+{ord(found):04X}; names may not"


def _is_free_text(path: list[str | int]) -> bool:
    """Values that are text, not names: a static value, a template, an annotation's value."""
    tail = [p for p in path if isinstance(p, str)][-3:]
    return (
        tail[-1:] == ["value"]
        or (len(tail) >= 2 and tail[-2] == "data" and "template" in path)
        or (len(tail) >= 2 and tail[-2] == "annotations")
    )


def _tag_description(tag: str) -> str:
    if tag.endswith(":timestamp"):
        return "a date"
    if tag.endswith((":int", ":float")):  # only a plain number out of every reader's range carries these
        return "a number too large for any Kubernetes tool to hold"
    return f"the YAML tag {tag}"


def _views(secret: dict[str, Any], at: str) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """A secret's ExternalSecrets: (field path, settings, name), its own first."""
    own = secret.get("externalSecret")
    yield f"{at}.externalSecret", own if isinstance(own, dict) else {}, secret.get("name")
    views = secret.get("externalSecrets")
    for j, view in enumerate(views if isinstance(views, list) else []):
        if isinstance(view, dict):
            yield f"{at}.externalSecrets[{j}]", view, view.get("name")


def _template_metadata(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every `target.template` of the contract, with its field path."""
    spec = obj.get("spec")
    places: list[tuple[str, Any]] = []
    if isinstance(spec, dict):
        places.append(("spec.externalSecret", spec.get("externalSecret")))
    places.extend((where, view) for at, secret in _secrets(obj) for where, view, _ in _views(secret, at))
    for at, settings in places:
        target = settings.get("target") if isinstance(settings, dict) else None
        template = target.get("template") if isinstance(target, dict) else None
        if isinstance(template, dict):
            yield f"{at}.target.template", template


@rule("kubernetes-metadata")
def kubernetes_metadata(obj: dict[str, Any]) -> Iterator[Result]:
    """Template labels and annotations follow Kubernetes' rules (qualified-name keys, label
    values of at most 63 characters, at most 256 KiB of annotations), and a template type is
    a Secret type: a built-in one needs the keys the API server requires.

    PASS: `labels: {app.kubernetes.io/part-of: search}`    FAIL: `labels: {tier: "a b"}`, a 400-character key
    """
    for at, template in _template_metadata(obj):
        meta = template.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        for kind in ("labels", "annotations"):
            entries = meta.get(kind)
            if not isinstance(entries, dict):
                continue
            for key, value in entries.items():
                where = f"{at}.metadata.{kind}[{key[:64]!r}]" if isinstance(key, str) else f"{at}.metadata.{kind}"
                problem = qualified_name_problem(key) if isinstance(key, str) else "keys must be strings"
                if problem:
                    yield error(f"not a valid {kind[:-1]} key: {problem}", where)
                if (
                    kind == "labels"
                    and isinstance(value, str)
                    and not (len(value) <= 63 and LABEL_VALUE.fullmatch(value))
                ):
                    yield error("not a valid label value: at most 63 letters, digits, '-', '_' or '.'", where)
            size = sum(len(str(k).encode()) + len(str(v).encode()) for k, v in entries.items())
            if kind == "annotations" and size > MAX_ANNOTATIONS_SIZE:
                yield error(
                    f"annotations total {size:,} bytes; Kubernetes allows {MAX_ANNOTATIONS_SIZE:,}",
                    f"{at}.metadata.annotations",
                )
    yield from _secret_types(obj)


def _secret_types(obj: dict[str, Any]) -> Iterator[Result]:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    contract_type = _template_type(spec.get("externalSecret"))
    for at, secret in _secrets(obj):
        declared = {e.get("key") for _, e in _entries(secret) if isinstance(e.get("key"), str)}
        secret_type = _template_type(secret.get("externalSecret"))
        inherited = (
            (secret_type, f"{at}.externalSecret.target.template.type")
            if secret_type
            else (contract_type, "spec.externalSecret.target.template.type")
        )
        for where, view, _ in _views(secret, at):
            own = _template_type(view)
            secret_type, path = (own, f"{where}.target.template.type") if own else inherited
            if not isinstance(secret_type, str):
                continue
            if not SECRET_TYPE.fullmatch(secret_type):
                yield error("a Secret type is 1-253 visible characters, e.g. kubernetes.io/basic-auth", path)
                continue
            required = SECRET_TYPE_KEYS.get(secret_type)
            if required is None:
                continue
            keys = _delivered(view, declared)
            template = (view.get("target") or {}).get("template") if isinstance(view.get("target"), dict) else None
            if isinstance(template, dict) and isinstance(template.get("data"), dict) and template["data"]:
                keys = set(template["data"])  # a template with data makes exactly those keys
            names, how = required
            if (how == "all" and not names <= keys) or (how == "any" and not names & keys):
                need = " and ".join(sorted(names)) if how == "all" else " or ".join(sorted(names))
                yield error(
                    f"a Secret of type {secret_type} needs the key {need}; the API server refuses it otherwise", path
                )


def _delivered(view: dict[str, Any], declared: set[Any]) -> set[Any]:
    """The Secret keys an ExternalSecret delivers: its `data` pairs, else every declared key."""
    pairs = view.get("data")
    if isinstance(pairs, list) and pairs:
        return {p.get("secretKey") for p in pairs if isinstance(p, dict) and isinstance(p.get("secretKey"), str)}
    return set(declared)


TEMPLATE_ACTION = re.compile(r"\{\{-?(.*?)-?\}\}", re.S)
# `.name` and `$.name` (`$` is the data, as `.` is outside range and with); not `$var.name`
# or `.a.name`, which are fields of something else.
TEMPLATE_FIELD = re.compile(r"(?<![\w$)\].])\$?\.([A-Za-z_][A-Za-z0-9_]*)")
# A key of the data looked up by name: `index . "name"`, `get $ `name``.
TEMPLATE_INDEX = re.compile(r"\b(?:index|get)\s+[.$]\s+(?:\"([^\"]+)\"|`([^`]+)`)")
# The data looked up by a key the check cannot read (`index . $k`), or handed to a variable
# (`$all := .`; `range` over it visits only delivered keys), after which any key can be
# reached without naming it.
TEMPLATE_DYNAMIC = re.compile(r"\b(?:index|get)\s+[.$]\s+(?![\"`])\S")
TEMPLATE_ALIAS = re.compile(r"\$\w*\s*:?=\s*[.$](?![\w.$])")


@rule("views")
def views(obj: dict[str, Any]) -> Iterator[Result]:
    """Each ExternalSecret of a contract (a secret's own, and those in `externalSecrets`) has a
    name and a target Secret of its own in its namespace; its `data` delivers declared keys,
    each under one Secret key; its template refers only to keys it delivers.

    PASS: `data: [{secretKey: elastic, property: elastic-password}]`
    FAIL: `property: elastic-pasword`, `connection: "{{ .pasword }}"`, a view named like another secret
    """
    names: dict[tuple[Any, Any], str] = {}
    targets: dict[tuple[Any, Any], str] = {}
    # Only text is compared: a name of the wrong type is the schema's finding, not a crash here.
    for _, secret in _secrets(obj):
        names.setdefault((_text(secret.get("namespace")), _text(secret.get("name"))), "")
    for at, secret in _secrets(obj):
        namespace = _text(secret.get("namespace"))
        declared = {e.get("key") for _, e in _entries(secret) if isinstance(e.get("key"), str)}
        for where, view, name in _views(secret, at):
            if where.endswith("]"):  # a named view: its name must be free in the namespace
                if isinstance(name, str) and not (len(name) <= 253 and DNS_SUBDOMAIN.fullmatch(name)):
                    yield error(f"'{name}' is not a DNS-1123 subdomain", f"{where}.name")
                elif isinstance(name, str) and (namespace, name) in names:
                    other = names[(namespace, name)] or "a secret of this contract"
                    yield error(f"ExternalSecret {namespace}/{name} is already {other}", f"{where}.name")
                else:
                    names[(namespace, name)] = f"declared at {where}"
            target = view.get("target") if isinstance(view.get("target"), dict) else {}
            target_name = target.get("name", name)
            if isinstance(target.get("name"), str) and not DNS_SUBDOMAIN.fullmatch(target["name"]):
                yield error(f"'{target['name']}' is not a DNS-1123 subdomain", f"{where}.target.name")
            if isinstance(target_name, str):
                if (namespace, target_name) in targets:
                    yield error(
                        f"Secret {namespace}/{target_name} is also written by the ExternalSecret at "
                        f"{targets[(namespace, target_name)]}: give one of them another target.name",
                        f"{where}.target.name",
                    )
                targets.setdefault((namespace, target_name), where)
            yield from _view_keys(view, where, declared)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _view_keys(view: dict[str, Any], where: str, declared: set[str]) -> Iterator[Result]:
    pairs = view.get("data")
    seen: set[Any] = set()
    for j, pair in enumerate(pairs if isinstance(pairs, list) else []):
        if not isinstance(pair, dict):
            continue
        key, prop = pair.get("secretKey"), pair.get("property")
        if isinstance(key, str):
            problem = secret_key_problem(key)
            if problem:
                yield error(f"secretKey {problem}", f"{where}.data[{j}].secretKey")
            elif key in seen:
                yield error(f"secretKey '{key}' is delivered twice", f"{where}.data[{j}].secretKey")
            seen.add(key)
        if isinstance(prop, str) and prop not in declared:
            known = ", ".join(sorted(declared))
            yield error(
                f"'{prop}' is not a key this secret declares (declared: {known})", f"{where}.data[{j}].property"
            )
    target = view.get("target") if isinstance(view.get("target"), dict) else {}
    template = target.get("template") if isinstance(target.get("template"), dict) else {}
    data = template.get("data")
    if not isinstance(data, dict):
        return
    delivered = _delivered(view, declared)
    for key, text in data.items():
        path = f"{where}.target.template.data[{str(key)[:64]!r}]"
        problem = secret_key_problem(key) if isinstance(key, str) else "must be a string"
        if problem:
            yield error(f"template key {problem}", path)
        if not isinstance(text, str):
            continue
        for action in TEMPLATE_ACTION.findall(text):
            ranging = action.strip().startswith("range")
            if TEMPLATE_DYNAMIC.search(action) or (TEMPLATE_ALIAS.search(action) and not ranging):
                yield error(
                    "the template reaches the data by a key or variable the reference check cannot follow "
                    '(`index . $k`, `$all := .`): name each key, as in `.key` or `index . "key"`',
                    path,
                )
                continue
            named = {a or b for a, b in TEMPLATE_INDEX.findall(action)}
            for ref in {*TEMPLATE_FIELD.findall(action), *named}:
                if ref not in delivered:
                    have = ", ".join(sorted(k for k in delivered if isinstance(k, str)))
                    yield error(
                        f"the template refers to '{ref}', which this ExternalSecret does not deliver (it delivers: "
                        f"{have})",
                        path,
                    )


def _template_type(settings: Any) -> Any:
    target = settings.get("target") if isinstance(settings, dict) else None
    template = target.get("template") if isinstance(target, dict) else None
    return template.get("type") if isinstance(template, dict) else None
