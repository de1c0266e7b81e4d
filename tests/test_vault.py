"""A build as an orchestrator runs it (a separate process, stdin to stdout) against the
session's real OpenBao server. The rules themselves are in test_behaviour.py."""

from __future__ import annotations

import copy
import os
import sys
from typing import Any

from builders import DEMO, DEMO_PATH, contract, generated, generator_input, secret, static
from conftest import Ran, Vault, assert_no_leak, functions_at_once, run, secret_contract
from secret_contract import yaml_codec

PATH = DEMO_PATH
CONTRACT = DEMO


def build(vault: Vault, obj: dict[str, Any], **env: str) -> Ran:
    return secret_contract(stdin=generator_input(obj), env={**vault.env, **env})


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


def test_invalid_contract_fails_and_leaves_vault_untouched(vault: Vault) -> None:
    build(vault, CONTRACT)
    before = vault.snapshot()
    bad = contract(
        "demo", secret("db", "demo", static("user", "changed"), generated("pass"), generated("extra", "nope"))
    )
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
    ran = functions_at_once([stdin] * 8, env)
    assert [r.returncode for r in ran] == [0] * 8, [r.stderr for r in ran]
    assert len({yaml_codec.dump(yaml_codec.load(r.stdout)["items"]) for r in ran}) == 1
    for i in range(10):
        path = f"demo/s{i}"
        history = vault.metadata(path)["versions"]
        assert len(history) == 1, f"{path} has {len(history)} versions"
    assert_no_leak([r.text for r in ran], vault.values())


def test_value_changed_by_hand_in_vault_is_kept(vault: Vault) -> None:
    build(vault, CONTRACT)
    stored = vault.read(PATH)
    assert stored is not None
    vault.client.secrets.kv.v2.create_or_update_secret(
        PATH, {**stored, "pass": "rotated-by-hand"}, mount_point=vault.mount
    )
    build(vault, CONTRACT)
    assert (vault.read(PATH) or {})["pass"] == "rotated-by-hand"


def test_an_unreachable_vault_fails_the_build_unless_strictness_is_turned_off_on_purpose(vault: Vault) -> None:
    env = {"VAULT_ADDR": "http://127.0.0.1:9", "VAULT_TOKEN": "t", "VAULT_CLIENT_TIMEOUT": "3"}
    for strictness in ({}, {"SECRET_CONTRACT_STRICT": "true"}):
        failed = secret_contract(stdin=generator_input(CONTRACT), env={**env, **strictness})
        assert failed.returncode == 1 and "[error] Vault was not written" in failed.stderr
    ran = secret_contract(stdin=generator_input(CONTRACT), env={**env, "SECRET_CONTRACT_STRICT": "false"})
    assert ran.returncode == 0
    assert "Vault was not written" in ran.stderr and "http://127.0.0.1:9" in ran.stderr
    assert "SECRET_CONTRACT_STRICT=false: the ExternalSecrets were emitted anyway" in ran.stderr
    assert [i["kind"] for i in yaml_codec.load(ran.stdout)["items"]] == ["ExternalSecret"]


def test_refused_token_names_the_problem_without_echoing_it(vault: Vault) -> None:
    ran = build(vault, CONTRACT, VAULT_TOKEN="not-a-valid-token-1234", SECRET_CONTRACT_STRICT="1")
    assert ran.returncode == 1
    assert "the token was refused: it is invalid or expired" in ran.stderr
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
    assert "[info] created 60 secrets (-v lists each)" in ran.stderr
    assert ran.stderr.count("\n") == 1
