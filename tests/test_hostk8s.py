"""A platform repository laid out like HostK8s (kustomize-examples/hostk8s): five stacks that
redeclare component Secrets, a stack without secrets, and a Vault filled the way the older
manage-secrets.py filled it. Against the real OpenBao: every order of adding stacks, stacks
added at once, migration without a credential rotated, the ExternalSecrets the stacks used
to hand-write, and stack names as arguments."""

from __future__ import annotations

import secrets
import shutil
import string
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from builders import in_process
from conftest import EXAMPLES, Ran, Vault, assert_no_leak, run
from kube_schema import ESO_RELEASES, eso_problems
from secret_contract import yaml_codec

STACKS = ("foundation/postgres", "foundation/redis", "foundation/airflow", "foundation/elastic", "sample-app")
SHARED = ("postgres/pgadmin4-credentials", "redis/redis-commander-credentials")


@pytest.fixture
def platform(tmp_path: Path) -> Path:
    root = tmp_path / "platform"
    shutil.copytree(EXAMPLES / "hostk8s", root)
    return root


def sc(platform: Path, *args: str, env: dict[str, str]) -> Ran:
    """secret-contract run from the repository's root, as its Makefile runs it."""
    return run([sys.executable, "-m", "secret_contract", *args], env=env, cwd=platform)


def contract(platform: Path, stack: str) -> dict[str, Any]:
    return yaml_codec.load((platform / "software/stacks" / stack / "hostk8s.secrets.yaml").read_text())


def fill_as_the_older_script(platform: Path, vault: Vault, order: tuple[str, ...] = STACKS) -> None:
    """What manage-secrets.py did for each stack, in order: write `secret/{namespace}/{name}`
    unless it exists, with no metadata; its `fernet` values were 32 letters and digits."""
    kv = vault.client.secrets.kv.v2
    for stack in order:
        for item in contract(platform, stack)["spec"]["secrets"]:
            path = f"{item['namespace']}/{item['name']}"
            if vault.read(path) is not None:
                continue
            values = {}
            for entry in item["data"]:
                if "value" in entry:
                    values[entry["key"]] = entry["value"]
                else:
                    chars = string.ascii_letters + string.digits
                    if entry["generate"] == "password":
                        chars += "!@#$%^&*"
                    values[entry["key"]] = "".join(secrets.choice(chars) for _ in range(entry.get("length", 32)))
            kv.create_or_update_secret(path, values, mount_point=vault.mount)


def externalsecrets(ran: Ran) -> dict[str, dict[str, Any]]:
    assert ran.returncode == 0, ran.stderr
    return {f"{d['metadata']['namespace']}/{d['metadata']['name']}": d for d in yaml_codec.load_all(ran.stdout)}


def test_every_order_of_adding_stacks_gives_one_value_and_identical_externalsecrets(
    platform: Path, openbao: Any
) -> None:
    orders = [
        STACKS,
        STACKS[::-1],
        ("sample-app", "foundation/airflow", "foundation/elastic", "foundation/redis", "foundation/postgres"),
    ]
    results = []
    for order in orders:
        mount = "kv-" + secrets.token_hex(4)
        openbao.client().sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
        env = {"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": openbao.token, "SECRET_CONTRACT_VAULT_MOUNT": mount}
        outputs = {stack: externalsecrets(sc(platform, "add", stack, env=env)) for stack in order}
        for path in SHARED:
            built = [out[path] for out in outputs.values() if path in out]
            assert len(built) >= 2 and all(es == built[0] for es in built), path
        kv = openbao.client().secrets.kv.v2
        for path in SHARED:
            meta = kv.read_secret_metadata(path, mount_point=mount)["data"]
            assert len(meta["versions"]) == 1
            declared = {
                v.split(" ", 1)[1]
                for k, v in meta["custom_metadata"].items()
                if k.startswith("secret-contract-declared-by.")
            }
            assert declared == {s for s in order if path in outputs[s]}
        results.append(yaml_codec.dump({s: outputs[s] for s in sorted(outputs)}).replace(mount, "MOUNT"))
    # The ExternalSecrets do not depend on the order either (each order wrote its own mount).
    assert all(r == results[0] for r in results[1:])


