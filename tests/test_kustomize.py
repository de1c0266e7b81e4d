"""`kubectl kustomize --enable-alpha-plugins` building the sample app through the legacy
exec plugin that `secret-contract install-plugin` installs, against the real OpenBao."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import EXAMPLES, Vault, assert_no_leak, assert_sample_app_built, run, secret_contract
from secret_contract import yaml_codec


@pytest.fixture
def sample_app(tmp_path: Path) -> Path:
    target = tmp_path / "sample-app"
    shutil.copytree(EXAMPLES / "sample-app", target)
    return target


def kustomize(kubectl: str, path: Path, plugin_home: Path, env: dict[str, str]) -> tuple[int, str, str]:
    ran = run(
        [kubectl, "kustomize", "--enable-alpha-plugins", str(path)],
        env={**env, "KUSTOMIZE_PLUGIN_HOME": str(plugin_home)},
    )
    return ran.returncode, ran.stdout, ran.stderr


def test_sample_app_builds_writes_vault_and_is_idempotent(
    kubectl: str, sample_app: Path, plugin_home: Path, vault: Vault
) -> None:
    rc, first, err1 = kustomize(kubectl, sample_app, plugin_home, vault.env)
    assert rc == 0, err1
    assert "SecretContract" not in first
    docs = assert_sample_app_built(first, vault)

    before = vault.snapshot()
    rc, second, err2 = kustomize(kubectl, sample_app, plugin_home, vault.env)
    assert rc == 0 and second == first
    assert vault.snapshot() == before
    names = tuple(d["metadata"]["name"] for d in docs)
    assert_no_leak([first, second, err1, err2], [*vault.values(), vault.server.token], names)


def test_contract_edits_flow_through_a_build(kubectl: str, sample_app: Path, plugin_home: Path, vault: Vault) -> None:
    kustomize(kubectl, sample_app, plugin_home, vault.env)
    before = vault.read("sample-app/postgres-credentials")
    contract = sample_app / "hostk8s.secrets.yaml"
    text = contract.read_text()
    text = text.replace("value: postgres", "value: app_owner")
    text = text.replace(
        "        - key: port", "        - key: api-token\n          generate: token\n        - key: port"
    )
    contract.write_text(text)
    rc, out, err = kustomize(kubectl, sample_app, plugin_home, vault.env)
    assert rc == 0, err
    after = vault.read("sample-app/postgres-credentials")
    assert after is not None and before is not None
    assert after["username"] == "app_owner" and after["password"] == before["password"]
    assert len(after["api-token"]) == 32
    assert "secretKey: api-token" in out


def test_invalid_contract_fails_the_build_and_names_the_field(
    kubectl: str, sample_app: Path, plugin_home: Path, vault: Vault
) -> None:
    contract = sample_app / "hostk8s.secrets.yaml"
    contract.write_text(contract.read_text().replace("generate: token", "generate: tokn"))
    rc, _, err = kustomize(kubectl, sample_app, plugin_home, vault.env)
    assert rc != 0
    assert "spec.secrets[1].data[0].generate" in err and "unknown generator 'tokn'" in err
    assert vault.paths() == []


def test_render_only_without_vault_and_strict_failure(kubectl: str, sample_app: Path, plugin_home: Path) -> None:
    rc, out, _ = kustomize(kubectl, sample_app, plugin_home, {})
    assert rc == 0
    assert out.count("kind: ExternalSecret") == 2
    rc, out, err = kustomize(kubectl, sample_app, plugin_home, {"SECRET_CONTRACT_STRICT": "true"})
    assert rc != 0 and "VAULT_ADDR is not set" in err


def test_a_module_in_the_kustomization_folder_does_not_shadow_the_plugins(
    kubectl: str, sample_app: Path, plugin_home: Path
) -> None:
    # kustomize runs the plugin in the kustomization's folder, whose files are not modules.
    (sample_app / "yaml.py").write_text("raise ImportError('the folder shadowed PyYAML')\n")
    rc, out, err = kustomize(kubectl, sample_app, plugin_home, {})
    assert rc == 0, err
    assert out.count("kind: ExternalSecret") == 2


def test_legacy_plugin_reports_the_render_only_warning(sample_app: Path) -> None:
    ran = secret_contract(str(sample_app / "hostk8s.secrets.yaml"))
    assert ran.returncode == 0
    assert ran.stdout.count("kind: ExternalSecret") == 2
    assert "[warning] VAULT_ADDR is not set" in ran.stderr


def test_container_variant_carries_the_function_annotation() -> None:
    contract = yaml_codec.load((EXAMPLES / "sample-app-container" / "hostk8s.secrets.yaml").read_text())
    fn = yaml_codec.load(contract["metadata"]["annotations"]["config.kubernetes.io/function"])
    assert fn["container"]["network"] is True
    assert {"VAULT_ADDR", "VAULT_TOKEN"} <= set(fn["container"]["envs"])
    sample = yaml_codec.load((EXAMPLES / "sample-app" / "hostk8s.secrets.yaml").read_text())
    assert contract["spec"] == sample["spec"]


def test_no_silent_success_when_vault_was_not_written(
    kubectl: str, sample_app: Path, plugin_home: Path, vault: Vault
) -> None:
    """With a Vault configured, a build that could not write it fails under kubectl kustomize
    with no terminal and no CI: a wrong port, a wrong token, a KV version 1 mount."""
    vault.client.sys.enable_secrets_engine("kv", path=vault.mount + "-v1", options={"version": "1"})
    for wrong, said in (
        ({"VAULT_ADDR": "http://127.0.0.1:9"}, "cannot connect"),
        ({"VAULT_TOKEN": "s.wrong-token"}, "the token was refused"),
        ({"SECRET_CONTRACT_VAULT_MOUNT": vault.mount + "-v1"}, "KV version 1"),
    ):
        rc, out, err = kustomize(kubectl, sample_app, plugin_home, {**vault.env, **wrong})
        assert rc != 0 and said in err and "kind: ExternalSecret" not in out, wrong
    rc, out, err = kustomize(
        kubectl,
        sample_app,
        plugin_home,
        {**vault.env, "VAULT_ADDR": "http://127.0.0.1:9", "SECRET_CONTRACT_STRICT": "false"},
    )
    assert rc == 0 and out.count("kind: ExternalSecret") == 2
    assert vault.paths() == []


def test_in_ci_a_build_that_cannot_write_vault_fails(
    kubectl: str, sample_app: Path, plugin_home: Path, vault: Vault
) -> None:
    """kustomize drops a plugin's stderr when it succeeds: in CI a warning would be silent."""
    wrong = {**vault.env, "VAULT_TOKEN": "s.wrong-token", "CI": "true"}
    rc, _, err = kustomize(kubectl, sample_app, plugin_home, wrong)
    assert rc != 0 and "the token was refused" in err
    rc, _, err = kustomize(kubectl, sample_app, plugin_home, {"CI": "true"})
    assert rc != 0 and "VAULT_ADDR is not set" in err
    opted_out = {**wrong, "SECRET_CONTRACT_STRICT": "false"}
    rc, out, _ = kustomize(kubectl, sample_app, plugin_home, opted_out)
    assert rc == 0 and out.count("kind: ExternalSecret") == 2
    assert vault.paths() == []


