"""Faults, races and hostile input against the real OpenBao server: no value is lost,
corrupted or leaked, and every failure says what went wrong."""

from __future__ import annotations

import contextlib
import copy
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import hvac
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builders import DEMO, DEMO_PATH, contract, generated, generator_input, in_process, secret, static
from conftest import Vault, assert_no_leak, functions_at_once, secret_contract
from faults import DROP, fault_proxy
from openbao_server import OpenBao
from secret_contract import krm, pipeline, store, yaml_codec
from secret_contract.errors import InvalidResourceList

CONTRACT = DEMO


def run_in_process(obj: dict[str, Any], env: dict[str, str]) -> pipeline.Outcome:
    return pipeline.build(krm.parse(generator_input(obj)), env)


def versions(vault: Vault, prefix: str) -> dict[str, int]:
    return {p: len(vault.metadata(p)["versions"]) for p in vault.paths(prefix)}


# --- races ---------------------------------------------------------------------------


def test_sixteen_builds_of_a_fresh_contract_twenty_times(vault: Vault) -> None:
    """16 builds race on a fresh contract, 20 rounds: one value per key, identical output."""
    for round_ in range(20):
        obj = contract(f"race-{round_}", count=5, namespace=f"race-{round_}")
        with ThreadPoolExecutor(16) as pool:
            outcomes = list(pool.map(run_in_process, [obj] * 16, [vault.env] * 16))
        assert all(not o.failed for o in outcomes), [
            r.message for o in outcomes for r in o.findings if r.severity == "error"
        ]
        assert len({yaml_codec.dump(o.output.items) for o in outcomes}) == 1
        assert set(versions(vault, f"race-{round_}/").values()) == {1}, f"round {round_}"


def test_neighbouring_contracts_race_without_touching_each_other(vault: Vault) -> None:
    # `foundation` (namespace airflow) and `foundation/airflow` share the folder foundation/airflow/.
    parent = contract("foundation", count=5, namespace="airflow")
    child = contract("foundation/airflow", count=5)
    env = {**vault.env, "SECRET_CONTRACT_PATH_LAYOUT": "stack"}
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(lambda i: run_in_process(parent if i % 2 else child, env), range(16)))
    assert all(not o.failed for o in outcomes)
    counts = versions(vault, "foundation/")
    assert len(counts) == 10 and set(counts.values()) == {1}
    owners = {p: vault.metadata(p)["custom_metadata"]["secret-contract-owner"] for p in counts}
    assert owners == {
        **{f"foundation/airflow/s{i}": "foundation" for i in range(5)},
        **{f"foundation/airflow/ns/s{i}": "foundation/airflow" for i in range(5)},
    }


def test_incompatible_contracts_racing_from_two_processes_never_both_succeed(vault: Vault) -> None:
    """Two contracts claim one Vault path with different static values, from separate
    processes, twenty times. Every write is held back 0.3 s by a proxy, so both processes
    have read the empty path before either writes: the check-and-set decides. Exactly one
    wins, and the recorded owner is always the contract whose values are stored."""
    with fault_proxy(vault.server.addr, lambda _n, m, p: 0.3 if m == "POST" and "/data/" in p else None) as proxy:
        env = {**os.environ, **vault.env, "VAULT_ADDR": proxy.addr, "SECRET_CONTRACT_STRICT": "true"}
        for round_ in range(20):
            namespace = f"race-{round_}"
            rivals = {
                stack: contract(stack, secret("db", namespace, static("user", stack), generated("pass")))
                for stack in ("alpha", "beta")
            }
            ran = dict(zip(rivals, functions_at_once([generator_input(c) for c in rivals.values()], env), strict=True))
            winners = [stack for stack, done in ran.items() if done.returncode == 0]
            assert len(winners) == 1, (round_, {s: done.stderr[-300:] for s, done in ran.items()})
            loser = next(s for s in ran if s not in winners)
            assert "refusing to write" in ran[loser].stderr or "another writer" in ran[loser].stderr
            path = f"{namespace}/db"
            assert (vault.read(path) or {})["user"] == winners[0]
            custom = vault.metadata(path)["custom_metadata"]
            assert custom["secret-contract-owner"] == winners[0]
            assert [
                v.split(" ", 1)[1] for k, v in custom.items() if k.startswith("secret-contract-declared-by.")
            ] == winners
            assert len(vault.metadata(path)["versions"]) == 1


