"""Validation: every problem reported at once, as (field path, rule) pairs."""

from __future__ import annotations

import copy
import datetime
from pathlib import Path
from typing import Any

import pytest

from secret_contract import contract, yaml_codec
from secret_contract.results import ResourceRef

VALID: dict[str, Any] = {
    "apiVersion": "hostk8s.io/v1",
    "kind": "SecretContract",
    "metadata": {"name": "sample-app"},
    "spec": {
        "secrets": [
            {
                "name": "postgres-credentials",
                "namespace": "sample-app",
                "data": [
                    {"key": "username", "value": "postgres"},
                    {"key": "password", "generate": "password", "length": 24},
                ],
            }
        ]
    },
}


def problems(obj: Any) -> set[tuple[str, str | None]]:
    return {(r.path, r.rule) for r in contract.validate(obj) if r.severity == "error"}


def replaced(obj: Any, path: list[Any] | tuple[Any, ...], value: Any) -> Any:
    """A copy of `obj` with the field at `path` set to `value` (`value` itself at the root)."""
    if not path:
        return value
    copied = copy.deepcopy(obj)
    node = copied
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return copied


def with_(path: list[Any], value: Any) -> dict[str, Any]:
    return replaced(VALID, path, value)  # type: ignore[no-any-return]


def test_valid_contract_loads() -> None:
    loaded, findings = contract.load(VALID, ResourceRef("hostk8s.io/v1", "SecretContract", "sample-app"), None)
    assert findings == []
    assert loaded is not None
    assert loaded.stack == "sample-app"
    assert [d.key for d in loaded.secrets[0].data] == ["username", "password"]


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (["apiVersion"], "hostk8s.io/v2", ("apiVersion", "schema")),
        (["kind"], "Secret", ("kind", "schema")),
        (["metadata", "name"], "Sample_App", ("metadata.name", "stack-name")),
        (["metadata", "name"], "../escape", ("metadata.name", "stack-name")),
        (["metadata", "name"], "/abs", ("metadata.name", "stack-name")),
        (["metadata", "name"], "a//b", ("metadata.name", "stack-name")),
        (["metadata", "name"], "a/", ("metadata.name", "stack-name")),
        (["spec", "secrets"], [], ("spec.secrets", "schema")),
        (["spec", "secrets", 0, "name"], "Bad_Name", ("spec.secrets[0].name", "secret-name")),
        (["spec", "secrets", 0, "namespace"], "a.b", ("spec.secrets[0].namespace", "secret-name")),
        (["spec", "secrets", 0, "namespace"], "x" * 64, ("spec.secrets[0].namespace", "secret-name")),
        (["spec", "secrets", 0, "data"], [], ("spec.secrets[0].data", "schema")),
        (["spec", "secrets", 0, "namespace"], [], ("spec.secrets[0].namespace", "schema")),
        (["spec", "secrets", 0, "name"], {"a": 1}, ("spec.secrets[0].name", "schema")),
        (["spec", "secrets", 0, "data", 0, "key"], "bad key", ("spec.secrets[0].data[0].key", "data-key")),
        (["spec", "secrets", 0, "data", 0, "key"], "..x", ("spec.secrets[0].data[0].key", "data-key")),
        (["spec", "secrets", 0, "data", 0, "key"], "k" * 254, ("spec.secrets[0].data[0].key", "data-key")),
        (["spec", "secrets", 0, "data", 0, "value"], 5432, ("spec.secrets[0].data[0].value", "value-or-generate")),
        (["spec", "secrets", 0, "data", 0, "value"], True, ("spec.secrets[0].data[0].value", "value-or-generate")),
        (["spec", "secrets", 0, "data", 1, "generate"], "pasword", ("spec.secrets[0].data[1].generate", "generator")),
        (["spec", "secrets", 0, "data", 1, "length"], 7, ("spec.secrets[0].data[1].length", "generator")),
        (["spec", "secrets", 0, "data", 1, "length"], "24", ("spec.secrets[0].data[1].length", "schema")),
        (["spec", "secrets", 0, "data", 1, "lenght"], 24, ("spec.secrets[0].data[1].lenght", "schema")),
        (["spec", "vault"], {"mount": "../sys"}, ("spec.vault.mount", "vault-mount")),
        (["spec", "vault"], {"layout": "flat"}, ("spec.vault.layout", "schema")),
        (["spec", "vault"], {"prefix": "a/../b"}, ("spec.vault.prefix", "vault-mount")),
        (["spec", "externalSecret"], {"refreshInterval": "hourly"}, ("spec.externalSecret.refreshInterval", "schema")),
    ],
)
def test_each_violation_names_its_field_path_and_rule(path: list[Any], value: Any, expected: tuple[str, str]) -> None:
    assert expected in problems(with_(path, value))


