"""The KRM protocol: what kustomize and kpt send and what they get back. The entry point runs
in-process here; test_reliability.py runs it as a process with broken input."""

from __future__ import annotations

import copy
from typing import Any

from builders import DEMO, contract, generated, generator_input, in_process, package_input, secret, static, with_path
from secret_contract import krm, yaml_codec

CONTRACT = DEMO


def test_generator_mode_emits_only_externalsecrets_with_a_render_warning() -> None:
    ran = in_process(stdin=generator_input(CONTRACT), env={})
    assert ran.returncode == 0, ran.stderr
    out = ran.output()
    assert [(i["kind"], i["metadata"]["name"]) for i in out["items"]] == [("ExternalSecret", "db")]
    assert out["results"][0]["severity"] == "warning"
    assert "VAULT_ADDR is not set" in out["results"][0]["message"] and "VAULT_ADDR is not set" in ran.stderr


def test_package_mode_passes_everything_through_and_places_output_beside_the_contract() -> None:
    config_map = with_path(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "yes"}}, "cm.yaml"
    )
    ran = in_process(stdin=package_input(config_map, with_path(CONTRACT, "stack/hostk8s.secrets.yaml")), env={})
    assert ran.returncode == 0, ran.stderr
    items = ran.output()["items"]
    assert items[0] == config_map and items[1]["kind"] == "SecretContract"
    notes = items[2]["metadata"]["annotations"]
    assert notes["internal.config.kubernetes.io/path"] == "stack/external-secrets.generated.yaml"
    assert notes["config.kubernetes.io/path"] == notes["internal.config.kubernetes.io/path"]


def test_package_mode_is_a_fixed_point() -> None:
    first = in_process(stdin=package_input(with_path(CONTRACT, "hostk8s.secrets.yaml")), env={})
    again = in_process(stdin=package_input(*first.output()["items"]), env={})
    assert again.output()["items"] == first.output()["items"]


def test_package_mode_drops_externalsecrets_of_secrets_that_left_the_contract() -> None:
    two = copy.deepcopy(CONTRACT)
    two["spec"]["secrets"].append(secret("cache", "demo", generated("k", "token")))
    first = in_process(stdin=package_input(with_path(two, "c.yaml")), env={}).output()["items"]
    assert sorted(i["metadata"]["name"] for i in first if i["kind"] == "ExternalSecret") == ["cache", "db"]
    rerun = [with_path(CONTRACT, "c.yaml"), *first[1:]]
    items = in_process(stdin=package_input(*rerun), env={}).output()["items"]
    assert [i["metadata"]["name"] for i in items if i["kind"] == "ExternalSecret"] == ["db"]


def test_two_contracts_declaring_one_externalsecret_differently_fail_before_vault() -> None:
    one = contract("one", secret("db", "demo", static("user", "a"), generated("pass")))
    two = contract(
        "two", secret("db", "demo", static("user", "a"), generated("pass")), externalSecret={"refreshInterval": "5m"}
    )
    env = {"VAULT_ADDR": "http://127.0.0.1:9", "VAULT_TOKEN": "t"}
    ran = in_process(stdin=package_input(with_path(one, "a/c.yaml"), with_path(two, "b/c.yaml")), env=env)
    assert ran.returncode == 1
    assert "ExternalSecret demo/db is also declared by contract 'one' (a/c.yaml)" in ran.stderr
    assert "differ at spec.refreshInterval" in ran.stderr and "cannot connect" not in ran.stderr
    same = in_process(stdin=package_input(with_path(one, "a/c.yaml"), with_path(one, "b/c.yaml")), env={})
    assert same.returncode == 0 and [i["kind"] for i in same.output()["items"]].count("ExternalSecret") == 1


def test_a_hand_written_externalsecret_of_the_same_identity_is_a_conflict() -> None:
    hand = with_path(
        {
            "apiVersion": "external-secrets.io/v1",
            "kind": "ExternalSecret",
            "metadata": {"name": "db", "namespace": "demo"},
        },
        "manual/es.yaml",
    )
    ran = in_process(stdin=package_input(hand, with_path(CONTRACT, "stack/hostk8s.secrets.yaml")), env={})
    assert ran.returncode == 1
    assert "manual/es.yaml" in ran.stderr and "stack/hostk8s.secrets.yaml" in ran.stderr
    assert "written by hand here and generated from a SecretContract" in ran.stderr


def test_strict_with_nothing_to_write_is_quiet() -> None:
    config_map = with_path({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}, "cm.yaml")
    ran = in_process(stdin=package_input(config_map), env={"SECRET_CONTRACT_STRICT": "true"})
    assert ran.returncode == 0 and ran.stderr == "" and "results" not in ran.output()


def test_unknown_configmap_settings_are_errors() -> None:
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "function-input"},
        "data": {"storeKnd": "x"},
    }
    ran = in_process(stdin=package_input(with_path(CONTRACT, "c.yaml"), config=config), env={})
    assert ran.returncode == 1 and "unknown setting 'storeKnd'" in ran.stderr


def test_invalid_contract_fails_with_structured_results_and_stderr() -> None:
    bad = copy.deepcopy(CONTRACT)
    bad["spec"]["secrets"][0]["data"][1]["generate"] = "pasword"
    ran = in_process(stdin=package_input(with_path(bad, "hostk8s.secrets.yaml")), env={})
    assert ran.returncode == 1
    result = next(r for r in ran.output()["results"] if r["severity"] == "error")
    assert result["field"] == {"path": "spec.secrets[0].data[1].generate"}
    assert result["file"] == {"path": "hostk8s.secrets.yaml", "index": 0}
    assert result["resourceRef"]["name"] == "demo"
    assert "hostk8s.secrets.yaml: SecretContract/demo: spec.secrets[0].data[1].generate: [error]" in ran.stderr


