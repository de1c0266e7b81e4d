"""The KRM protocol, run as a subprocess exactly as orchestrators run it (no Vault here)."""

from __future__ import annotations

import copy
from typing import Any

from conftest import secret_contract
from secret_contract import yaml_codec

CONTRACT: dict[str, Any] = {
    "apiVersion": "hostk8s.io/v1",
    "kind": "SecretContract",
    "metadata": {"name": "demo"},
    "spec": {
        "secrets": [
            {
                "name": "db",
                "namespace": "demo",
                "data": [{"key": "user", "value": "admin"}, {"key": "pass", "generate": "password"}],
            }
        ]
    },
}


def generator_input(contract: dict[str, Any]) -> str:
    """What kustomize sends a `generators:` function: the config as functionConfig and only item."""
    item = copy.deepcopy(contract)
    item["metadata"]["annotations"] = {
        "config.kubernetes.io/local-config": "true",
        "config.kubernetes.io/index": "0",
        "internal.config.kubernetes.io/index": "0",
        "internal.config.kubernetes.io/id": "1",
        "config.k8s.io/id": "1",
    }
    config = copy.deepcopy(contract)
    config["metadata"]["annotations"] = {"config.kubernetes.io/local-config": "true"}
    return yaml_codec.dump(
        {"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", "items": [item], "functionConfig": config}
    )


def package_input(*items: dict[str, Any]) -> str:
    return yaml_codec.dump({"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", "items": list(items)})


def with_path(item: dict[str, Any], path: str, index: int = 0) -> dict[str, Any]:
    item = copy.deepcopy(item)
    notes = item.setdefault("metadata", {}).setdefault("annotations", {})
    for key in ("internal.config.kubernetes.io/path", "config.kubernetes.io/path"):
        notes[key] = path
    for key in ("internal.config.kubernetes.io/index", "config.kubernetes.io/index"):
        notes[key] = str(index)
    return item


def test_generator_mode_emits_only_externalsecrets_with_a_render_warning() -> None:
    ran = secret_contract(stdin=generator_input(CONTRACT))
    assert ran.returncode == 0, ran.stderr
    out = yaml_codec.load(ran.stdout)
    assert [(i["kind"], i["metadata"]["name"]) for i in out["items"]] == [("ExternalSecret", "db")]
    assert out["results"][0]["severity"] == "warning"
    assert "VAULT_ADDR is not set" in out["results"][0]["message"]
    assert "VAULT_ADDR is not set" in ran.stderr


def test_package_mode_passes_everything_through_and_places_output_beside_the_contract() -> None:
    config_map = with_path(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "yes"}}, "cm.yaml"
    )
    ran = secret_contract(stdin=package_input(config_map, with_path(CONTRACT, "stack/hostk8s.secrets.yaml")))
    assert ran.returncode == 0, ran.stderr
    items = yaml_codec.load(ran.stdout)["items"]
    assert items[0] == config_map
    assert items[1]["kind"] == "SecretContract"
    es = items[2]
    notes = es["metadata"]["annotations"]
    assert notes["internal.config.kubernetes.io/path"] == "stack/external-secrets.generated.yaml"
    assert notes["config.kubernetes.io/path"] == notes["internal.config.kubernetes.io/path"]


def test_package_mode_is_a_fixed_point() -> None:
    first = secret_contract(stdin=package_input(with_path(CONTRACT, "hostk8s.secrets.yaml")))
    again = secret_contract(stdin=package_input(*yaml_codec.load(first.stdout)["items"]))
    assert yaml_codec.load(again.stdout)["items"] == yaml_codec.load(first.stdout)["items"]


def test_package_mode_drops_externalsecrets_of_secrets_that_left_the_contract() -> None:
    two = copy.deepcopy(CONTRACT)
    two["spec"]["secrets"].append({"name": "cache", "namespace": "demo", "data": [{"key": "k", "generate": "token"}]})
    first = yaml_codec.load(secret_contract(stdin=package_input(with_path(two, "c.yaml"))).stdout)["items"]
    assert sorted(i["metadata"]["name"] for i in first if i["kind"] == "ExternalSecret") == ["cache", "db"]
    rerun = [with_path(CONTRACT, "c.yaml"), *first[1:]]
    items = yaml_codec.load(secret_contract(stdin=package_input(*rerun)).stdout)["items"]
    assert [i["metadata"]["name"] for i in items if i["kind"] == "ExternalSecret"] == ["db"]


def test_invalid_contract_fails_with_structured_results_and_stderr() -> None:
    bad = copy.deepcopy(CONTRACT)
    bad["spec"]["secrets"][0]["data"][1]["generate"] = "pasword"
    ran = secret_contract(stdin=package_input(with_path(bad, "hostk8s.secrets.yaml")))
    assert ran.returncode == 1
    result = next(r for r in yaml_codec.load(ran.stdout)["results"] if r["severity"] == "error")
    assert result["field"] == {"path": "spec.secrets[0].data[1].generate"}
    assert result["file"] == {"path": "hostk8s.secrets.yaml", "index": 0}
    assert result["resourceRef"]["name"] == "demo"
    assert "hostk8s.secrets.yaml: SecretContract/demo: spec.secrets[0].data[1].generate: [error]" in ran.stderr


def test_not_a_resource_list_still_writes_one_and_fails() -> None:
    for stdin in ("", "kind: Deployment\n", "items: [\n", '{"kind": "ResourceList", "items": [1]}'):
        ran = secret_contract(stdin=stdin)
        assert ran.returncode == 1, stdin
        out = yaml_codec.load(ran.stdout)
        assert out["kind"] == "ResourceList" and out["results"][0]["severity"] == "error"


def test_prior_results_are_kept() -> None:
    doc = yaml_codec.load(generator_input(CONTRACT))
    doc["results"] = [{"message": "from an earlier function", "severity": "info"}]
    out = yaml_codec.load(secret_contract(stdin=yaml_codec.dump(doc)).stdout)
    assert out["results"][0]["message"] == "from an earlier function"


def test_help_on_a_terminal_and_for_every_command() -> None:
    for args in (
        ["--help"],
        *[[cmd, "--help"] for cmd in ("add", "remove", "list", "render", "verify", "install-plugin")],
    ):
        ran = secret_contract(*args)
        assert ran.returncode == 0 and "usage: secret-contract" in ran.stdout, args