def test_stacks_added_at_once_agree(platform: Path, vault: Vault) -> None:
    with ThreadPoolExecutor(2) as pool:
        ran = list(pool.map(lambda s: sc(platform, "add", s, env=vault.env), ("foundation/postgres", "sample-app")))
    assert [r.returncode for r in ran] == [0, 0], [r.stderr for r in ran]
    assert len(vault.metadata("postgres/pgadmin4-credentials")["versions"]) == 1


def test_a_shared_secret_declared_differently_fails_naming_both_before_writing(platform: Path, vault: Vault) -> None:
    path = platform / "software/stacks/sample-app/hostk8s.secrets.yaml"
    path.write_text(path.read_text().replace("length: 12\n", "length: 16\n", 1))  # redis-commander's password
    ran = sc(platform, "add", "foundation/redis", "sample-app", env=vault.env)
    assert ran.returncode == 1 and vault.paths() == []
    assert "also declared by contract 'foundation/redis'" in ran.stderr and ".length" in ran.stderr
    assert sc(platform, "add", "foundation/redis", env=vault.env).returncode == 0
    alone = sc(platform, "add", "sample-app", env=vault.env)
    assert alone.returncode == 1 and "contract 'foundation/redis' declares it differently" in alone.stderr


def test_migration_from_the_older_script_rotates_nothing(platform: Path, vault: Vault) -> None:
    fill_as_the_older_script(platform, vault)
    before = vault.snapshot()
    # A build never takes over what the older script wrote: it stops, naming the command.
    refused = sc(platform, "add", STACKS[0], env=vault.env)
    assert refused.returncode == 1 and "secret-contract migrate" in refused.stderr and vault.snapshot() == before
    migrated = sc(platform, "migrate", *STACKS, env=vault.env)
    assert migrated.returncode == 0, migrated.stderr
    assert "adopted" in migrated.stderr
    added = [sc(platform, "add", stack, env=vault.env) for stack in STACKS]
    assert all(r.returncode == 0 for r in added), [r.stderr for r in added]
    after = vault.snapshot()
    assert {p: data for p, (_, data) in after.items()} == {p: data for p, (_, data) in before.items()}
    assert all(version == 1 for version, _ in after.values())
    # The older script's fernet key is kept; verify says it is not a valid Fernet key.
    verified = sc(platform, "verify", "foundation/airflow", env=vault.env)
    assert (
        verified.returncode == 1 and "key 'fernet-key' is not a value the 'fernet' generator makes" in verified.stderr
    )
    statics = {
        e["value"] for s in STACKS for i in contract(platform, s)["spec"]["secrets"] for e in i["data"] if "value" in e
    }
    assert_no_leak(
        [r.text for r in [refused, migrated, *added, verified]], [v for v in vault.values() if v not in statics]
    )


def test_moving_to_the_stack_layout_goes_through_migrate(platform: Path, vault: Vault) -> None:
    fill_as_the_older_script(platform, vault)
    legacy = {p: data for p, (_, data) in vault.snapshot().items()}
    env = {**vault.env, "SECRET_CONTRACT_PATH_LAYOUT": "stack"}
    refused = sc(platform, "add", "foundation/elastic", env=env)
    assert refused.returncode == 1 and "secret-contract migrate foundation/elastic" in refused.stderr
    assert f"already exist at {vault.mount}/elastic/elasticsearch-credentials" in refused.stderr
    dry = sc(platform, "migrate", "foundation/elastic", "--dry-run", env=env)
    assert (
        dry.returncode == 0
        and "would copy" in dry.stderr
        and vault.read("foundation/elastic/elastic/elasticsearch-credentials") is None
    )
    moved = sc(platform, "migrate", "foundation/elastic", env=env)
    assert moved.returncode == 0, moved.stderr
    assert (
        vault.read("foundation/elastic/elastic/elasticsearch-credentials")
        == legacy["elastic/elasticsearch-credentials"]
    )
    assert vault.read("elastic/elasticsearch-credentials") == legacy["elastic/elasticsearch-credentials"]  # kept
    assert vault.metadata("elastic/elasticsearch-credentials")["custom_metadata"]["secret-contract-migrated-to"]
    assert sc(platform, "add", "foundation/elastic", env=env).returncode == 0