def test_length_needs_generate() -> None:
    obj = with_(["spec", "secrets", 0, "data", 0, "length"], 10)
    assert ("spec.secrets[0].data[0].length", "generator") in problems(obj)


def test_value_and_generate_are_exclusive_and_one_is_required() -> None:
    both = with_(["spec", "secrets", 0, "data", 0, "generate"], "token")
    assert ("spec.secrets[0].data[0]", "value-or-generate") in problems(both)
    neither = with_(["spec", "secrets", 0, "data", 0], {"key": "username"})
    assert ("spec.secrets[0].data[0]", "value-or-generate") in problems(neither)


def test_fernet_rejects_length_and_uuid_warns() -> None:
    fernet = with_(["spec", "secrets", 0, "data", 1], {"key": "k", "generate": "fernet", "length": 44})
    assert ("spec.secrets[0].data[1].length", "generator") in problems(fernet)
    uuid = with_(["spec", "secrets", 0, "data", 1], {"key": "k", "generate": "uuid", "length": 12})
    assert problems(uuid) == set()
    assert [r.severity for r in contract.validate(uuid)] == ["warning"]


def test_duplicates_are_reported() -> None:
    obj = copy.deepcopy(VALID)
    obj["spec"]["secrets"].append(copy.deepcopy(obj["spec"]["secrets"][0]))
    obj["spec"]["secrets"][0]["data"].append({"key": "username", "value": "x"})
    found = problems(obj)
    assert ("spec.secrets[1].name", "duplicate-secret") in found
    assert ("spec.secrets[0].data[2].key", "data-key") in found


def test_every_problem_is_reported_at_once() -> None:
    obj = with_(["metadata", "name"], "Bad")
    obj["spec"]["secrets"][0]["data"][1]["generate"] = "nope"
    obj["spec"]["secrets"][0]["namespace"] = "Bad_NS"
    assert {"metadata.name", "spec.secrets[0].data[1].generate", "spec.secrets[0].namespace"} <= {
        p for p, _ in problems(obj)
    }


def test_messages_never_repeat_a_static_value() -> None:
    obj = with_(["spec", "secrets", 0, "data", 0, "value"], 987654321)
    obj["spec"]["secrets"][0]["data"].append({"key": "k", "value": "sentinel-value", "generate": "token"})
    obj["spec"]["secrets"][0]["data"].append({"key": "k2", "value": ["sentinel-list"]})
    messages = " ".join(r.message for r in contract.validate(obj))
    assert "987654321" not in messages
    assert "sentinel" not in messages


