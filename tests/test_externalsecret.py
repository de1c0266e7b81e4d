"""ExternalSecret manifests: the spec's shape, settings precedence, determinism."""

from __future__ import annotations

from typing import Any

from secret_contract import contract, externalsecret, settings, yaml_codec
from secret_contract.results import ResourceRef

REF = ResourceRef("hostk8s.io/v1", "SecretContract", "foundation/airflow")


def load(spec: dict[str, Any], name: str = "foundation/airflow") -> contract.Contract:
    obj = {"apiVersion": "hostk8s.io/v1", "kind": "SecretContract", "metadata": {"name": name}, "spec": spec}
    loaded, findings = contract.load(obj, REF, None)
    assert loaded is not None, findings
    return loaded


SECRET = {"name": "airflow-secrets", "namespace": "airflow", "data": [{"key": "fernet-key", "generate": "fernet"}]}


def build(c: contract.Contract, defaults: settings.Defaults | None = None) -> dict[str, Any]:
    defaults = defaults or settings.Defaults()
    return externalsecret.build(c, c.secrets[0], settings.resolve(c, c.secrets[0], defaults))


def test_default_manifest_follows_the_spec() -> None:
    es = build(load({"secrets": [SECRET]}))
    assert es["apiVersion"] == "external-secrets.io/v1"
    assert es["metadata"]["name"] == "airflow-secrets" and es["metadata"]["namespace"] == "airflow"
    assert es["metadata"]["labels"][externalsecret.CONTRACT_LABEL] == "foundation.airflow"
    assert es["metadata"]["annotations"][externalsecret.CONTRACT_ANNOTATION] == "foundation/airflow"
    spec = es["spec"]
    assert spec["refreshInterval"] == "1h"
    assert spec["secretStoreRef"] == {"name": "vault-backend", "kind": "ClusterSecretStore"}
    assert spec["target"] == {"name": "airflow-secrets", "creationPolicy": "Owner", "deletionPolicy": "Retain"}
    assert spec["data"] == [
        {
            "secretKey": "fernet-key",
            "remoteRef": {
                "key": "foundation/airflow/airflow/airflow-secrets",
                "property": "fernet-key",
                "conversionStrategy": "Default",
                "decodingStrategy": "None",
                "metadataPolicy": "None",
                "nullBytePolicy": "Ignore",
            },
        }
    ]


def test_namespace_layout_drops_the_stack() -> None:
    es = build(load({"secrets": [SECRET]}), settings.Defaults(layout="namespace", mount="kv"))
    assert es["spec"]["data"][0]["remoteRef"]["key"] == "airflow/airflow-secrets"
    assert es["metadata"]["annotations"][externalsecret.VAULT_PATH_ANNOTATION] == "kv/airflow/airflow-secrets"


def test_secret_settings_override_contract_settings_which_override_defaults() -> None:
    spec = {
        "externalSecret": {
            "refreshInterval": "15m",
            "secretStoreRef": {"name": "contract-store"},
            "target": {"template": {"metadata": {"labels": {"team": "data", "tier": "db"}}}},
        },
        "secrets": [
            {
                **SECRET,
                "externalSecret": {
                    "secretStoreRef": {"name": "secret-store", "kind": "SecretStore"},
                    "target": {
                        "template": {
                            "metadata": {
                                "labels": {"tier": "cache"},
                                "annotations": {"eck.k8s.elastic.co/credentials": "true"},
                            }
                        }
                    },
                },
            }
        ],
    }
    es = build(load(spec), settings.Defaults(store_name="env-store", refresh_interval="2h"))
    assert es["spec"]["refreshInterval"] == "15m"
    assert es["spec"]["secretStoreRef"] == {"name": "secret-store", "kind": "SecretStore"}
    template = es["spec"]["target"]["template"]
    assert template["engineVersion"] == "v2" and template["mergePolicy"] == "Replace"
    assert template["metadata"] == {
        "labels": {"team": "data", "tier": "cache"},
        "annotations": {"eck.k8s.elastic.co/credentials": "true"},
    }


def test_v1beta1_omits_fields_older_eso_rejects() -> None:
    es = build(load({"externalSecret": {"apiVersion": "external-secrets.io/v1beta1"}, "secrets": [SECRET]}))
    assert es["apiVersion"] == "external-secrets.io/v1beta1"
    assert "nullBytePolicy" not in es["spec"]["data"][0]["remoteRef"]


def test_same_input_gives_the_same_bytes() -> None:
    c = load({"secrets": [SECRET]})
    assert yaml_codec.dump(build(c)) == yaml_codec.dump(build(load({"secrets": [SECRET]})))


def test_long_stack_names_make_valid_label_values() -> None:
    stack = "/".join(["abcdefghij"] * 8)
    value = externalsecret.label_value(stack)
    assert len(value) <= 63 and value[-1].isalnum()
    assert value != externalsecret.label_value(stack + "x")


def test_settings_from_env_are_validated() -> None:
    defaults, findings = settings.load(
        {"SECRET_CONTRACT_STORE_NAME": "corp", "SECRET_CONTRACT_PATH_LAYOUT": "namespace"}
    )
    assert (defaults.store_name, defaults.layout, findings) == ("corp", "namespace", [])
    _, bad = settings.load({"SECRET_CONTRACT_REFRESH_INTERVAL": "hourly", "SECRET_CONTRACT_STORE_KIND": "Store"})
    assert len(bad) == 2 and all("SECRET_CONTRACT_" in r.message for r in bad)


def test_kpt_configmap_settings_apply_and_env_wins() -> None:
    defaults, _ = settings.load({"SECRET_CONTRACT_STORE_NAME": "env"}, {"storeName": "cfg", "refreshInterval": "5m"})
    assert (defaults.store_name, defaults.refresh_interval) == ("env", "5m")


def test_path_prefix_from_env_or_contract() -> None:
    es = build(load({"secrets": [SECRET]}), settings.Defaults(prefix="teams/data"))
    assert es["spec"]["data"][0]["remoteRef"]["key"] == "teams/data/foundation/airflow/airflow/airflow-secrets"
    es = build(load({"vault": {"prefix": "own"}, "secrets": [SECRET]}), settings.Defaults(prefix="teams/data"))
    assert es["spec"]["data"][0]["remoteRef"]["key"] == "own/foundation/airflow/airflow/airflow-secrets"
    _, bad = settings.load({"SECRET_CONTRACT_PATH_PREFIX": "../escape"})
    assert bad and "SECRET_CONTRACT_PATH_PREFIX" in bad[0].message
