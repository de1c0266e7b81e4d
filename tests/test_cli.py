"""The command line the platform's Makefile calls: add, verify, list, remove, render."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from conftest import EXAMPLES, Vault, assert_no_leak, run, secret_contract
from fixtures import contract, generated, secret, static
from secret_contract import yaml_codec

pytestmark = pytest.mark.vault
POSTGRES = "sample-app/postgres-credentials"
REDIS = "sample-app/redis-credentials"


@pytest.fixture
def stack(tmp_path: Path) -> Path:
    target = tmp_path / "sample-app"
    shutil.copytree(EXAMPLES / "sample-app", target)
    return target


def test_add_verify_list_remove_round_trip(stack: Path, vault: Vault) -> None:
    missing = secret_contract("verify", str(stack), env=vault.env)
    assert missing.returncode == 1
    assert f"{vault.mount}/{POSTGRES}: missing secret" in missing.stderr

    added = secret_contract("add", str(stack), env=vault.env)
    assert added.returncode == 0, added.stderr
    assert [d["kind"] for d in yaml_codec.load_all(added.stdout)] == ["ExternalSecret", "ExternalSecret"]
    assert "internal.config.kubernetes.io" not in added.stdout

    verified = secret_contract("verify", str(stack), env=vault.env)
    assert verified.returncode == 0, verified.stderr

    listed = secret_contract("list", str(stack), env=vault.env)
    assert listed.returncode == 0
    assert f"{vault.mount}/{POSTGRES}" in listed.stdout and "host, password, port, username" in listed.stdout
    assert "sample-app" in listed.stdout.splitlines()[1] and listed.stdout.splitlines()[-1] == "2 secrets"

    # Someone else's secret in the same folder survives a remove.
    vault.client.secrets.kv.v2.create_or_update_secret("sample-app/manual", {"k": "v"}, mount_point=vault.mount)
    dry = secret_contract("remove", "--dry-run", str(stack), env=vault.env)
    assert dry.returncode == 0 and f"would delete {vault.mount}/{POSTGRES}" in dry.stderr
    assert vault.read(POSTGRES) is not None
    unconfirmed = secret_contract("remove", str(stack), env=vault.env)
    assert unconfirmed.returncode == 1 and "add --yes" in unconfirmed.stderr and vault.read(POSTGRES) is not None
    removed = secret_contract("remove", "--yes", str(stack), env=vault.env)
    assert removed.returncode == 0, removed.stderr
    assert vault.paths() == ["sample-app/manual"]

    outputs = [missing.text, added.text, verified.text, listed.text, dry.text, unconfirmed.text, removed.text]
    assert_no_leak(outputs, [vault.server.token, "voting-db-rw"])


def test_rotate_dry_run_changes_nothing_and_rotate_keeps_the_old_version(stack: Path, vault: Vault) -> None:
    assert secret_contract("add", str(stack), env=vault.env).returncode == 0
    before = vault.snapshot()
    dry = secret_contract("rotate", str(stack), "--secret", "postgres-credentials", "--dry-run", env=vault.env)
    assert dry.returncode == 0, dry.stderr
    assert f"{vault.mount}/{POSTGRES}" in dry.stderr and "password" in dry.stderr and vault.snapshot() == before
    done = secret_contract("rotate", str(stack), "--secret", "postgres-credentials", "--key", "password", env=vault.env)
    assert done.returncode == 0, done.stderr
    after = vault.read(POSTGRES) or {}
    assert vault.version(POSTGRES) == 2 and after["password"] != before[POSTGRES][1]["password"]
    assert {k: v for k, v in after.items() if k != "password"} == {
        k: v for k, v in before[POSTGRES][1].items() if k != "password"
    }
    old = vault.client.secrets.kv.v2.read_secret_version(
        POSTGRES, version=1, mount_point=vault.mount, raise_on_deleted_version=True
    )
    assert old["data"]["data"] == before[POSTGRES][1]  # the old value stays readable for a rollback
    assert vault.snapshot()[REDIS] == before[REDIS]  # the other secret is untouched
    assert_no_leak([dry.text, done.text], [*vault.values(), before[POSTGRES][1]["password"]], names=(POSTGRES,))


def test_verify_names_missing_keys_and_stale_static_values(stack: Path, vault: Vault) -> None:
    secret_contract("add", str(stack), env=vault.env)
    data = vault.read(POSTGRES)
    assert data is not None
    del data["password"]
    data["port"] = "6543"
    vault.client.secrets.kv.v2.create_or_update_secret(POSTGRES, data, mount_point=vault.mount)
    ran = secret_contract("verify", str(stack), env=vault.env)
    assert ran.returncode == 1
    assert f"{vault.mount}/{POSTGRES}: missing key 'password'" in ran.stderr
    assert f"{vault.mount}/{POSTGRES}: key 'port' differs from the contract's value" in ran.stderr
    assert "6543" not in ran.text


def test_add_needs_vault_and_render_never_touches_it(stack: Path, vault: Vault) -> None:
    no_vault = secret_contract("add", str(stack))
    assert no_vault.returncode == 1 and "VAULT_ADDR is not set" in no_vault.stderr
    rendered = secret_contract("render", str(stack), env=vault.env)
    assert rendered.returncode == 0 and rendered.stdout.count("kind: ExternalSecret") == 2
    assert rendered.stderr == ""
    assert vault.paths() == []


def test_add_fails_when_vault_is_unreachable(stack: Path) -> None:
    ran = secret_contract("add", str(stack), env={"VAULT_ADDR": "http://127.0.0.1:9", "VAULT_TOKEN": "x"})
    assert ran.returncode == 1 and "cannot connect to Vault" in ran.stderr


def test_bad_paths_and_files_are_clear_errors(tmp_path: Path) -> None:
    assert "no such file or directory" in secret_contract("render", str(tmp_path / "nope")).stderr
    empty = secret_contract("render", str(tmp_path))
    assert empty.returncode == 0 and "no hostk8s.secrets.yaml here, so no secrets to manage" in empty.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("spec:\n  secrets: [\n")
    ran = secret_contract("render", str(broken))
    assert ran.returncode == 1 and f"{broken}: invalid YAML" in ran.stderr and "line" in ran.stderr
    dup = tmp_path / "dup.yaml"
    dup.write_text("apiVersion: hostk8s.io/v1\nkind: SecretContract\nkind: SecretContract\n")
    assert "duplicate key 'kind'" in secret_contract("render", str(dup)).stderr


def test_install_plugin_writes_an_executable_where_kustomize_looks(tmp_path: Path) -> None:
    ran = secret_contract("install-plugin", env={"XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    assert ran.returncode == 0
    path = tmp_path / "xdg" / "kustomize" / "plugin" / "hostk8s.io" / "v1" / "secretcontract" / "SecretContract"
    assert ran.stdout.strip() == str(path)
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o755


def test_progress_is_shown_on_a_terminal_only(tmp_path: Path, vault: Vault) -> None:
    import pty
    import subprocess
    import sys

    big = {
        "apiVersion": "hostk8s.io/v1",
        "kind": "SecretContract",
        "metadata": {"name": "big"},
        "spec": {
            "secrets": [
                {"name": f"s{i}", "namespace": "big", "data": [{"key": "k", "generate": "token"}]} for i in range(250)
            ]
        },
    }
    path = tmp_path / "big.yaml"
    path.write_text(yaml_codec.dump(big))
    quiet = secret_contract("add", str(path), env=vault.env)
    assert quiet.returncode == 0 and "writing Vault" not in quiet.stderr and "reading Vault" not in quiet.stderr

    leader, follower = pty.openpty()
    proc = subprocess.run(
        [sys.executable, "-m", "secret_contract", "verify", str(path)],
        env={**os.environ, **vault.env},
        stdout=subprocess.PIPE,
        stderr=follower,
        timeout=120,
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert proc.returncode == 0
    assert b"reading Vault: 250/250" in shown


def test_prune_deletes_only_what_left_the_contract_and_asks_first(tmp_path: Path, vault: Vault) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        yaml_codec.dump(
            contract(
                "app",
                secret("db", "app", static("user", "admin"), generated("pass"), generated("old-key", "token")),
                secret("cache", "app", generated("k", "token")),
            )
        )
    )
    assert secret_contract("add", str(path), env=vault.env).returncode == 0
    before = vault.read("app/db") or {}
    path.write_text(yaml_codec.dump(contract("app", secret("db", "app", static("user", "admin"), generated("pass")))))
    dry = secret_contract("prune", "--dry-run", str(path), env=vault.env)
    assert dry.returncode == 0 and vault.read("app/cache") is not None
    assert f"would delete {vault.mount}/app/cache and every version of it" in dry.stderr
    assert f"would write a new version of {vault.mount}/app/db without old-key" in dry.stderr
    refused = secret_contract("prune", str(path), env=vault.env)
    assert refused.returncode == 1 and "not run from a terminal: nothing changed; add --yes" in refused.stderr
    done = secret_contract("prune", "--yes", str(path), env=vault.env)
    assert done.returncode == 0, done.stderr
    assert vault.read("app/cache") is None
    assert vault.read("app/db") == {k: v for k, v in before.items() if k != "old-key"}
    old = vault.client.secrets.kv.v2.read_secret_version(
        "app/db", version=1, mount_point=vault.mount, raise_on_deleted_version=True
    )
    assert old["data"]["data"]["old-key"] == before["old-key"]  # recoverable from the previous version
    assert_no_leak([dry.text, refused.text, done.text], list(before.values()), ("admin",))


def test_list_honours_the_contracts_own_mount_and_layout(tmp_path: Path, vault: Vault) -> None:
    other = "kv-own-" + vault.mount
    vault.client.sys.enable_secrets_engine("kv", path=other, options={"version": "2"})
    path = tmp_path / "c.yaml"
    own = contract("team/app", secret("db", "app", generated("pass")), vault={"mount": other, "layout": "stack"})
    path.write_text(yaml_codec.dump(own))
    assert secret_contract("add", str(path), env=vault.env).returncode == 0
    listed = secret_contract("list", str(path), "-o", "json", env=vault.env)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["path"], r["owners"], r["keys"]) for r in rows] == [(f"{other}/team/app/app/db", ["team/app"], ["pass"])]
    as_yaml = secret_contract("list", str(path), "-o", "yaml", env=vault.env)
    assert yaml_codec.load(as_yaml.stdout) == rows


def test_a_closed_pipe_ends_quietly(stack: Path, vault: Vault) -> None:
    secret_contract("add", str(stack), env=vault.env)
    many = contract("many", *[secret(f"s{i}", "many", generated("k", "token")) for i in range(60)])
    (stack / "many.yaml").write_text(yaml_codec.dump(many))
    secret_contract("add", str(stack / "many.yaml"), env=vault.env)
    piped = run(["bash", "-c", f"set -o pipefail; {sys.executable} -m secret_contract list | head -n 2"], env=vault.env)
    assert piped.returncode == 0 and len(piped.stdout.splitlines()) == 2
    assert "Traceback" not in piped.stderr and "BrokenPipe" not in piped.stderr


def test_bare_command_prints_help_on_a_terminal() -> None:
    import pty
    import subprocess

    leader, follower = pty.openpty()
    proc = subprocess.run(
        [sys.executable, "-m", "secret_contract"], stdin=follower, capture_output=True, text=True, timeout=30
    )
    os.close(follower)
    os.close(leader)
    assert proc.returncode == 2 and "usage: secret-contract" in proc.stderr


def test_a_missing_mount_and_a_wrong_token_say_which(stack: Path, vault: Vault) -> None:
    missing = secret_contract("add", str(stack), env={**vault.env, "SECRET_CONTRACT_VAULT_MOUNT": "nosuch"})
    assert missing.returncode == 1 and "there is no mount 'nosuch'" in missing.stderr
    wrong = secret_contract("add", str(stack), env={**vault.env, "VAULT_TOKEN": "s.wrong"})
    assert wrong.returncode == 1 and "the token was refused: it is invalid or expired" in wrong.stderr


def test_every_verb_explains_itself(tmp_path: Path) -> None:
    for verb in ("add", "plan", "verify", "rotate", "prune", "remove", "release", "migrate", "list"):
        shown = secret_contract(verb, "--help").stdout
        assert "examples:" in shown and "needs Vault: yes" in shown and "VAULT_ADDR" in shown, verb
    for verb in ("render", "check"):
        assert "needs Vault: no" in secret_contract(verb, "--help").stdout, verb


def test_release_dry_run_changes_nothing_and_release_keeps_every_value(stack: Path, vault: Vault) -> None:
    assert secret_contract("add", str(stack), env=vault.env).returncode == 0
    before = vault.snapshot()
    owners = vault.client.secrets.kv.v2.read_secret_metadata(POSTGRES, mount_point=vault.mount)["data"]
    dry = secret_contract("release", "--dry-run", str(stack), env=vault.env)
    assert dry.returncode == 0 and f"would keep {vault.mount}/{POSTGRES}, remove this contract's" in dry.stderr
    after_dry = vault.client.secrets.kv.v2.read_secret_metadata(POSTGRES, mount_point=vault.mount)["data"]
    assert after_dry["custom_metadata"] == owners["custom_metadata"]
    done = secret_contract("release", str(stack), env=vault.env)  # destroys nothing: does not ask
    assert done.returncode == 0 and f"{vault.mount}/{POSTGRES}: released" in done.stderr, done.stderr
    assert vault.snapshot() == before
    meta = vault.client.secrets.kv.v2.read_secret_metadata(POSTGRES, mount_point=vault.mount)["data"]
    assert meta["custom_metadata"]["secret-contract-released-by"] == "sample-app"
    assert_no_leak([dry.text, done.text], [vault.server.token, *vault.values()], ("postgres-credentials",))


ESC = "\x1b[2J\x1b[31m"  # clear the screen, then red: what a hostile key name would do


def test_control_characters_in_names_never_reach_the_terminal(stack: Path, vault: Vault, tmp_path: Path) -> None:
    """Names from Vault (written by hand) and from contracts are printed with control
    characters escaped; a contract may not carry them in a name at all."""
    added = secret_contract("add", str(stack), env=vault.env)
    assert added.returncode == 0, added.stderr
    vault.client.secrets.kv.v2.patch(POSTGRES, {f"note{ESC}": "x"}, mount_point=vault.mount)
    vault.client.secrets.kv.v2.create_or_update_secret("sample-app/hand", {f"k{ESC}": "v"}, mount_point=vault.mount)
    listed = secret_contract("list", env={**vault.env, "SECRET_CONTRACT_VAULT_MOUNT": vault.mount})
    pruned = secret_contract("prune", "--dry-run", str(stack), env=vault.env)
    hostile = contract("demo", secret("db", "demo", static("user", "admin")), externalSecret={
        "secretStoreRef": {"name": f"vault{ESC}", "kind": "ClusterSecretStore"}})  # fmt: skip
    hostile["metadata"]["name"] = f"demo{ESC}"
    path = tmp_path / "hostile.yaml"
    path.write_text(yaml_codec.dump(hostile))
    rendered = secret_contract("render", str(path))
    for ran in (listed, pruned, rendered):
        assert "\x1b" not in ran.text, ran.text
    assert listed.returncode == 0 and "\\x1b[2J" in listed.stdout
    assert "\\x1b[2J" in pruned.stderr
    assert rendered.returncode == 1 and "spec.externalSecret.secretStoreRef.name" in rendered.stderr
    assert "control character" in rendered.stderr and "metadata.name" in rendered.stderr
