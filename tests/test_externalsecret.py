"""ExternalSecret manifests: the spec's shape, settings precedence, determinism."""

from __future__ import annotations

from typing import Any

from secret_contract import contract, externalsecret, krm, resolution, settings, yaml_codec
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
    r = resolution.resolve(c, c.secrets[0], defaults)
    return externalsecret.manifest(c.secrets[0].namespace, r, r.views[0])


def test_default_manifest_follows_the_spec_and_names_no_contract() -> None:
    es = build(load({"secrets": [SECRET]}))
    assert es["apiVersion"] == "external-secrets.io/v1"
    assert es["metadata"] == {
        "name": "airflow-secrets",
        "namespace": "airflow",
        "labels": {"app.kubernetes.io/managed-by": "secret-contract"},
        "annotations": {externalsecret.VAULT_PATH_ANNOTATION: "secret/airflow/airflow-secrets"},
    }
    assert es["spec"] == {
        "refreshInterval": "1h",
        "secretStoreRef": {"name": "vault-backend", "kind": "ClusterSecretStore"},
        "target": {"name": "airflow-secrets", "creationPolicy": "Owner"},
        "data": [
            {"secretKey": "fernet-key", "remoteRef": {"key": "airflow/airflow-secrets", "property": "fernet-key"}}
        ],
    }


def test_the_stack_layout_prefixes_the_stack() -> None:
    es = build(load({"secrets": [SECRET]}), settings.Defaults(layout="stack", mount="kv"))
    assert es["spec"]["data"][0]["remoteRef"]["key"] == "foundation/airflow/airflow/airflow-secrets"
    assert es["metadata"]["annotations"][externalsecret.VAULT_PATH_ANNOTATION] == (
        "kv/foundation/airflow/airflow/airflow-secrets"
    )


def test_data_entries_are_sorted_so_every_declaration_gives_the_same_bytes() -> None:
    keys = [{"key": "b", "value": "1"}, {"key": "a", "generate": "token"}]
    es = build(load({"secrets": [{**SECRET, "data": keys}]}))
    assert [d["secretKey"] for d in es["spec"]["data"]] == ["a", "b"]
    assert es == build(load({"secrets": [{**SECRET, "data": keys[::-1]}]}, name="sample-app"))


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
    assert "engineVersion" not in template and "mergePolicy" not in template
    assert template["metadata"] == {
        "labels": {"team": "data", "tier": "cache"},
        "annotations": {"eck.k8s.elastic.co/credentials": "true"},
    }


def test_same_input_gives_the_same_bytes() -> None:
    c = load({"secrets": [SECRET]})
    assert yaml_codec.dump(build(c)) == yaml_codec.dump(build(load({"secrets": [SECRET]})))


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


def test_unknown_configmap_keys_are_errors_naming_the_key() -> None:
    _, findings = settings.load({}, {"storeKnd": "SecretStore"})
    assert [f.severity for f in findings] == ["error"] and "unknown setting 'storeKnd'" in findings[0].message


def test_an_unquoted_zero_refresh_interval_means_zero() -> None:
    defaults, findings = settings.load({}, {"refreshInterval": 0})
    assert (defaults.refresh_interval, findings) == ("0", [])


def test_ci_makes_builds_strict_unless_told_otherwise() -> None:
    strict, _ = settings.load({"CI": "true"})
    assert strict.strict and "CI is set" in strict.strict_reason
    relaxed, _ = settings.load({"CI": "true", "SECRET_CONTRACT_STRICT": "false"})
    assert not relaxed.strict
    assert not settings.load({})[0].strict and not settings.load({"CI": "false"})[0].strict


def test_path_prefix_from_env_or_contract() -> None:
    es = build(load({"secrets": [SECRET]}), settings.Defaults(prefix="teams/data"))
    assert es["spec"]["data"][0]["remoteRef"]["key"] == "teams/data/airflow/airflow-secrets"
    es = build(load({"vault": {"prefix": "own"}, "secrets": [SECRET]}), settings.Defaults(prefix="teams/data"))
    assert es["spec"]["data"][0]["remoteRef"]["key"] == "own/airflow/airflow-secrets"
    _, bad = settings.load({"SECRET_CONTRACT_PATH_PREFIX": "../escape"})
    assert bad and "SECRET_CONTRACT_PATH_PREFIX" in bad[0].message


def test_the_identity_of_a_view_is_the_identity_of_its_manifest() -> None:
    """A build finds an ExternalSecret declared twice by identity before making its manifest."""
    c = load(
        {
            "externalSecret": {"apiVersion": "external-secrets.io/v1beta1"},
            "secrets": [
                {**SECRET, "externalSecrets": [{"name": "airflow-fernet", "apiVersion": "external-secrets.io/v1"}]}
            ],
        }
    )
    r = resolution.resolve(c, c.secrets[0], settings.Defaults())
    assert len(r.views) == 2
    for view in r.views:
        manifest = externalsecret.manifest("airflow", r, view)
        assert externalsecret.identity("airflow", view) == krm.identity(manifest)