def test_the_externalsecrets_the_stacks_used_to_hand_write_are_generated_and_valid(
    platform: Path, vault: Vault
) -> None:
    airflow = externalsecrets(sc(platform, "add", "foundation/airflow", env=vault.env))
    elastic = externalsecrets(sc(platform, "add", "foundation/elastic", env=vault.env))
    metadata = airflow["airflow/airflow-metadata"]["spec"]
    assert set(metadata["target"]["template"]["data"]) == {"connection"}
    assert {d["remoteRef"]["key"] for d in metadata["data"]} == {"airflow/airflow-db-credentials"}
    eck = elastic["elastic/elasticsearch-es-elastic-user-vault"]["spec"]
    assert eck["target"]["name"] == "elasticsearch-es-elastic-user"
    assert eck["target"]["template"]["metadata"]["labels"]["eck.k8s.elastic.co/credentials"] == "true"
    assert eck["data"] == [
        {
            "secretKey": "elastic",
            "remoteRef": {"key": "elastic/elasticsearch-credentials", "property": "elastic-password"},
        }
    ]
    for es in [*airflow.values(), *elastic.values()]:
        assert eso_problems(es) == {release: [] for release in ESO_RELEASES}, es["metadata"]["name"]
    stored = vault.read("elastic/elasticsearch-credentials") or {}
    assert set(stored) == {"elastic", "elastic-password", "kibana-system", "kibana-password"}


def test_a_template_refers_only_to_keys_it_delivers(platform: Path) -> None:
    path = platform / "software/stacks/foundation/airflow/hostk8s.secrets.yaml"
    path.write_text(path.read_text().replace("{{ .database }}", "{{ .db_name }}"))
    ran = in_process("render", "foundation/airflow", cwd=platform)
    assert ran.returncode == 1
    assert "externalSecrets[0].target.template.data['connection']" in ran.stderr
    assert "refers to 'db_name', which this ExternalSecret does not deliver" in ran.stderr


def test_stack_names_resolve_under_the_stacks_root_and_stacks_without_secrets_are_skipped(
    platform: Path, vault: Vault
) -> None:
    skipped = sc(platform, "add", "foundation/ingress", env=vault.env)
    assert skipped.returncode == 0 and "foundation/ingress: no hostk8s.secrets.yaml here" in skipped.stderr
    assert vault.paths() == []
    listed = sc(platform, "list", "foundation/redis", env=vault.env)
    assert listed.returncode == 0
    unknown = sc(platform, "add", "foundation/nope", env=vault.env)
    assert unknown.returncode == 1 and "no stack 'foundation/nope' under" in unknown.stderr
    for verb in ("plan", "verify", "render", "remove", "prune", "rotate", "migrate"):
        ran = sc(
            platform, verb, "foundation/ingress", *(["--yes"] if verb in ("remove", "prune") else []), env=vault.env
        )
        assert ran.returncode == 0 and "no hostk8s.secrets.yaml here" in ran.stderr, verb


def test_a_missing_extension_stack_is_skipped_with_a_note_as_the_older_script_did(platform: Path, vault: Vault) -> None:
    # HostK8s' software/stacks/extension/ holds stacks cloned from other repositories: `make up
    # extension` on a fresh clone, or a stack not cloned yet, has nothing there.
    for stack in ("extension", "extension/custom-stack"):
        for verb in ("add", "plan", "verify", "remove"):
            ran = sc(platform, verb, stack, *(["--yes"] if verb == "remove" else []), env=vault.env)
            assert ran.returncode == 0, (verb, ran.stderr)
            assert f"{stack}: no such extension stack under" in ran.stderr, verb
    assert vault.paths() == []
    typo = sc(platform, "add", "extensions/custom-stack", env=vault.env)
    assert typo.returncode == 1 and "no stack 'extensions/custom-stack' under" in typo.stderr


