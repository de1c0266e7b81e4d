"""The rules about a contract's own fields: names, data keys and entries, generators, the Vault
mount, YAML tags and control characters; and the checks and walkers every rule shares.

Each rule walks the raw object defensively (the schema may have failed) and yields findings
with field paths; its docstring is its user documentation, with a passing and a failing
example. `rules` registers them under their ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from secret_contract import generators
from secret_contract.results import Result, error, field_path, warning
from secret_contract.yaml_resolve import Tagged

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
MOUNT_SEGMENT = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")


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


def secret_key_problem(key: str) -> str | None:
    """Why `key` is not a valid Secret data key (Kubernetes IsConfigMapKey), or None."""
    if len(key) > 253:
        return "must be at most 253 characters"
    if not SECRET_KEY.fullmatch(key):
        return "must consist of letters, digits, '-', '_' or '.'"
    if key in (".", "..") or key.startswith(".."):
        return "must not be '.' or '..', nor start with '..'"
    return None


def contract_secrets(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    spec = obj.get("spec")
    items = spec.get("secrets") if isinstance(spec, dict) else None
    if isinstance(items, list):
        for i, item in enumerate(items):
            if isinstance(item, dict):
                yield f"spec.secrets[{i}]", item


def data_entries(secret: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    data = secret.get("data")
    if isinstance(data, list):
        for j, entry in enumerate(data):
            if isinstance(entry, dict):
                yield f"data[{j}]", entry


def stack_name(obj: dict[str, Any]) -> Iterator[Result]:
    """`metadata.name` is one or more DNS-1123 labels joined by `/`; it prefixes Vault paths.

    PASS::

        metadata: {name: foundation/airflow}

    FAIL at metadata.name::

        metadata: {name: ../other}

    FAIL at metadata.name::

        metadata: {name: a//b}
    """
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if isinstance(name, str) and not is_stack_name(name):
        yield error(
            f"'{name}' is not a valid stack name: use DNS-1123 labels joined by '/' "
            "(lowercase letters, digits and '-', e.g. sample-app or foundation/airflow)",
            "metadata.name",
        )


def secret_name(obj: dict[str, Any]) -> Iterator[Result]:
    """A secret's `name` is a DNS-1123 subdomain and its `namespace` a DNS-1123 label.

    PASS::

        spec:
          secrets: [{name: postgres-credentials, namespace: sample-app}]

    FAIL at spec.secrets[0].name, spec.secrets[0].namespace::

        spec:
          secrets: [{name: Postgres_Creds, namespace: sample.app}]
    """
    for at, secret in contract_secrets(obj):
        name, namespace = secret.get("name"), secret.get("namespace")
        if isinstance(name, str) and not (len(name) <= 253 and DNS_SUBDOMAIN.fullmatch(name)):
            yield error(f"'{name}' is not a DNS-1123 subdomain (lowercase letters, digits, '-' and '.')", f"{at}.name")
        if isinstance(namespace, str) and not is_dns_label(namespace):
            yield error(
                f"'{namespace}' is not a DNS-1123 label (lowercase letters, digits and '-', at most 63)",
                f"{at}.namespace",
            )


def duplicate_secret(obj: dict[str, Any]) -> Iterator[Result]:
    """Each (namespace, name) pair appears once in a contract.

    PASS::

        spec:
          secrets: [{name: db, namespace: app}, {name: db, namespace: web}]

    FAIL at spec.secrets[1].name::

        spec:
          secrets: [{name: db, namespace: app}, {name: db, namespace: app}]
    """
    seen: dict[tuple[Any, Any], str] = {}
    for at, secret in contract_secrets(obj):
        ident = (secret.get("namespace"), secret.get("name"))
        if not all(isinstance(part, str) for part in ident):
            continue
        if ident in seen:
            yield error(f"secret {ident[0]}/{ident[1]} is already declared at {seen[ident]}", f"{at}.name")
        else:
            seen[ident] = at


def data_key(obj: dict[str, Any]) -> Iterator[Result]:
    """A data `key` is a Secret key (`[-._a-zA-Z0-9]+`, at most 253 characters) and unique in its
    secret.

    PASS::

        spec:
          secrets:
          - data: [{key: DB_PASSWORD, generate: password}, {key: user, value: admin}]

    FAIL at spec.secrets[0].data[0].key, spec.secrets[0].data[2].key::

        spec:
          secrets:
          - data:
            - {key: "db password", generate: password}
            - {key: user, value: admin}
            - {key: user, value: root}
    """
    for at, secret in contract_secrets(obj):
        seen: dict[str, str] = {}
        for where, entry in data_entries(secret):
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


def value_or_generate(obj: dict[str, Any]) -> Iterator[Result]:
    """Each data entry has exactly one of `value`, `generate` or `provided: true`; a `value` is a
    string (quote one YAML would read as a number or boolean).

    PASS::

        spec:
          secrets:
          - data: [{key: port, value: "5432"}, {key: pass, generate: password}, {key: ca, provided: true}]

    FAIL at spec.secrets[0].data[0].value::

        spec:
          secrets:
          - data: [{key: port, value: 5432}]

    FAIL at spec.secrets[0].data[0], spec.secrets[0].data[1]::

        spec:
          secrets:
          - data: [{key: a, value: x, generate: token}, {key: b}]
    """
    for at, secret in contract_secrets(obj):
        for where, entry in data_entries(secret):
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


def generator(obj: dict[str, Any]) -> Iterator[Result]:
    """`generate` names a known generator; `length` is only given with one that takes it, within
    its bounds.

    PASS::

        spec:
          secrets:
          - data: [{key: pass, generate: password, length: 24}]

    FAIL at spec.secrets[0].data[0].generate, spec.secrets[0].data[1].length, spec.secrets[0].data[2].length::

        spec:
          secrets:
          - data:
            - {key: a, generate: pasword}
            - {key: b, generate: password, length: 4}
            - {key: c, value: x, length: 8}
    """
    known = ", ".join(sorted(generators.GENERATORS))
    for at, secret in contract_secrets(obj):
        for where, entry in data_entries(secret):
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


def vault_mount(obj: dict[str, Any]) -> Iterator[Result]:
    """`spec.vault.mount` and `spec.vault.prefix` are safe Vault paths: segments of letters,
    digits, `_`, `-` and `.` joined by `/`.

    PASS::

        spec:
          vault: {mount: kv/platform, prefix: teams/data}

    FAIL at spec.vault.mount, spec.vault.prefix::

        spec:
          vault: {mount: ../sys, prefix: /abs}
    """
    spec = obj.get("spec")
    vault = spec.get("vault") if isinstance(spec, dict) else None
    if not isinstance(vault, dict):
        return
    for field in ("mount", "prefix"):
        value = vault.get(field)
        if isinstance(value, str) and not is_mount(value):
            yield error(f"'{value}' is not a safe Vault path", f"spec.vault.{field}")


def yaml_tag(obj: dict[str, Any]) -> Iterator[Result]:
    """No YAML tag (`!Ref`, `!!binary`), unquoted date or number too large for any reader where a
    contract holds strings; merge keys are fine.

    PASS::

        spec:
          secrets:
          - data: [{key: since, value: "2001-12-14"}]

    FAIL at spec.secrets[0].data[0].value, spec.secrets[0].data[1].value::

        spec:
          secrets:
          - data: [{key: pass, value: !Ref db-password}, {key: since, value: 2001-12-14}]
    """
    pending: list[tuple[Any, _Chain]] = [(obj, None)]
    while pending:
        node, chain = pending.pop()
        if isinstance(node, Tagged):
            what = _tag_description(node.tag)
            yield error(
                f"YAML reads {what} here, which has no meaning in a SecretContract: quote the value",
                field_path(_path(chain)),
            )
        if isinstance(node, dict):
            for k, v in node.items():
                if isinstance(v, (dict, list, Tagged)):
                    pending.append((v, (chain, str(k))))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                if isinstance(v, (dict, list, Tagged)):
                    pending.append((v, (chain, i)))


def control_characters(obj: dict[str, Any]) -> Iterator[Result]:
    r"""No name (the stack, secrets, keys, views, stores, template keys) holds a control character:
    an ANSI escape in a name would reach every terminal that prints it. Values (static values,
    templates, annotation values) may hold line breaks and are not checked.

    PASS::

        spec:
          externalSecret: {secretStoreRef: {name: vault-backend}}

    FAIL at spec.externalSecret.secretStoreRef.name::

        spec:
          externalSecret: {secretStoreRef: {name: "vault\x1b[31m"}}
    """
    meta = obj.get("metadata")
    # (node, its path, the nearest name above it, whether that path passes a `template`)
    pending: list[tuple[Any, _Chain, str, bool]] = [
        (meta.get("name") if isinstance(meta, dict) else None, ((None, "metadata"), "name"), "name", False),
        (obj.get("spec"), (None, "spec"), "spec", False),
    ]
    while pending:
        node, chain, parent, in_template = pending.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str):
                    key = str(key)
                elif not key.isprintable():
                    yield error(f"the key {_control(key)}", field_path(_path((chain, key))))
                if not _is_free_text(key, parent, in_template):
                    pending.append((value, (chain, key), key, in_template or key == "template"))
        elif isinstance(node, list):
            pending.extend((v, (chain, i), parent, in_template) for i, v in enumerate(node))
        elif isinstance(node, str) and not node.isprintable():
            yield error(f"this name {_control(node)}", field_path(_path(chain)))


# A path as nested pairs (parent, last element): built per node of a large contract at the
# cost of one tuple, and turned into a list only for a finding.
_Chain = tuple[Any, str | int] | None


def _path(chain: _Chain) -> list[str | int]:
    path: list[str | int] = []
    while chain is not None:
        chain, last = chain
        path.append(last)
    return path[::-1]


def _control(text: str) -> str:
    """What is wrong with a name holding a control character, naming the first one."""
    found = next(c for c in text if not c.isprintable())
    return f"holds the control character U+{ord(found):04X}; names may not"


def _is_free_text(key: str, parent: str, in_template: bool) -> bool:
    """Values that are text, not names: a static value, a template, an annotation's value.
    `parent` is the nearest name above the mapping that holds `key`."""
    return key == "value" or (parent == "data" and (in_template or key == "template")) or parent == "annotations"


def _tag_description(tag: str) -> str:
    if tag.endswith(":timestamp"):
        return "a date"
    if tag.endswith((":int", ":float")):  # only a plain number out of every reader's range carries these
        return "a number too large for any Kubernetes tool to hold"
    return f"the YAML tag {tag}"
