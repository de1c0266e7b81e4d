"""The exec-function route for real: a kustomization whose generator is the contract with a
`config.kubernetes.io/function: {exec: {path: ...}}` annotation (`secret-contract init --runtime
exec`), built by the standalone kustomize v5.8.1 the control plane builds, with
`--enable-alpha-plugins --enable-exec`, against the cluster's OpenBao: Vault is written, the
ExternalSecrets are emitted, and applied they become Secrets holding Vault's values."""

from __future__ import annotations

import secrets
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import run as run_cli
from secret_contract import yaml_codec

from .conftest import CLUSTER_DIR, Cluster, kustomize_path, read_env, stack_files, write_files

BIN = Path(sys.executable).parent
LOGS = ("eso",)


def kustomize() -> str:
    named = read_env(CLUSTER_DIR / "env").get("KUSTOMIZE", "")  # up.sh writes it
    if named and Path(named).is_file():
        return named
    folder = kustomize_path()
    if not folder:
        pytest.fail("the standalone kustomize is not built: cluster/build.sh kustomize")
    return str(Path(folder) / "kustomize")


@pytest.fixture
def stack(cluster: Cluster, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    namespace = "exec-" + secrets.token_hex(3)
    folder = tmp_path / "app"
    contract = f"""\
apiVersion: hostk8s.io/v1
kind: SecretContract
metadata:
  name: {namespace}
spec:
  secrets:
    - name: db-credentials
      namespace: {namespace}
      data:
        - key: username
          value: app
        - key: password
          generate: password
          length: 24
    - name: cache-credentials
      namespace: {namespace}
      data:
        - key: token
          generate: token
          length: 32
"""
    write_files(folder, stack_files(namespace, contract))
    yield namespace, folder
    cluster.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")


def test_standalone_kustomize_runs_the_exec_function_against_openbao(cluster: Cluster, stack: tuple[str, Path]) -> None:
    namespace, folder = stack
    tool = shutil.which("secret-contract", path=str(BIN))
    assert tool, f"secret-contract is not installed in {BIN}"
    init = run_cli([str(BIN / "secret-contract"), "init", str(folder), "--runtime", "exec", "--exec-path", tool])
    assert init.returncode == 0, init.stderr
    contract = yaml_codec.load((folder / "hostk8s.secrets.yaml").read_text())
    function = yaml_codec.load(contract["metadata"]["annotations"]["config.kubernetes.io/function"])
    assert function == {"exec": {"path": tool}}

    env = {"VAULT_ADDR": cluster.env["VAULT_ADDR"], "VAULT_TOKEN": cluster.env["VAULT_TOKEN"]}
    built = run_cli([kustomize(), "build", "--enable-alpha-plugins", "--enable-exec", str(folder)], env=env)
    assert built.returncode == 0, built.stderr
    docs = yaml_codec.load_all(built.stdout)
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in docs)
    assert kinds == [
        ("ExternalSecret", "cache-credentials"),
        ("ExternalSecret", "db-credentials"),
        ("Namespace", namespace),
    ], kinds
    vault = cluster.vault()
    stored = {
        name: vault.secrets.kv.v2.read_secret_version(
            f"{namespace}/{name}", mount_point="secret", raise_on_deleted_version=True
        )["data"]["data"]
        for name in ("db-credentials", "cache-credentials")
    }
    assert stored["db-credentials"]["username"] == "app" and len(stored["db-credentials"]["password"]) == 24
    assert len(stored["cache-credentials"]["token"]) == 32
    said = built.stdout + built.stderr
    for values in stored.values():
        for key, value in values.items():
            assert key == "username" or str(value) not in said
    assert cluster.env["VAULT_TOKEN"] not in said

    # The same build again writes nothing and gives the same bytes.
    again = run_cli([kustomize(), "build", "--enable-alpha-plugins", "--enable-exec", str(folder)], env=env)
    assert again.returncode == 0 and again.stdout == built.stdout, again.stderr
    for name in stored:
        meta = vault.secrets.kv.v2.read_secret_metadata(f"{namespace}/{name}", mount_point="secret")
        assert meta["data"]["current_version"] == 1

    # What kustomize emitted, applied, is what ESO delivers.
    cluster.apply(built.stdout)
    for name, values in stored.items():
        want = {k: str(v).encode() for k, v in values.items()}
        cluster.wait(
            f"Secret {namespace}/{name} equal to Vault (ESO {cluster.eso_version})",
            lambda name=name, want=want: (
                cluster.exists("secret", name, "-n", namespace) and cluster.secret_data(name, namespace) == want
            ),
            LOGS,
        )

    # kubectl's kustomize has no --enable-exec: it leaves the function out without a word.
    skipped = run_cli([cluster.kubectl_path, "kustomize", "--enable-alpha-plugins", str(folder)], env=env)
    assert skipped.returncode == 0, skipped.stderr
    assert [d["kind"] for d in yaml_codec.load_all(skipped.stdout)] == ["Namespace"]