# --- Vault going away ------------------------------------------------------------------


def test_vault_lost_mid_run_then_back_completes_without_changing_written_keys(tmp_path: Path, vault: Vault) -> None:
    obj = contract("midrun", count=60, namespace="midrun")
    state = {"up": True}
    cut_after = 80  # requests: the mount check, 60 reads, then part of the writes

    def rule(n: int, _m: str, _p: str) -> int | None:
        return DROP if (not state["up"] or n > cut_after) and state.setdefault("cut", True) else None

    with fault_proxy(vault.server.addr, rule) as proxy:
        env = {**vault.env, "VAULT_ADDR": proxy.addr, "SECRET_CONTRACT_STRICT": "1", "VAULT_MAX_RETRIES": "1"}
        first = secret_contract(stdin=generator_input(obj), env=env)
        assert first.returncode == 1 and f"{proxy.addr}: cannot connect to Vault" in first.stderr
        written = {p: vault.read(p) for p in vault.paths("midrun/")}
        assert 0 < len(written) < 60
        # The report counts exactly what Vault holds, and names the rest.
        assert f"Vault was partly written: {len(written)} of 60 secrets were written" in first.stderr
        missing = sorted(f"{vault.mount}/midrun/s{i}" for i in range(60) if f"midrun/s{i}" not in written)
        assert missing[0] in first.stderr.split("Not written:")[1]
        proxy.rule = lambda *_: None  # Vault is back
        second = secret_contract(stdin=generator_input(obj), env=env)
        # Secrets cut off between their data and their ownership record are not taken over by a
        # build: the first report named them and the command that adopts them.
        unrecorded = [p for p in written if not (vault.metadata(p).get("custom_metadata") or {})]
        if unrecorded:
            assert "secret-contract migrate midrun" in first.stderr and f"{vault.mount}/{unrecorded[0]}" in first.stderr
            assert second.returncode == 1 and "a build never takes over" in second.stderr
            (tmp_path / "hostk8s.secrets.yaml").write_text(yaml_codec.dump_all([obj]))
            migrated = secret_contract("migrate", str(tmp_path), env=env)
            assert migrated.returncode == 0, migrated.stderr
            second = secret_contract(stdin=generator_input(obj), env=env)
        assert second.returncode == 0, second.stderr
    assert len(vault.paths("midrun/")) == 60
    assert {p: vault.read(p) for p in written} == written
    assert set(versions(vault, "midrun/").values()) == {1}


def test_a_version_written_between_the_data_and_the_metadata_read_is_read_again(vault: Vault) -> None:
    """Another build creates the secret just after this one's data read found nothing and
    before its metadata read: that is a live secret, not a deleted history."""
    assert secret_contract(stdin=generator_input(CONTRACT), env=vault.env).returncode == 0
    first_data_read = {"done": False}

    def rule(_n: int, method: str, path: str) -> int | None:
        if method == "GET" and f"/{vault.mount}/data/{DEMO_PATH}" in path and not first_data_read["done"]:
            first_data_read["done"] = True
            return 404  # as Vault answered before the other build's write landed
        return None

    with fault_proxy(vault.server.addr, rule) as proxy:
        env = {**vault.env, "VAULT_ADDR": proxy.addr, "SECRET_CONTRACT_STRICT": "1"}
        again = secret_contract(stdin=generator_input(CONTRACT), env=env)
    assert again.returncode == 0, again.stderr
    assert first_data_read["done"] and vault.version(DEMO_PATH) == 1


