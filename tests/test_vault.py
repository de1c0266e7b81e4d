"""Writing Vault, against the session's real OpenBao server: the idempotency rules of the
spec, check-and-set under concurrency, ownership, and what happens when Vault is away."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from conftest import Vault, assert_no_leak, run, secret_contract
from secret_contract import yaml_codec
from test_krm import CONTRACT, generator_input

pytestmark = pytest.mark.vault
PATH = "demo/demo/db"


def build(vault: Vault, contract: dict[str, Any], **env: str) -> Any:
    ran = secret_contract(stdin=generator_input(contract), env={**vault.env, **env})
    return ran


def contract_with(**changes: Any) -> dict[str, Any]:
    c = copy.deepcopy(CONTRACT)
    data = c["spec"]["secrets"][0]["data"]
    for key, entry in changes.items():
        data[:] = [d for d in data if d["key"] != key]
        if entry is not None:
            data.append({"key": key, **entry})
    return c


def test_first_build_writes_values_and_records_ownership(vault: Vault) -> None:
    ran = build(vault, CONTRACT)
    assert ran.returncode == 0, ran.stderr
    stored = vault.read(PATH)
    assert stored is not None and stored["user"] == "admin" and len(stored["pass"]) == 32
    custom = vault.metadata(PATH)["custom_metadata"]
    assert custom == {"managed-by": "secret-contract", "secret-contract-owner": "demo"}
    assert "created" in ran.stderr and "pass" in ran.stderr
    assert_no_leak([ran.stdout, ran.stderr], [stored["pass"], vault.server.token])


def test_second_build_is_byte_identical_and_creates_no_version(vault: Vault) -> None:
    first = build(vault, CONTRACT)
    before = vault.snapshot()
    second = build(vault, CONTRACT)
    assert second.returncode == 0
    # The items are the build output; the first run's results also report what it created.
    assert yaml_codec.load(second.stdout)["items"] == yaml_codec.load(first.stdout)["items"]
    assert "results" not in yaml_codec.load(second.stdout)
    assert vault.snapshot() == before
    assert second.stderr == ""


def test_added_key_is_written_alone(vault: Vault) -> None:
    build(vault, CONTRACT)
    before = vault.read(PATH)
    build(vault, contract_with(api_key={"generate": "hex", "length": 40}))
    after = vault.read(PATH)
    assert after is not None and before is not None
    assert {k: after[k] for k in before} == before
    assert len(after["api_key"]) == 40
    assert vault.version(PATH) == 2


def test_changed_static_value_is_updated_and_generated_kept(vault: Vault) -> None:
    build(vault, CONTRACT)
    before = vault.read(PATH)
    ran = build(vault, contract_with(user={"value": "root"}))
    after = vault.read(PATH)
    assert ran.returncode == 0 and after is not None and before is not None
    assert after["user"] == "root" and after["pass"] == before["pass"]
    assert "updated" in ran.stderr and "root" not in ran.stderr


def test_removed_key_and_secret_are_not_deleted(vault: Vault) -> None:
    two = copy.deepcopy(CONTRACT)
    two["spec"]["secrets"].append({"name": "cache", "namespace": "demo", "data": [{"key": "k", "generate": "token"}]})
    build(vault, two)
    before = vault.snapshot()
    ran = build(vault, contract_with(pass_=None, user={"value": "admin"}))
    assert ran.returncode == 0
    assert vault.snapshot() == before


def test_invalid_contract_fails_and_leaves_vault_untouched(vault: Vault) -> None:
    build(vault, CONTRACT)
    before = vault.snapshot()
    bad = contract_with(user={"value": "changed"}, extra={"generate": "nope"})
    ran = build(vault, bad)
    assert ran.returncode == 1
    assert "spec.secrets[0].data[2].generate" in ran.stderr
    assert vault.snapshot() == before


def test_every_externalsecret_resolves_to_the_stored_value(vault: Vault) -> None:
    c = copy.deepcopy(CONTRACT)
    c["spec"]["secrets"].append(
        {
            "name": "keys",
            "namespace": "other",
            "data": [{"key": "id", "generate": "uuid"}, {"key": "f", "generate": "fernet"}],
        }
    )
    ran = build(vault, c)
    items = yaml_codec.load(ran.stdout)["items"]
    resolved = 0
    for es in items:
        for entry in es["spec"]["data"]:
            ref = entry["remoteRef"]
            stored = vault.read(ref["key"])
            assert stored is not None and entry["secretKey"] in stored
            assert stored[ref["property"]] == stored[entry["secretKey"]]
            resolved += 1
    assert resolved == 4
    assert_no_leak([ran.stdout, ran.stderr], vault.values())


def test_eight_parallel_builds_converge_on_one_value_per_key(vault: Vault) -> None:
    many = copy.deepcopy(CONTRACT)
    many["spec"]["secrets"] = [
        {
            "name": f"s{i}",
            "namespace": "demo",
            "data": [{"key": "a", "generate": "token"}, {"key": "b", "value": f"static-sentinel-{i}"}],
        }
        for i in range(10)
    ]
    stdin = generator_input(many)
    env = {**os.environ, **vault.env}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "secret_contract"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(8)
    ]
    with ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(lambda p: p.communicate(stdin, timeout=120), procs))
    assert [p.returncode for p in procs] == [0] * 8, [err for _, err in outs]
    assert len({yaml_codec.dump(yaml_codec.load(out)["items"]) for out, _ in outs}) == 1
    for i in range(10):
        path = f"demo/demo/s{i}"
        history = vault.metadata(path)["versions"]
        assert len(history) == 1, f"{path} has {len(history)} versions"
    assert_no_leak([o + e for o, e in outs], vault.values())


def test_secret_owned_by_another_contract_is_refused_before_any_write(vault: Vault) -> None:
    vault.client.secrets.kv.v2.create_or_update_secret("demo/db", {"x": "1"}, mount_point=vault.mount)
    vault.client.adapter.request(
        "PATCH",
        f"/v1/{vault.mount}/metadata/demo/db",
        json={"custom_metadata": {"managed-by": "secret-contract", "secret-contract-owner": "someone-else"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    clash = copy.deepcopy(CONTRACT)
    clash["spec"]["vault"] = {"layout": "namespace"}  # the older {namespace}/{name} layout: paths can collide
    clash["spec"]["secrets"].insert(0, {"name": "first", "namespace": "x", "data": [{"key": "k", "value": "v"}]})
    before = vault.snapshot()
    ran = build(vault, clash)
    assert ran.returncode == 1
    assert f"refusing to write {vault.mount}/demo/db: it belongs to contract 'someone-else'" in ran.stderr
    assert vault.snapshot() == before  # x/first, which was free, was not written either


def test_secret_deleted_by_hand_is_recreated_with_a_warning(vault: Vault) -> None:
    build(vault, CONTRACT)
    vault.client.secrets.kv.v2.delete_latest_version_of_secret(PATH, mount_point=vault.mount)
    ran = build(vault, CONTRACT)
    assert ran.returncode == 0
    assert "recreated" in ran.stderr and "[warning]" in ran.stderr
    stored = vault.read(PATH)
    assert stored is not None and stored["user"] == "admin" and vault.version(PATH) == 2


def test_value_changed_by_hand_in_vault_is_kept(vault: Vault) -> None:
    build(vault, CONTRACT)
    stored = vault.read(PATH)
    assert stored is not None
    vault.client.secrets.kv.v2.create_or_update_secret(
        PATH, {**stored, "pass": "rotated-by-hand"}, mount_point=vault.mount
    )
    build(vault, CONTRACT)
    assert (vault.read(PATH) or {})["pass"] == "rotated-by-hand"


def test_unreachable_vault_warns_by_default_and_fails_when_strict(vault: Vault) -> None:
    env = {"VAULT_ADDR": "http://127.0.0.1:9", "VAULT_TOKEN": "t", "VAULT_CLIENT_TIMEOUT": "3"}
    ran = secret_contract(stdin=generator_input(CONTRACT), env=env)
    assert ran.returncode == 0
    assert "Vault was not written" in ran.stderr and "http://127.0.0.1:9" in ran.stderr
    assert [i["kind"] for i in yaml_codec.load(ran.stdout)["items"]] == ["ExternalSecret"]
    strict = secret_contract(stdin=generator_input(CONTRACT), env={**env, "SECRET_CONTRACT_STRICT": "true"})
    assert strict.returncode == 1 and "[error] Vault was not written" in strict.stderr


def test_refused_token_names_the_problem_without_echoing_it(vault: Vault) -> None:
    ran = build(vault, CONTRACT, VAULT_TOKEN="not-a-valid-token-1234", SECRET_CONTRACT_STRICT="1")
    assert ran.returncode == 1
    assert "permission denied" in ran.stderr or "rejected" in ran.stderr
    assert "not-a-valid-token-1234" not in ran.text


def test_kv_version_1_mount_is_refused(vault: Vault) -> None:
    vault.client.sys.enable_secrets_engine("kv", path=vault.mount + "-v1", options={"version": "1"})
    ran = build(vault, CONTRACT, SECRET_CONTRACT_VAULT_MOUNT=vault.mount + "-v1", SECRET_CONTRACT_STRICT="true")
    assert ran.returncode == 1 and "KV version 1" in ran.stderr


def test_token_is_read_from_the_token_file(vault: Vault, tmp_path: Any) -> None:
    home = tmp_path / "tokenhome"
    home.mkdir()
    (home / ".vault-token").write_text(vault.server.token + "\n")
    env = {"VAULT_ADDR": vault.env["VAULT_ADDR"], "SECRET_CONTRACT_VAULT_MOUNT": vault.mount, "HOME": str(home)}
    ran = run([sys.executable, "-m", "secret_contract"], env=env, stdin=generator_input(CONTRACT))
    assert ran.returncode == 0 and vault.read(PATH) is not None


def test_large_builds_summarize_instead_of_a_line_per_secret(vault: Vault) -> None:
    many = copy.deepcopy(CONTRACT)
    many["spec"]["secrets"] = [
        {"name": f"s{i}", "namespace": "demo", "data": [{"key": "k", "generate": "token"}]} for i in range(60)
    ]
    ran = build(vault, many)
    assert ran.returncode == 0
    assert "[info] created 60 secrets" in ran.stderr
    assert ran.stderr.count("\n") == 1