def test_not_a_mapping_is_a_schema_error() -> None:
    assert ("", "schema") in problems(["not", "a", "contract"])
    assert ("spec.secrets[0]", "schema") in problems(with_(["spec", "secrets", 0], "text"))


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (["metadata", "name"], "app\n", ("metadata.name", "stack-name")),
        (["spec", "secrets", 0, "name"], "db\n", ("spec.secrets[0].name", "secret-name")),
        (["spec", "secrets", 0, "namespace"], "ns\n", ("spec.secrets[0].namespace", "secret-name")),
        (["spec", "secrets", 0, "data", 0, "key"], "user\n", ("spec.secrets[0].data[0].key", "data-key")),
        (["spec", "vault"], {"mount": "secret\n"}, ("spec.vault.mount", "vault-mount")),
    ],
)
def test_a_trailing_newline_is_not_a_valid_name(path: list[Any], value: Any, expected: tuple[str, str]) -> None:
    assert expected in problems(with_(path, value))


def test_yaml_tags_and_dates_in_a_contract_are_refused_with_their_path() -> None:
    text = (
        "apiVersion: hostk8s.io/v1\nkind: SecretContract\nmetadata: {name: app}\nspec:\n  secrets:\n"
        "  - name: s\n    namespace: ns\n    data:\n"
        "    - {key: a, value: !Ref other}\n"
        "    - {key: b, value: 2001-12-14}\n"
        "    - {key: c, value: !!binary aGk=}\n"
    )
    found = problems(yaml_codec.load(text))
    assert {
        ("spec.secrets[0].data[0].value", "yaml-tag"),
        ("spec.secrets[0].data[1].value", "yaml-tag"),
        ("spec.secrets[0].data[2].value", "yaml-tag"),
    } <= found
    merged = "base: &b {key: a, value: x}\n" + text.split("    - {key: a")[0] + "    - {<<: *b}\n"
    assert problems(yaml_codec.load(merged)) == set()  # a merge key is fine


def test_template_labels_annotations_and_types_follow_kubernetes_rules() -> None:
    def template(**fields: Any) -> dict[str, Any]:
        return with_(["spec", "externalSecret"], {"target": {"template": fields}})

    base = "spec.externalSecret.target.template"
    assert problems(template(metadata={"labels": {"app.kubernetes.io/part-of": "search"}})) == set()
    assert (f"{base}.metadata.labels['tier']", "kubernetes-metadata") in problems(
        template(metadata={"labels": {"tier": "a b"}})
    )
    long_key = "k" * 400
    assert (f"{base}.metadata.annotations[{long_key[:64]!r}]", "kubernetes-metadata") in problems(
        template(metadata={"annotations": {long_key: "v"}})
    )
    assert (f"{base}.metadata.annotations", "kubernetes-metadata") in problems(
        template(metadata={"annotations": {"big": "x" * (300 * 1024)}})
    )
    assert (f"{base}.type", "kubernetes-metadata") in problems(template(type="kubernetes.io/tls"))
    assert (f"{base}.type", "kubernetes-metadata") in problems(template(type="has space"))
    assert problems(template(type="kubernetes.io/basic-auth")) == set()  # the contract has username and password


STORE_ESC = {"secretStoreRef": {"name": "vault\x1b]0;x\x07"}}
VIEW_CR = [{"name": "v", "data": [{"secretKey": "k", "property": "username\r"}]}]
TEMPLATE_RLO = {"target": {"template": {"data": {"k\u202e": "{{ .username }}"}}}}


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        (["metadata", "name"], "sample-app\x1b[31m", "metadata.name"),
        (["spec", "externalSecret"], STORE_ESC, "spec.externalSecret.secretStoreRef.name"),
        (["spec", "secrets", 0, "externalSecrets"], VIEW_CR, "spec.secrets[0].externalSecrets[0].data[0].property"),
        (
            ["spec", "secrets", 0, "externalSecret"],
            TEMPLATE_RLO,
            "spec.secrets[0].externalSecret.target.template.data.k\u202e",
        ),
    ],
)
def test_control_characters_in_names_are_refused(path: list[Any], value: Any, where: str) -> None:
    found = [r for r in contract.validate(with_(path, value)) if r.rule == "control-characters"]
    assert [r.path for r in found] == [where] and "control character" in found[0].message