def test_connection_reset_on_every_request_names_the_address(vault: Vault) -> None:
    with fault_proxy(vault.server.addr, lambda *_: DROP) as proxy:
        # A Vault is configured and could not be written: the build fails, strict or not.
        ran = secret_contract(stdin=generator_input(CONTRACT), env={**vault.env, "VAULT_ADDR": proxy.addr})
        assert ran.returncode == 1
        assert f"[error] Vault was not written: {proxy.addr}: cannot connect to Vault" in ran.stderr
        assert len(proxy.seen) == 3  # one request, retried VAULT_MAX_RETRIES (2) times
        # Only strictness turned off on purpose renders anyway, and says so.
        lenient = {**vault.env, "VAULT_ADDR": proxy.addr, "SECRET_CONTRACT_STRICT": "false"}
        ran = secret_contract(stdin=generator_input(CONTRACT), env=lenient)
        assert ran.returncode == 0 and "[warning] Vault was not written" in ran.stderr
        assert "SECRET_CONTRACT_STRICT=false: the ExternalSecrets were emitted anyway" in ran.stderr
    assert vault.paths() == []


def test_slow_answers_within_the_timeout_are_waited_for(vault: Vault) -> None:
    with fault_proxy(vault.server.addr, lambda n, *_: 0.5 if n <= 3 else None) as proxy:
        env = {**vault.env, "VAULT_ADDR": proxy.addr, "VAULT_CLIENT_TIMEOUT": "3", "SECRET_CONTRACT_STRICT": "1"}
        ran = secret_contract(stdin=generator_input(CONTRACT), env=env)
    assert ran.returncode == 0 and vault.read(DEMO_PATH) is not None


def test_sealed_vault(sealable_openbao: tuple[OpenBao, Path]) -> None:
    server, log = sealable_openbao
    env = {"VAULT_ADDR": server.addr, "VAULT_TOKEN": server.token}
    found = None
    for _ in range(100):  # the banner with the unseal key is printed just after start
        found = re.search(r"Unseal Key: (\S+)", log.read_text())
        if found:
            break
        time.sleep(0.1)
    assert found, "OpenBao printed no unseal key"
    unseal_key = found.group(1)
    server.client().sys.seal()
    lenient = {**env, "SECRET_CONTRACT_STRICT": "false"}
    warned = secret_contract(stdin=generator_input(CONTRACT), env=lenient)
    assert warned.returncode == 0 and "Vault is sealed" in warned.stderr
    failed = secret_contract(stdin=generator_input(CONTRACT), env=env)  # a configured Vault: strict or not
    assert failed.returncode == 1 and f"[error] Vault was not written: {server.addr}: Vault is sealed" in failed.stderr
    hvac.Client(url=server.addr).sys.submit_unseal_key(unseal_key)
    assert secret_contract(stdin=generator_input(CONTRACT), env=env).returncode == 0
    assert (
        server.client().secrets.kv.v2.read_secret_version(
            DEMO_PATH, mount_point="secret", raise_on_deleted_version=True
        )["data"]["data"]["user"]
        == "admin"
    )


# --- permissions -------------------------------------------------------------------------


def limited_token(vault: Vault, rules: str) -> str:
    name = "limited-" + str(time.monotonic_ns())
    vault.client.sys.create_or_update_policy(name, rules)
    return vault.client.auth.token.create(policies=[name], ttl="10m")["auth"]["client_token"]


def test_read_only_token_names_path_and_capability_and_writes_nothing(vault: Vault) -> None:
    token = limited_token(vault, f'path "{vault.mount}/*" {{ capabilities = ["read", "list"] }}')
    ran = secret_contract(
        stdin=generator_input(CONTRACT), env={**vault.env, "VAULT_TOKEN": token, "SECRET_CONTRACT_STRICT": "1"}
    )
    assert ran.returncode == 1
    assert f"the token may not create {vault.mount}/data/demo/db: its policy needs 'create' there" in ran.stderr
    assert vault.paths() == []


