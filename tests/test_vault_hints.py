"""How a build reaches Vault, and what it says when it is told wrongly: OpenBao's own `BAO_*`
variables (read as `bao` reads them), an https:// address of a plain-HTTP server, an address
ending in /v1, an address chosen by a project file, a misspelt mount or field. Each through the
function as an orchestrator runs it, against the session's real OpenBao (plain HTTP)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from builders import DEMO, DEMO_PATH, contract, generator_input, in_process, secret
from conftest import Ran, Vault, assert_no_leak, run
from secret_contract import project

STRICT = {"SECRET_CONTRACT_STRICT": "true"}


def build(env: dict[str, str], cwd: Path | None = None, obj: dict[str, object] = DEMO) -> Ran:
    return run([sys.executable, "-m", "secret_contract"], env=env, stdin=generator_input(obj), cwd=cwd)


def test_openbao_names_are_read_and_win_over_vault_names_as_bao_reads_them(vault: Vault) -> None:
    addr, token, mount = vault.env["VAULT_ADDR"], vault.env["VAULT_TOKEN"], vault.env["SECRET_CONTRACT_VAULT_MOUNT"]
    only_bao = build({"BAO_ADDR": addr, "BAO_TOKEN": token, "SECRET_CONTRACT_VAULT_MOUNT": mount, **STRICT})
    assert only_bao.returncode == 0, only_bao.stderr
    assert vault.read(DEMO_PATH) is not None

    # BAO_ADDR wins over a wrong VAULT_ADDR ...
    over_wrong = build({**vault.env, "VAULT_ADDR": "http://127.0.0.1:9", "BAO_ADDR": addr, **STRICT})
    assert over_wrong.returncode == 0, over_wrong.stderr
    # ... and a wrong BAO_TOKEN over a right VAULT_TOKEN: the BAO_ name is the one used.
    refused = build({**vault.env, "BAO_TOKEN": "hvs.not-a-valid-token-5678", **STRICT})
    assert refused.returncode == 1 and "the token was refused" in refused.stderr, refused.stderr
    assert_no_leak([refused.text, only_bao.text], [token, "hvs.not-a-valid-token-5678"])


def test_https_to_a_plain_http_server_suggests_http(vault: Vault) -> None:
    plain = vault.env["VAULT_ADDR"]
    ran = build({**vault.env, "VAULT_ADDR": plain.replace("http://", "https://"), **STRICT})
    assert ran.returncode == 1
    assert f"the server answers plain HTTP, not TLS: is the address {plain}?" in ran.stderr, ran.stderr


def test_an_address_ending_in_v1_is_refused_with_the_address_to_use(vault: Vault) -> None:
    addr = vault.env["VAULT_ADDR"]
    for given in (f"{addr}/v1", f"{addr}/v1/"):
        ran = build({**vault.env, "BAO_ADDR": given, **STRICT})
        assert ran.returncode == 1
        assert f"BAO_ADDR is '{given}': leave out the API prefix /v1 ({addr})" in ran.stderr, ran.stderr
    assert vault.paths() == []


def test_an_address_from_the_project_file_is_named_as_such(vault: Vault, tmp_path: Path) -> None:
    (tmp_path / "secret-contract.yaml").write_text("vaultAddr: http://127.0.0.1:9\n")
    env = {k: v for k, v in vault.env.items() if k != "VAULT_ADDR"}
    ran = build({**env, "VAULT_CLIENT_TIMEOUT": "3", **STRICT}, cwd=tmp_path)
    assert ran.returncode == 1
    assert f"http://127.0.0.1:9 (vaultAddr from {tmp_path / 'secret-contract.yaml'}): cannot connect" in ran.stderr


def test_a_misspelt_mount_names_the_nearest_kv_mount(vault: Vault) -> None:
    ran = build({**vault.env, "SECRET_CONTRACT_VAULT_MOUNT": vault.mount + "x", **STRICT})
    assert ran.returncode == 1
    assert f"there is no mount '{vault.mount}x'" in ran.stderr and f"did you mean '{vault.mount}'?" in ran.stderr


def test_a_misspelt_field_names_the_nearest_one() -> None:
    misspelt = contract("demo", secret("db", "demo", {"key": "pass", "generate": "password", "lenght": 24}))
    ran = in_process(stdin=generator_input(misspelt))
    assert ran.returncode == 1
    assert "spec.secrets[0].data[0].lenght: [error] unknown field; did you mean 'length'?" in ran.stderr, ran.stderr


def test_an_emptied_address_variable_keeps_the_project_files_address_out(vault: Vault, tmp_path: Path) -> None:
    # The project file names a server of the test's own: any connection to it would carry the token.
    with socket.socket() as trap:
        trap.bind(("127.0.0.1", 0))
        trap.listen(8)
        trap.setblocking(False)
        (tmp_path / "secret-contract.yaml").write_text(f"vaultAddr: http://127.0.0.1:{trap.getsockname()[1]}\n")
        quick = {"VAULT_CLIENT_TIMEOUT": "3", "VAULT_MAX_RETRIES": "0"}
        # An empty BAO_ADDR is unset to `bao`: VAULT_ADDR is the address.
        beside = build({**vault.env, **quick, "BAO_ADDR": "", **STRICT}, cwd=tmp_path)
        assert beside.returncode == 0, beside.stderr
        assert vault.read(DEMO_PATH) is not None
        # Emptied names, with a token given: no address at all, not the file's.
        env = {k: v for k, v in vault.env.items() if k != "VAULT_ADDR"}
        for emptied in ({"BAO_ADDR": ""}, {"VAULT_ADDR": ""}):
            build({**env, **quick, **emptied}, cwd=tmp_path)
        with pytest.raises(BlockingIOError):
            trap.accept()


def test_an_emptied_namespace_variable_keeps_the_project_files_namespace_out() -> None:
    pinned = project.Project(".", "secret-contract.yaml", env={"VAULT_NAMESPACE": "team-a"})
    assert pinned.environment({})["VAULT_NAMESPACE"] == "team-a"
    for emptied in ({"BAO_NAMESPACE": ""}, {"VAULT_NAMESPACE": ""}):
        assert "VAULT_NAMESPACE" not in pinned.environment(emptied)
    assert pinned.environment({"BAO_NAMESPACE": "", "VAULT_NAMESPACE": "team-b"})["VAULT_NAMESPACE"] == "team-b"