def test_not_a_resource_list_still_writes_one_and_fails() -> None:
    for stdin in ("", "kind: Deployment\n", "items: [\n", '{"kind": "ResourceList", "items": [1]}'):
        ran = in_process(stdin=stdin, env={})
        assert ran.returncode == 1, stdin
        out = ran.output()
        assert out["kind"] == "ResourceList" and out["results"][0]["severity"] == "error"


def test_prior_results_are_kept() -> None:
    doc = yaml_codec.load(generator_input(CONTRACT))
    doc["results"] = [{"message": "from an earlier function", "severity": "info"}]
    out = in_process(stdin=yaml_codec.dump(doc), env={}).output()
    assert out["results"][0]["message"] == "from an earlier function"


def test_unchanged_items_are_written_back_as_their_own_text() -> None:
    item = (
        "- apiVersion: v1 # why\n"
        "    kind: ConfigMap\n"
        "    metadata: {name: cm, annotations: {internal.config.kubernetes.io/path: cm.yaml}}\n"
        "    data:\n"
        "      mode: 0644\n"
        "      quoted: 'single'\n"
        "      ref: !Ref thing\n"
    )
    stdin = "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n  " + item
    ran = in_process(stdin=stdin, env={})
    assert ran.returncode == 0, ran.stderr
    assert "  " + item in ran.stdout


def test_an_item_nested_as_deep_as_the_parser_allows_passes_through() -> None:
    depth = 990  # libyaml refuses more than 1,000 levels
    deep = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata:\n  x: " + "[" * depth + "]" * depth
    stdin = "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- " + deep.replace("\n", "\n  ") + "\n"
    ran = in_process(stdin=stdin, env={})
    assert ran.returncode == 0, ran.stderr[-500:]
    assert ("[" * depth) in ran.stdout


def _rendered(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """What `secret-contract render` would have committed for `obj`: its ExternalSecrets, no bookkeeping."""
    items = in_process(stdin=generator_input(obj), env={}).output()["items"]
    return [krm.strip_orchestrator_annotations(item) for item in items]


def test_package_mode_replaces_only_what_it_placed_and_passes_other_output_through() -> None:
    """Committed render output of another stack (vendored/) is not this run's to drop; an
    old generated file beside no contract of this run passes through with a warning."""
    other = contract("other", secret("cache", "other", generated("k", "token")))
    vendored = [with_path(es, "vendored/other.yaml", i) for i, es in enumerate(_rendered(other))]
    orphan = with_path(_rendered(other)[0], "gone/external-secrets.generated.yaml")
    orphan["metadata"]["name"] = "orphan"
    mine = with_path(CONTRACT, "stack/hostk8s.secrets.yaml")
    first = in_process(stdin=package_input(mine), env={}).output()["items"]
    old = copy.deepcopy(first[1])
    old["metadata"]["name"] = "left-the-contract"
    ran = in_process(stdin=package_input(mine, *vendored, orphan, first[1], old), env={})
    assert ran.returncode == 0, ran.stderr
    items = ran.output()["items"]
    assert [i for i in items if i in vendored] == vendored
    assert orphan in items
    names = [i["metadata"]["name"] for i in items if i["kind"] == "ExternalSecret"]
    assert sorted(names) == ["cache", "db", "orphan"]  # its own stale output is dropped, nothing else
    warning = next(r for r in ran.output()["results"] if r["severity"] == "warning" and "orphan" in r["message"])
    assert warning["file"]["path"] == "gone/external-secrets.generated.yaml" and "stale" in warning["message"]


def test_a_shared_externalsecret_committed_elsewhere_is_kept_once_or_is_a_conflict() -> None:
    mine = with_path(CONTRACT, "stack/hostk8s.secrets.yaml")
    same = with_path(_rendered(CONTRACT)[0], "vendored/a.yaml")
    ran = in_process(stdin=package_input(mine, same), env={})
    assert ran.returncode == 0, ran.stderr
    ess = [i for i in ran.output()["items"] if i["kind"] == "ExternalSecret"]
    assert ess == [same]  # delivered once, where it was committed
    differing = copy.deepcopy(same)
    differing["spec"]["refreshInterval"] = "5m"
    ran = in_process(stdin=package_input(mine, differing), env={})
    assert ran.returncode == 1
    assert "vendored/a.yaml" in ran.stderr and "stack/hostk8s.secrets.yaml" in ran.stderr
    assert differing in ran.output()["items"]


def test_an_unquoted_integer_of_thousands_of_digits_is_a_clear_error() -> None:
    """Python refuses to convert more than 4,300 digits; no Kubernetes reader holds such a number."""
    huge = "9" * 5000
    bad = copy.deepcopy(CONTRACT)
    bad["spec"]["secrets"][0]["data"][0]["value"] = "HUGE"
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"n": "HUGE"}}
    stdin = package_input(with_path(bad, "stack/hostk8s.secrets.yaml"), with_path(config_map, "cm.yaml"))
    ran = in_process(stdin=stdin.replace('"HUGE"', huge).replace("HUGE", huge), env={})
    assert ran.returncode == 1, ran.stderr
    result = next(r for r in ran.output()["results"] if r["severity"] == "error")
    assert result["field"] == {"path": "spec.secrets[0].data[0].value"}
    assert result["file"]["path"] == "stack/hostk8s.secrets.yaml" and result["resourceRef"]["name"] == "demo"
    assert "too large" in result["message"] and "quote" in result["message"]
    assert "Traceback" not in ran.stderr and huge not in ran.stderr
    cm = in_process(stdin=package_input(with_path(config_map, "cm.yaml")).replace("HUGE", huge), env={})
    assert cm.returncode == 0 and f'"n": {huge}' in cm.stdout  # another item passes through as it was