def test_token_allowed_some_paths_only_writes_none_of_them(vault: Vault) -> None:
    two = copy.deepcopy(CONTRACT)
    two["spec"]["secrets"].append({"name": "cache", "namespace": "demo", "data": [{"key": "k", "generate": "token"}]})
    token = limited_token(
        vault,
        f'path "{vault.mount}/data/demo/db" {{ capabilities = ["create", "read", "update"] }}\n'
        f'path "{vault.mount}/metadata/demo/db" {{ capabilities = ["patch", "read"] }}\n'
        f'path "{vault.mount}/data/demo/cache" {{ capabilities = ["read"] }}\n'
        f'path "{vault.mount}/metadata/demo/cache" {{ capabilities = ["read"] }}\n',
    )
    ran = secret_contract(
        stdin=generator_input(two), env={**vault.env, "VAULT_TOKEN": token, "SECRET_CONTRACT_STRICT": "1"}
    )
    assert ran.returncode == 1
    assert f"may not create {vault.mount}/data/demo/cache" in ran.stderr
    assert f"may not patch {vault.mount}/metadata/demo/cache" in ran.stderr
    assert vault.paths() == []  # demo/db was allowed, but nothing was half-written


# --- tampering ---------------------------------------------------------------------------


def test_metadata_only_entry_is_filled(vault: Vault) -> None:
    vault.client.secrets.kv.v2.update_metadata(DEMO_PATH, max_versions=5, mount_point=vault.mount)
    ran = secret_contract(stdin=generator_input(CONTRACT), env=vault.env)
    assert ran.returncode == 0, ran.stderr
    assert (vault.read(DEMO_PATH) or {}).get("user") == "admin"
    assert vault.metadata(DEMO_PATH)["max_versions"] == 5


# --- hostile and broken input --------------------------------------------------------------

junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=12,
)
names = st.one_of(
    st.sampled_from(["app", "a/b", "..", "a/../b", "/abs", "%2e%2e", "A", "x" * 70, "ok-name"]), st.text(max_size=10)
)
entries = st.fixed_dictionaries(
    {"key": st.one_of(names, junk)},
    optional={
        "value": st.one_of(st.text(max_size=10), junk),
        "generate": st.one_of(st.sampled_from(["password", "token", "hex", "uuid", "fernet", "nope"]), junk),
        "length": st.one_of(st.integers(-5, 5000), junk),
    },
)
secrets_ = st.fixed_dictionaries(
    {
        "name": st.one_of(names, junk),
        "namespace": st.one_of(names, junk),
        "data": st.one_of(st.lists(entries, max_size=3), junk),
    }
)
contracts = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from(["hostk8s.io/v1", "hostk8s.io/v2"]),
        "kind": st.just("SecretContract"),
        "metadata": st.one_of(st.fixed_dictionaries({"name": st.one_of(names, junk)}), junk),
        "spec": st.one_of(st.fixed_dictionaries({"secrets": st.one_of(st.lists(secrets_, max_size=3), junk)}), junk),
    }
)


@settings(max_examples=150, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(contracts)
def test_any_contract_is_accepted_or_reported_and_never_written_when_invalid(vault: Vault, obj: dict[str, Any]) -> None:
    before = set(vault.paths())
    rl = krm.ResourceList([copy.deepcopy(obj)], function_config=copy.deepcopy(obj))
    outcome = pipeline.build(rl, {**vault.env, "SECRET_CONTRACT_STRICT": "1"})
    contract_errors = [r for r in outcome.findings if r.severity == "error" and r.rule != "vault"]
    if contract_errors:
        assert set(vault.paths()) == before
        assert all(r.resource is not None and r.resource.kind == "SecretContract" for r in contract_errors)
    text = krm.emit(outcome.output, outcome.findings)  # always serializable
    assert yaml_codec.load(text)["kind"] == "ResourceList"


@settings(max_examples=300, deadline=2000)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_any_stdin_text_is_a_resource_list_or_a_clear_error(text: str) -> None:
    with contextlib.suppress(InvalidResourceList):
        krm.parse(text)


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        (b"", "stdin is empty"),
        (b"\xff\xfe\x00", "stdin is not UTF-8"),
        (b'{"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList"}', None),
        (b"apiVersion: v1\nkind: ResourceList\nitems: {}\n", "ResourceList.items must be a list"),
        (b"kind: ResourceList\nitems:\n- just a string\n", "is not a KRM object"),
        (b"kind: ResourceList\nitems: []\n---\nkind: ResourceList\n", "expected a single document"),
        (b"kind: ResourceList\nkind: ResourceList\n", "duplicate key"),
    ],
)
def test_broken_resource_lists(stdin: bytes, message: str | None) -> None:
    ran = in_process(stdin=stdin)
    assert ran.output()["kind"] == "ResourceList"
    if message is None:
        assert ran.returncode == 0  # JSON is YAML: an empty JSON ResourceList is fine
    else:
        assert ran.returncode == 1 and message in ran.stderr