def test_line_breaks_in_values_and_templates_are_text_not_names() -> None:
    obj = with_(["spec", "secrets", 0, "data", 0, "value"], "-----BEGIN-----\nabc\n-----END-----\n")
    text = "user={{ .username }}\npass={{ .password }}\n"
    template = {"data": {"config": text}, "metadata": {"annotations": {"a": "x\ny"}}}
    obj["spec"]["secrets"][0]["externalSecret"] = {"target": {"template": template}}
    assert problems(obj) == set()


def _with_template(text: str) -> dict[str, Any]:
    obj = copy.deepcopy(VALID)
    obj["spec"]["secrets"][0]["externalSecret"] = {"target": {"template": {"data": {"config": text}}}}
    return obj


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{{ $.pasword }}", "refers to 'pasword'"),
        ('{{ index $ "pasword" }}', "refers to 'pasword'"),
        ("{{ index . `pasword` }}", "refers to 'pasword'"),
        ("{{ index . $k }}", "cannot follow"),
        ('{{ index $ (printf "%s" "pass") }}', "cannot follow"),
        ('{{ $all := . }}{{ index $all "pasword" }}', "cannot follow"),
        ("{{ with $d := $ }}{{ $d.pasword }}{{ end }}", "cannot follow"),
    ],
)
def test_template_references_the_check_cannot_see_through_are_refused(text: str, says: str) -> None:
    found = [r for r in contract.validate(_with_template(text)) if r.rule == "views" and r.severity == "error"]
    assert found and says in found[0].message, found
    assert found[0].path == "spec.secrets[0].externalSecret.target.template.data['config']"


@pytest.mark.parametrize(
    "text",
    [
        "{{ $.username }}:{{ .password }}",
        '{{ index . "username" }}',
        "{{ range $k, $v := . }}{{ $k }}={{ $v }}\n{{ end }}",
        "{{ $u := .username }}{{ $u }}",
        "{{ .password | b64enc }}",
    ],
)
def test_template_references_the_check_follows_are_accepted(text: str) -> None:
    assert problems(_with_template(text)) == set()


ODD_VALUES: list[Any] = [
    2,
    2.0,
    24.5,
    True,
    None,
    "",
    "x",
    "1h\n",
    "10ms",
    10**30,
    [],
    {},
    {"x": 1},
    ["x"],
    datetime.date(2001, 12, 14),
    {1: "x"},
]


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        return [path] + [p for k, v in node.items() for p in _leaves(v, (*path, k))]
    if isinstance(node, list):
        return [path] + [p for i, v in enumerate(node) for p in _leaves(v, (*path, i))]
    return [path]


def _contracts() -> list[dict[str, Any]]:
    found = [VALID]
    for path in sorted(Path(__file__).parent.parent.glob("kustomize-examples/**/hostk8s.secrets.yaml")):
        found += [doc for doc in yaml_codec.load_all(path.read_text()) if contract.is_contract(doc)]
    return found


def test_the_fast_schema_check_clears_every_valid_contract_and_nothing_jsonschema_rejects() -> None:
    """The compiled validator only ever clears a contract: whatever it passes, jsonschema
    (whose errors are the ones reported) passes too, for every field of the examples set to
    each value YAML can produce, and for an unknown field added anywhere."""
    checked = 0
    for obj in _contracts():
        assert contract._passes_fast_check(obj)
        assert list(contract._validator().iter_errors(obj)) == []
        for path in _leaves(obj):
            variants = [replaced(obj, path, value) for value in ODD_VALUES]
            parent = copy.deepcopy(obj)
            node = parent
            for part in path:
                node = node[part]
            if isinstance(node, dict):
                node["unknownField"] = "x"
                variants.append(parent)
            for variant in variants:
                if contract._passes_fast_check(variant):
                    assert list(contract._validator().iter_errors(variant)) == [], path
                checked += 1
    assert checked > 1000