def test_the_project_file_sets_defaults_and_the_environment_wins(platform: Path, vault: Vault) -> None:
    settings = f"vaultAddr: {vault.server.addr}\nstacksRoot: software/stacks\nrefreshInterval: 15m\n"
    (platform / "secret-contract.yaml").write_text(settings + f"vaultMount: {vault.mount}\n")
    env = {"VAULT_TOKEN": vault.server.token}
    added = externalsecrets(sc(platform, "add", "foundation/redis", env=env))
    assert added["redis/redis-commander-credentials"]["spec"]["refreshInterval"] == "15m"
    assert vault.read("redis/redis-commander-credentials") is not None  # the pinned address and mount
    overridden = externalsecrets(
        sc(platform, "render", "foundation/redis", env={**env, "SECRET_CONTRACT_REFRESH_INTERVAL": "5m"})
    )
    assert overridden["redis/redis-commander-credentials"]["spec"]["refreshInterval"] == "5m"
    (platform / "secret-contract.yaml").write_text("vaultToken: s.never\n")
    refused = sc(platform, "render", "foundation/redis", env=env)
    assert refused.returncode == 1 and "credentials are never read from a project file" in refused.stderr


def test_pyproject_holds_the_settings_under_tool_secret_contract_and_another_tools_file_is_left_alone(
    platform: Path,
) -> None:
    """A Python repository's pyproject.toml is read for `[tool.secret-contract]`; one that never
    names it is another tool's, and its mistakes are not this tool's to report."""
    (platform / "secret-contract.yaml").unlink()
    (platform / "pyproject.toml").write_text('[tool.secret-contract]\nrefreshInterval = "15m"\n')
    pinned = externalsecrets(sc(platform, "render", "foundation/redis", env={}))
    assert pinned["redis/redis-commander-credentials"]["spec"]["refreshInterval"] == "15m"
    (platform / "pyproject.toml").write_text('[tool.secret-contract]\nrefreshInterval = "15m\n')
    broken = sc(platform, "render", "foundation/redis", env={})
    assert broken.returncode == 1 and "pyproject.toml: cannot read (TOMLDecodeError)" in broken.stderr
    (platform / "pyproject.toml").write_text('[tool.other]\nname = "unterminated\n')
    other = sc(platform, "render", "foundation/redis", env={})
    assert other.returncode == 0 and other.stderr == ""
    assert externalsecrets(other)["redis/redis-commander-credentials"]["spec"]["refreshInterval"] == "1h"


def test_an_address_from_the_project_file_never_receives_the_developers_token_file(
    platform: Path, vault: Vault, tmp_path: Path
) -> None:
    """A cloned repository's `vaultAddr` must not collect ~/.vault-token: the token file is
    sent only to an address the environment gives; a token given in the environment is sent."""
    home = tmp_path / "dev-home"
    home.mkdir()
    (home / ".vault-token").write_text(vault.server.token)
    (platform / "secret-contract.yaml").write_text(f"vaultAddr: {vault.server.addr}\nvaultMount: {vault.mount}\n")
    refused = sc(platform, "add", "foundation/redis", env={"HOME": str(home)})
    assert refused.returncode != 0 and "~/.vault-token is not sent to an address a repository chose" in refused.stderr
    assert "secret-contract.yaml" in refused.stderr and vault.server.token not in refused.stderr + refused.stdout
    assert vault.read("redis/redis-commander-credentials") is None
    trusted = sc(platform, "add", "foundation/redis", env={"HOME": str(home), "VAULT_ADDR": vault.server.addr})
    assert trusted.returncode == 0, trusted.stderr
    assert vault.read("redis/redis-commander-credentials") is not None


def test_a_stacks_removal_keeps_what_other_stacks_still_declare(platform: Path, vault: Vault) -> None:
    for stack in ("foundation/postgres", "foundation/redis"):
        assert sc(platform, "add", stack, env=vault.env).returncode == 0
    # sample-app declares pgadmin4 and redis-commander too, though it has never been built here.
    removed = sc(platform, "remove", "foundation/postgres", "--yes", env=vault.env)
    assert removed.returncode == 0, removed.stderr
    assert "released (still declared by foundation/airflow, sample-app)" in removed.stderr
    assert vault.read("postgres/pgadmin4-credentials") is not None