YAML_CASES = {
    "yes-is-a-string": ("value: yes", 0, None),
    "octal-looking-number": ("value: 0755", 1, "must be a string, but YAML read a number: quote it"),
    "exponent-number": ("value: 1e3", 1, "must be a string, but YAML read a number: quote it"),
    "boolean": ("value: true", 1, "must be a string, but YAML read a boolean: quote it"),
    "null": ("value:", 1, "must be a string, but YAML read null: quote it"),
}


@pytest.mark.parametrize("case", sorted(YAML_CASES))
def test_yaml_1_1_surprises(case: str, tmp_path: Path) -> None:
    line, rc, message = YAML_CASES[case]
    path = tmp_path / "c.yaml"
    path.write_text(
        "apiVersion: hostk8s.io/v1\nkind: SecretContract\nmetadata: {name: app}\nspec:\n  secrets:\n"
        f"  - name: s\n    namespace: ns\n    data:\n    - key: k\n      {line}\n"
    )
    ran = in_process("render", str(path))
    assert ran.returncode == rc, ran.stderr
    if message:
        assert f"spec.secrets[0].data[0].value: [error] {message}" in ran.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [\n", "invalid YAML: did not find expected node content at line 2"),
        ("a: 1\na: 2\n", "duplicate key 'a'"),
        ("a: *x\n", "found undefined alias x"),
        ("a: &x [*x]\n", "an alias refers to a node that contains it"),
    ],
)
def test_malformed_files_name_file_and_position(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    ran = in_process("render", str(path))
    assert ran.returncode == 1 and str(path) in ran.stderr and message in ran.stderr


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    start = time.monotonic()
    ran = in_process("render", str(path))
    assert ran.returncode == 1 and "aliases expand the document past" in ran.stderr
    assert time.monotonic() - start < 20


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("value: caf\xe9\n".encode("latin-1"))
    ran = in_process("render", str(path))
    assert ran.returncode == 1 and f"{path}: not UTF-8 text" in ran.stderr


def test_several_contracts_in_one_file(vault: Vault, tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(
        yaml_codec.dump_all([contract("one", count=1, namespace="one"), contract("two", count=1, namespace="two")])
    )
    ran = secret_contract("add", str(path), env=vault.env)
    assert ran.returncode == 0 and sorted(vault.paths()) == ["one/s0", "two/s0"]


def test_ten_thousand_keys_in_one_secret(vault: Vault) -> None:
    big = contract("wide", count=1)
    big["spec"]["secrets"][0]["data"] = [{"key": f"k{i}", "generate": "token", "length": 8} for i in range(10_000)]
    ran = secret_contract(stdin=generator_input(big), env={**vault.env, "SECRET_CONTRACT_STRICT": "1"})
    # The contract is valid; OpenBao's listener refuses JSON bodies with that many strings
    # (its max_request_json_strings). The build says so, naming the path, and writes nothing.
    assert ran.returncode == 1
    assert f"cannot write {vault.mount}/ns/s0 (HTTP 400): refused JSON input due to high complexity" in ran.stderr
    assert vault.paths() == []
    assert yaml_codec.load(ran.stdout)["items"][0]["spec"]["data"][9_999]["secretKey"] == "k9999"


# --- leaks -------------------------------------------------------------------------------


def test_nothing_printed_anywhere_holds_a_value_or_the_token(vault: Vault, tmp_path: Path) -> None:
    """Every verb and failure path; everything captured is searched for every value in Vault."""
    obj = contract("leaks", count=3)
    path = tmp_path / "leaks.yaml"
    path.write_text(yaml_codec.dump(obj))
    captured: list[str] = []

    def keep(ran: Any, code: int) -> None:
        captured.extend([ran.stdout, ran.stderr])
        # Only the codes in the message: a failure must not print what it searches for.
        assert ran.returncode == code, f"exit {ran.returncode}, expected {code} (run {len(captured) // 2})"

    env = vault.env
    keep(secret_contract(stdin=generator_input(obj), env=env), 0)
    keep(secret_contract(stdin=generator_input(obj), env=env), 0)
    keep(secret_contract("add", str(path), env=env), 0)
    keep(secret_contract("render", str(path), env=env), 0)
    keep(secret_contract("verify", str(path), env=env), 0)
    keep(secret_contract("list", env=env), 0)
    keep(secret_contract("list", str(path), "-o", "json", env=env), 0)
    keep(secret_contract("plan", str(path), env=env), 0)
    keep(secret_contract("remove", "--dry-run", str(path), env=env), 0)
    keep(secret_contract("prune", "--dry-run", str(path), env=env), 0)
    keep(secret_contract("migrate", "--dry-run", str(path), env=env), 0)
    keep(secret_contract("rotate", "--dry-run", str(path), env=env), 0)
    before_rotation = vault.values()
    keep(secret_contract("rotate", str(path), "--secret", "s1", env=env), 0)
    stored = vault.read("ns/s0")
    assert stored is not None
    tampered = {**stored, "user": "changed-by-hand-sentinel"}
    vault.client.secrets.kv.v2.create_or_update_secret("ns/s0", tampered, mount_point=vault.mount)
    keep(secret_contract("verify", str(path), env=env), 1)  # a differing static value
    bad = copy.deepcopy(obj)
    bad["spec"]["secrets"][0]["data"][0]["value"] = 123456789
    keep(secret_contract(stdin=generator_input(bad), env=env), 1)  # invalid contract
    keep(
        secret_contract(
            stdin=generator_input(obj),
            env={**env, "VAULT_TOKEN": "wrong-token-sentinel", "SECRET_CONTRACT_STRICT": "1"},
        ),
        1,
    )
    keep(secret_contract(stdin=generator_input(obj), env={**env, "VAULT_ADDR": "http://127.0.0.1:9"}), 1)
    # The process's command line holds no value either (values only travel on stdin and in Vault).
    proc = subprocess.Popen(
        [sys.executable, "-m", "secret_contract"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
    )
    cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode(errors="replace")
    out, err = proc.communicate(generator_input(obj).encode())
    captured.extend([cmdline, out.decode(), err.decode()])
    assert proc.returncode == 0, f"exit {proc.returncode}, expected 0 (the process whose command line was read)"
    values = [*before_rotation, *vault.values(), vault.server.token, "wrong-token-sentinel", "changed-by-hand-sentinel"]
    values.append("123456789")
    assert_no_leak(captured, values)


def test_vault_calls_in_parallel_keep_their_order_and_start_nothing_after_a_failure() -> None:
    """A failed read or write stops the phase: no further request is sent for it, and the error
    of the earliest item that failed is the one reported, whatever the threads' timing."""
    assert store.parallel(lambda i: i * 2, range(500), workers=8) == [i * 2 for i in range(500)]
    started: list[int] = []

    def call(i: int) -> int:
        started.append(i)
        if i in (7, 30):
            raise (ValueError if i == 7 else KeyError)(i)
        time.sleep(0.001)
        return i

    with pytest.raises(ValueError):
        store.parallel(call, range(1000), workers=4)
    assert len(started) < 100