def test_a_preview_build_writes_nothing_and_says_what_it_would(
    kubectl: str, sample_app: Path, plugin_home: Path, vault: Vault
) -> None:
    rc, _, err = kustomize(kubectl, sample_app, plugin_home, {**vault.env, "SECRET_CONTRACT_DRY_RUN": "true"})
    assert rc != 0  # exit 2: changes pending, so kustomize shows them
    assert f"would create {vault.mount}/sample-app/postgres-credentials" in err and vault.paths() == []
    assert kustomize(kubectl, sample_app, plugin_home, vault.env)[0] == 0
    rc, _, _ = kustomize(kubectl, sample_app, plugin_home, {**vault.env, "SECRET_CONTRACT_DRY_RUN": "true"})
    assert rc == 0  # nothing pending


CONFIG_MAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-settings
  namespace: sample-app
data:
  mode: "0644"
  level: info
"""


def test_under_transformers_every_other_resource_passes_through(
    kubectl: str, sample_app: Path, plugin_home: Path, vault: Vault
) -> None:
    """kustomize deletes whatever a transformer leaves out: the plugin returns its input with
    the ExternalSecrets added."""
    (sample_app / "settings.yaml").write_text(CONFIG_MAP)
    (sample_app / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources:\n  - namespace.yaml\n  - settings.yaml\ntransformers:\n  - hostk8s.secrets.yaml\n"
    )
    rc, out, err = kustomize(kubectl, sample_app, plugin_home, vault.env)
    assert rc == 0, err
    docs = yaml_codec.load_all(out)
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in docs)
    assert kinds == [
        ("ConfigMap", "app-settings"),
        ("ExternalSecret", "postgres-credentials"),
        ("ExternalSecret", "redis-credentials"),
        ("Namespace", "sample-app"),
    ]
    config_map = next(d for d in docs if d["kind"] == "ConfigMap")
    assert config_map["data"] == {"mode": "0644", "level": "info"}
    assert not any("config.k8s.io/id" in (d["metadata"].get("annotations") or {}) for d in docs)
    assert vault.read("sample-app/postgres-credentials") is not None
    rc, again, _ = kustomize(kubectl, sample_app, plugin_home, vault.env)
    assert rc == 0 and again == out
    assert_no_leak([out, err], [*vault.values(), vault.server.token], ("postgres-credentials", "redis-credentials"))
