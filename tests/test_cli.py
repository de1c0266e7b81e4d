"""The command line: add, plan, verify, list, rotate, prune, release, remove, migrate, render.

Most tests run the commands in-process (`cli.command` with a `Context`) on both KV stores, so
the in-memory one keeps them in `make unit`; a few run `python -m secret_contract` to keep the
real entry point honest (the terminal, a closed pipe, the progress line).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from builders import DEMO, DEMO_PATH, Ran, contract, generated, in_process, package_input, secret, static, with_path
from conftest import EXAMPLES, KV, Rules, Vault, assert_no_leak, run, secret_contract
from faults import FailingRecord
from secret_contract import cli, krm, ownership, yaml_codec
from secret_contract.errors import VaultUnavailable

POSTGRES = "sample-app/postgres-credentials"
REDIS = "sample-app/redis-credentials"
REPORT_SCHEMA = json.loads((resources.files("secret_contract") / "schemas" / "report.v1.json").read_text())


class Terminal(io.StringIO):
    """Input typed at a terminal: what makes a command ask before it destroys."""

    def isatty(self) -> bool:
        return True


def sc(
    *argv: str,
    kv: KV | None = None,
    env: dict[str, str] | None = None,
    stdin: io.StringIO | None = None,
    rules: Rules | None = None,
    wrap: Callable[[Any], Any] | None = None,
) -> Ran:
    """One command in-process, against `kv` when given (with a token allowed only `rules`, when
    given; through `wrap` around its store, when given), with its output captured."""
    ctx = context(kv, env, stdin, rules, wrap)
    code = cli.command(list(argv), ctx)
    return Ran(code, ctx.stdout.getvalue(), ctx.stderr.getvalue())  # type: ignore[attr-defined]


def context(
    kv: KV | None = None,
    env: dict[str, str] | None = None,
    stdin: io.StringIO | None = None,
    rules: Rules | None = None,
    wrap: Callable[[Any], Any] | None = None,
) -> cli.Context:
    factory = kv.factory(rules) if kv else None  # first: with rules, it sets the token in `kv.env`
    if factory is not None and wrap is not None:
        inner = factory
        factory = lambda config: wrap(inner(config))  # noqa: E731
    return cli.Context(
        env={**(kv.env if kv else {}), **(env or {})},
        cwd=os.getcwd(),
        stdin=stdin or io.StringIO(),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
        store_factory=factory,
    )


def stored_values(kv: KV) -> list[str]:
    """Every value of every version Vault holds."""
    return [
        value
        for path in kv.paths()
        for version in range(1, kv.versions(path) + 1)
        for value in (kv.data(path, version) or {}).values()
    ]


def report_of(ran: Ran, output: str = "json") -> dict[str, Any]:
    doc = json.loads(ran.stdout) if output == "json" else yaml_codec.load(ran.stdout)
    jsonschema.validate(doc, REPORT_SCHEMA)
    assert doc["summary"]["exitCode"] == ran.returncode
    return doc


@pytest.fixture
def stack(tmp_path: Path) -> Path:
    target = tmp_path / "sample-app"
    shutil.copytree(EXAMPLES / "sample-app", target)
    return target


def test_add_verify_list_remove_round_trip(stack: Path, kv: KV) -> None:
    missing = sc("verify", str(stack), kv=kv)
    assert missing.returncode == 1
    assert f"{kv.mount}/{POSTGRES}: missing secret" in missing.stderr

    added = sc("add", str(stack), kv=kv)
    assert added.returncode == 0, added.stderr
    assert [d["kind"] for d in yaml_codec.load_all(added.stdout)] == ["ExternalSecret", "ExternalSecret"]
    assert "internal.config.kubernetes.io" not in added.stdout

    verified = sc("verify", str(stack), kv=kv)
    assert verified.returncode == 0, verified.stderr
    assert "Vault holds all 5 keys of 2 secrets" in verified.stderr

    listed = sc("list", str(stack), kv=kv)
    assert listed.returncode == 0
    assert f"{kv.mount}/{POSTGRES}" in listed.stdout and "host, password, port, username" in listed.stdout
    assert "sample-app" in listed.stdout.splitlines()[1] and listed.stdout.splitlines()[-1] == "2 secrets"

    # Someone else's secret in the same folder survives a remove.
    kv.seed("sample-app/manual", {"k": "v"})
    dry = sc("remove", "--dry-run", str(stack), kv=kv)
    assert dry.returncode == 0 and f"would delete {kv.mount}/{POSTGRES}" in dry.stderr
    assert kv.data(POSTGRES) is not None
    unconfirmed = sc("remove", str(stack), kv=kv)
    assert unconfirmed.returncode == 1 and kv.data(POSTGRES) is not None
    assert "[error] not run from a terminal: nothing changed; add --yes (-y)" in unconfirmed.stderr
    removed = sc("remove", "-y", str(stack), kv=kv)
    assert removed.returncode == 0, removed.stderr
    assert kv.paths() == ["sample-app/manual"]

    outputs = [missing.text, added.text, verified.text, listed.text, dry.text, unconfirmed.text, removed.text]
    assert_no_leak(outputs, [kv.env["VAULT_TOKEN"], "voting-db-rw"])


def test_declining_the_prompt_changes_nothing_and_says_so(stack: Path, kv: KV) -> None:
    assert sc("add", str(stack), kv=kv).returncode == 0
    declined = sc("remove", str(stack), kv=kv, stdin=Terminal("n\n"))
    assert declined.returncode == 1 and "remove as listed above? [y/N]" in declined.stderr
    assert "[error] not confirmed: nothing changed (no remove)" in declined.stderr
    assert kv.data(POSTGRES) is not None and kv.data(REDIS) is not None
    confirmed = sc("remove", str(stack), kv=kv, stdin=Terminal("y\n"))
    assert confirmed.returncode == 0, confirmed.stderr
    assert kv.data(POSTGRES) is None


def test_only_an_action_that_destroys_asks(tmp_path: Path, kv: KV) -> None:
    """prune that only drops keys (older versions keep them), rotate, release and migrate
    without --delete-source go ahead off a terminal; deleting a secret needs --yes."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml_codec.dump(contract("app", secret("db", "app", generated("pass"), generated("old")))))
    assert sc("add", str(path), kv=kv).returncode == 0
    path.write_text(yaml_codec.dump(contract("app", secret("db", "app", generated("pass")))))
    dropped = sc("prune", str(path), kv=kv)
    assert dropped.returncode == 0 and "as listed above?" not in dropped.stderr, dropped.stderr
    assert set(kv.data("app/db") or {}) == {"pass"}
    assert sc("rotate", str(path), kv=kv).returncode == 0 and kv.versions("app/db") == 3
    kv.seed("demo/demo/db", {"user": "admin", "pass": "kept"})  # the stack layout: migrate copies it
    demo = tmp_path / "demo.yaml"
    demo.write_text(yaml_codec.dump(DEMO))
    deleting = sc("migrate", "--delete-source", str(demo), kv=kv)  # deleting the source destroys it
    assert deleting.returncode == 1 and "add --yes (-y) to migrate" in deleting.stderr
    assert kv.data(DEMO_PATH) is None and kv.data("demo/demo/db") is not None  # nothing changed, not even the copy
    copied = sc("migrate", str(demo), kv=kv)
    assert copied.returncode == 0 and kv.data(DEMO_PATH) == {"user": "admin", "pass": "kept"}, copied.stderr


def test_rotate_dry_run_changes_nothing_and_rotate_keeps_the_old_version(stack: Path, kv: KV) -> None:
    assert sc("add", str(stack), kv=kv).returncode == 0
    before = {p: kv.data(p) for p in kv.paths()}
    dry = sc("rotate", str(stack), "--secret", "postgres-credentials", "--dry-run", kv=kv)
    assert dry.returncode == 0, dry.stderr
    assert f"{kv.mount}/{POSTGRES}" in dry.stderr and "password" in dry.stderr
    assert {p: kv.data(p) for p in kv.paths()} == before
    done = sc("rotate", str(stack), "--secret", "postgres-credentials", "--key", "password", kv=kv)
    assert done.returncode == 0, done.stderr
    after = kv.data(POSTGRES) or {}
    old = before[POSTGRES] or {}
    assert kv.versions(POSTGRES) == 2 and after["password"] != old["password"]
    assert {k: v for k, v in after.items() if k != "password"} == {k: v for k, v in old.items() if k != "password"}
    assert kv.data(POSTGRES, 1) == old  # the old value stays readable for a rollback
    assert kv.data(REDIS) == before[REDIS]  # the other secret is untouched
    assert_no_leak([dry.text, done.text], stored_values(kv), names=(POSTGRES,))


def test_verify_names_missing_keys_and_stale_static_values(stack: Path, kv: KV) -> None:
    sc("add", str(stack), kv=kv)
    data = kv.data(POSTGRES) or {}
    del data["password"]
    data["port"] = "6543"
    kv.seed(POSTGRES, data)
    ran = sc("verify", str(stack), kv=kv)
    assert ran.returncode == 1
    assert f"{kv.mount}/{POSTGRES}: missing key 'password'" in ran.stderr
    assert f"{kv.mount}/{POSTGRES}: key 'port' differs from the contract's value" in ran.stderr
    assert "6543" not in ran.text


def test_add_needs_vault_and_render_never_touches_it(stack: Path, kv: KV) -> None:
    no_vault = sc("add", str(stack))
    assert no_vault.returncode == 1 and "VAULT_ADDR is not set" in no_vault.stderr
    rendered = sc("render", str(stack), kv=kv)
    assert rendered.returncode == 0 and rendered.stdout.count("kind: ExternalSecret") == 2
    assert rendered.stderr == ""
    assert kv.paths() == []


def test_add_fails_when_vault_is_unreachable(stack: Path) -> None:
    # No retries: their backoff is slept, and test_reliability counts them against a real server.
    env = {"VAULT_ADDR": "http://127.0.0.1:9", "VAULT_TOKEN": "x", "VAULT_MAX_RETRIES": "0"}
    ran = sc("add", str(stack), env=env)
    assert ran.returncode == 1 and "cannot connect to Vault" in ran.stderr


def test_bad_paths_and_files_are_clear_errors(tmp_path: Path) -> None:
    nope = sc("render", str(tmp_path / "nope"))
    assert nope.returncode == 1 and "secret-contract: [error] " in nope.stderr
    assert "no such file or directory" in nope.stderr
    empty = sc("render", str(tmp_path))
    assert empty.returncode == 0 and "no hostk8s.secrets.yaml here, so no secrets to manage" in empty.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("spec:\n  secrets: [\n")
    ran = sc("render", str(broken))
    assert ran.returncode == 1 and f"{broken}: invalid YAML" in ran.stderr and "line" in ran.stderr
    dup = tmp_path / "dup.yaml"
    dup.write_text("apiVersion: hostk8s.io/v1\nkind: SecretContract\nkind: SecretContract\n")
    assert "duplicate key 'kind'" in sc("render", str(dup)).stderr


def test_usage_errors_have_the_format_of_every_error() -> None:
    ran = sc("remove")
    assert ran.returncode == 2 and ran.stdout == ""
    assert ran.stderr.splitlines()[-1] == "secret-contract: [error] the following arguments are required: PATH (usage)"
    bad = sc("plan", "x", "-o", "xml")
    assert bad.returncode == 2 and "secret-contract: [error] argument -o/--output: invalid choice" in bad.stderr


def test_install_plugin_writes_an_executable_where_kustomize_looks(tmp_path: Path) -> None:
    ran = sc("install-plugin", env={"XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    assert ran.returncode == 0
    path = tmp_path / "xdg" / "kustomize" / "plugin" / "hostk8s.io" / "v1" / "secretcontract" / "SecretContract"
    assert ran.stdout.strip() == str(path)
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o755


def test_prune_deletes_only_what_left_the_contract_and_asks_first(tmp_path: Path, kv: KV) -> None:
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
    assert sc("add", str(path), kv=kv).returncode == 0
    before = kv.data("app/db") or {}
    path.write_text(yaml_codec.dump(contract("app", secret("db", "app", static("user", "admin"), generated("pass")))))
    dry = sc("prune", "--dry-run", str(path), kv=kv)
    assert dry.returncode == 0 and kv.data("app/cache") is not None
    assert f"would delete {kv.mount}/app/cache and every version of it" in dry.stderr
    assert f"would write a new version of {kv.mount}/app/db without old-key" in dry.stderr
    refused = sc("prune", str(path), kv=kv)
    assert refused.returncode == 1 and "not run from a terminal: nothing changed; add --yes" in refused.stderr
    done = sc("prune", "--yes", str(path), kv=kv)
    assert done.returncode == 0, done.stderr
    assert kv.data("app/cache") is None
    assert kv.data("app/db") == {k: v for k, v in before.items() if k != "old-key"}
    assert (kv.data("app/db", 1) or {})["old-key"] == before["old-key"]  # recoverable from the previous version
    assert_no_leak([dry.text, refused.text, done.text], list(before.values()), ("admin",))


def test_release_dry_run_changes_nothing_and_release_keeps_every_value(stack: Path, kv: KV) -> None:
    assert sc("add", str(stack), kv=kv).returncode == 0
    before = {p: kv.data(p) for p in kv.paths()}
    owners = kv.custom(POSTGRES)
    dry = sc("release", "--dry-run", str(stack), kv=kv)
    assert dry.returncode == 0 and f"would keep {kv.mount}/{POSTGRES}, remove this contract's" in dry.stderr
    assert kv.custom(POSTGRES) == owners
    done = sc("release", str(stack), kv=kv)  # destroys nothing: does not ask
    assert done.returncode == 0 and f"{kv.mount}/{POSTGRES}: released" in done.stderr, done.stderr
    assert {p: kv.data(p) for p in kv.paths()} == before
    released = {k: v for k, v in kv.custom(POSTGRES).items() if k.startswith("secret-contract-released-by.")}
    assert list(released.values()) == ["1 sample-app"]  # the stack, and the version it left
    assert_no_leak([dry.text, done.text], [kv.env["VAULT_TOKEN"], *stored_values(kv)], ("postgres-credentials",))


def test_every_verb_reports_in_one_schema_without_a_value(tmp_path: Path, stack: Path, kv: KV) -> None:
    """`-o json|yaml` of every verb that plans or changes Vault validates against
    schemas/report.v1.json, goes to stdout alone, and holds no value Vault holds."""
    ran: list[Ran] = []

    def reported(*argv: str, output: str = "json", stdin: io.StringIO | None = None) -> dict[str, Any]:
        done = sc(*argv, "-o", output, kv=kv, stdin=stdin)
        ran.append(done)
        return report_of(done, output)

    planned = reported("plan", str(stack))
    assert planned["verb"] == "plan" and planned["dryRun"] is True and planned["summary"]["exitCode"] == 2
    assert [(c["action"], c["path"], c["status"]) for c in planned["changes"]] == [
        ("create", f"{kv.mount}/{POSTGRES}", "pending"),
        ("create", f"{kv.mount}/{REDIS}", "pending"),
    ]
    assert planned["changes"][0]["keys"] == ["host", "password", "port", "username"]
    assert kv.paths() == []

    added = reported("add", str(stack), output="yaml")
    assert added["summary"]["done"] == 2 and added["summary"]["exitCode"] == 0
    assert [es["metadata"]["name"] for es in added["externalSecrets"]] == ["postgres-credentials", "redis-credentials"]
    assert reported("plan", str(stack))["changes"] == []  # up to date: exit 0
    verified = reported("verify", str(stack))
    assert verified["changes"] == [] and verified["results"][0]["message"] == "Vault holds all 5 keys of 2 secrets"

    rotated = reported("rotate", str(stack), "--secret", "redis-credentials")
    assert [(c["action"], c["keys"], c["status"]) for c in rotated["changes"]] == [("rotate", ["password"], "done")]
    released = reported("release", "--dry-run", str(stack))
    assert {c["status"] for c in released["changes"]} == {"pending"} and released["dryRun"] is True

    kv.seed("demo/demo/db", {"user": "admin", "pass": "migrated-sentinel-value"})
    demo = tmp_path / "demo.yaml"
    demo.write_text(yaml_codec.dump(DEMO))
    migrated = reported("migrate", str(demo))
    values = stored_values(kv)  # every version of every secret, before prune and remove delete some
    assert [c["action"] for c in migrated["changes"]] == ["copy", "mark-source"]

    (stack / "hostk8s.secrets.yaml").write_text(
        (stack / "hostk8s.secrets.yaml").read_text().split("  - name: redis-credentials")[0]
    )
    unconfirmed = reported("prune", str(stack))
    assert unconfirmed["summary"]["exitCode"] == 1 and unconfirmed["summary"]["notDone"] == 1
    assert unconfirmed["changes"][0]["destroys"] is True
    assert any("add --yes" in r["message"] for r in unconfirmed["results"] if r["severity"] == "error")
    pruned = reported("prune", "-y", str(stack))
    assert [(c["action"], c["path"], c["status"]) for c in pruned["changes"]] == [
        ("delete", f"{kv.mount}/{REDIS}", "done")
    ]
    declined = reported("remove", str(stack), stdin=Terminal("no\n"))
    assert declined["summary"]["notDone"] == 1 and declined["summary"]["exitCode"] == 1
    removed = reported("remove", str(stack), "--yes", output="yaml")
    assert removed["summary"] == {**removed["summary"], "done": 1, "changes": 1, "byAction": {"delete": 1}}
    failed = reported("verify", str(tmp_path / "nope"))  # an error the command cannot continue from
    assert failed["summary"]["errors"] == 1 and "no such file or directory" in failed["results"][0]["message"]

    assert {r.returncode for r in ran} == {0, 1, 2}
    assert "migrated-sentinel-value" in values and len(values) == 10  # both redis passwords among them
    assert_no_leak([r.text for r in ran], [kv.env["VAULT_TOKEN"], *values], names=("postgres-credentials", "admin"))


def test_list_honours_the_contracts_own_mount_and_layout(tmp_path: Path, vault: Vault) -> None:
    other = "kv-own-" + vault.mount
    vault.client.sys.enable_secrets_engine("kv", path=other, options={"version": "2"})
    path = tmp_path / "c.yaml"
    own = contract("team/app", secret("db", "app", generated("pass")), vault={"mount": other, "layout": "stack"})
    path.write_text(yaml_codec.dump(own))
    assert sc("add", str(path), env=vault.env).returncode == 0
    listed = sc("list", str(path), "-o", "json", env=vault.env)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["path"], r["owners"], r["keys"]) for r in rows] == [(f"{other}/team/app/app/db", ["team/app"], ["pass"])]
    as_yaml = sc("list", str(path), "-o", "yaml", env=vault.env)
    assert yaml_codec.load(as_yaml.stdout) == rows
    table = sc("list", str(path), env=vault.env)
    assert table.stdout.splitlines()[-1] == "1 secret"


def test_a_missing_mount_and_a_wrong_token_say_which(stack: Path, vault: Vault) -> None:
    missing = sc("add", str(stack), env={**vault.env, "SECRET_CONTRACT_VAULT_MOUNT": "nosuch"})
    assert missing.returncode == 1 and "there is no mount 'nosuch'" in missing.stderr
    wrong = sc("add", str(stack), env={**vault.env, "VAULT_TOKEN": "s.wrong"})
    assert wrong.returncode == 1 and "the token was refused: it is invalid or expired" in wrong.stderr


def test_every_verb_explains_itself_and_takes_verbose() -> None:
    from secret_contract.cli import parser

    for verb in ("add", "plan", "verify", "rotate", "prune", "remove", "release", "migrate", "list"):
        shown = sc(verb, "--help").stdout
        assert "examples:" in shown and "needs Vault: yes" in shown and "VAULT_ADDR" in shown, verb
    for verb in ("render", "check"):
        assert "needs Vault: no" in sc(verb, "--help").stdout, verb
    for verb in parser.VERBS:
        assert "-v, --verbose" in sc(verb, "--help").stdout, verb
    for verb in ("add", "plan", "verify", "rotate", "prune", "remove", "release", "migrate"):
        assert "-o {text,json,yaml}, --output {text,json,yaml}" in sc(verb, "--help").stdout, verb
    for verb in ("prune", "remove", "migrate"):
        assert "-y, --yes" in sc(verb, "--help").stdout, verb


def test_publish_output_is_a_deprecated_spelling_of_layer_file() -> None:
    from secret_contract.cli import parser

    old = parser.build().parse_args(["publish", "d", "oci://r/x:y", "--dry-run", "--output", "a.tgz"])
    new = parser.build().parse_args(["publish", "d", "oci://r/x:y", "--dry-run", "--layer-file", "a.tgz"])
    assert (old.deprecated_output, new.layer_file) == ("a.tgz", "a.tgz")
    assert "--output" not in sc("publish", "--help").stdout


ESC = "\x1b[2J\x1b[31m"  # clear the screen, then red: what a hostile key name would do


def test_control_characters_in_names_never_reach_the_terminal(stack: Path, kv: KV, tmp_path: Path) -> None:
    """Names from Vault (written by hand) and from contracts are printed with control
    characters escaped; a contract may not carry them in a name at all."""
    added = sc("add", str(stack), kv=kv)
    assert added.returncode == 0, added.stderr
    kv.seed(POSTGRES, {**(kv.data(POSTGRES) or {}), f"note{ESC}": "x"})
    kv.seed("sample-app/hand", {f"k{ESC}": "v"})
    listed = sc("list", kv=kv)
    pruned = sc("prune", "--dry-run", str(stack), kv=kv)
    hostile = contract("demo", secret("db", "demo", static("user", "admin")), externalSecret={
        "secretStoreRef": {"name": f"vault{ESC}", "kind": "ClusterSecretStore"}})  # fmt: skip
    hostile["metadata"]["name"] = f"demo{ESC}"
    path = tmp_path / "hostile.yaml"
    path.write_text(yaml_codec.dump(hostile))
    rendered = sc("render", str(path))
    for ran in (listed, pruned, rendered):
        assert "\x1b" not in ran.text, ran.text
    assert listed.returncode == 0 and "\\x1b[2J" in listed.stdout
    assert "\\x1b[2J" in pruned.stderr
    assert rendered.returncode == 1 and "spec.externalSecret.secretStoreRef.name" in rendered.stderr
    assert "control character" in rendered.stderr and "metadata.name" in rendered.stderr


# --- the real entry point ---------------------------------------------------------------------


def test_the_entry_point_prints_a_report_on_stdout_only(stack: Path, vault: Vault) -> None:
    planned = secret_contract("plan", str(stack), "-o", "json", env=vault.env)
    doc = report_of(planned)
    assert planned.returncode == 2 and doc["summary"]["pending"] == 2
    assert "[info] would create" in planned.stderr and "would create" not in planned.stdout.split('"results"')[0]


def test_progress_is_shown_on_a_terminal_only(tmp_path: Path, vault: Vault) -> None:
    import pty
    import subprocess

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


def stacks_root(root: Path, contracts: dict[str, dict[str, Any]]) -> None:
    """A repository whose stacks root holds one contract per stack."""
    (root / "secret-contract.yaml").write_text("stacksRoot: software/stacks\n")
    for name, doc in contracts.items():
        folder = root / "software" / "stacks" / name
        folder.mkdir(parents=True)
        (folder / "hostk8s.secrets.yaml").write_text(yaml_codec.dump(doc))


def test_make_down_never_hands_a_credential_to_a_stack_that_declares_it_differently(
    tmp_path: Path, kv: KV, monkeypatch: pytest.MonkeyPatch
) -> None:
    stacks_root(
        tmp_path,
        {
            "a": contract("a", secret("db", "demo", static("user", "admin"), generated("pass"))),
            "b": contract("b", secret("db", "demo", static("user", "root"), generated("pass"), generated("extra"))),
        },
    )
    monkeypatch.chdir(tmp_path)
    assert sc("add", "a", kv=kv).returncode == 0
    before = kv.data(DEMO_PATH)
    refused = sc("add", "b", kv=kv)
    assert refused.returncode == 1 and "declares it differently" in refused.stderr
    down = sc("release", "a", kv=kv)
    assert down.returncode == 0 and "contract 'b' declares it differently and is not given it" in down.stderr
    still = sc("add", "b", kv=kv)  # `make up b`
    assert still.returncode == 1 and "released by contract 'a'" in still.stderr
    up = sc("add", "a", kv=kv)  # `make up a`
    assert up.returncode == 0, up.stderr
    assert kv.data(DEMO_PATH) == before and kv.versions(DEMO_PATH) == 1


def test_a_command_on_several_stacks_checks_every_permission_before_changing_any(
    tmp_path: Path, kv: KV, monkeypatch: pytest.MonkeyPatch
) -> None:
    stacks_root(
        tmp_path,
        {
            "a": contract("a", secret("db", "na", static("user", "admin"), generated("pass"))),
            "b": contract("b", secret("db", "nb", static("user", "admin"), generated("pass"))),
        },
    )
    monkeypatch.chdir(tmp_path)
    assert sc("add", "a", "b", kv=kv).returncode == 0
    owners = {p: kv.custom(p) for p in ("na/db", "nb/db")}
    rules = [
        (f"{kv.mount}/metadata/na/db", {"read", "patch"}),  # b's record may not be changed
        (f"{kv.mount}/data/*", {"read"}),
        (f"{kv.mount}/metadata/*", {"read", "list"}),
        ("sys/internal/ui/mounts/*", {"read"}),
        ("sys/mounts/*", {"read"}),
    ]
    ran = sc("release", "a", "b", kv=kv, rules=rules)
    assert ran.returncode == 1 and f"may not patch {kv.mount}/metadata/nb/db" in ran.stderr
    assert "nothing was changed" in ran.stderr
    assert {p: kv.custom(p) for p in ("na/db", "nb/db")} == owners


# --- what the report says when a command goes wrong ----------------------------------------------


def test_remove_and_release_of_stacks_sharing_a_secret_leave_it_to_neither(
    tmp_path: Path, kv: KV, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`release a b` / `remove a b`: the other named stack, declaring the secret in the
    repository, leaves too and keeps no claim on it."""
    shared = secret("db", "demo", static("user", "admin"), generated("pass"))
    stacks_root(tmp_path, {"a": contract("a", shared), "b": contract("b", shared)})
    monkeypatch.chdir(tmp_path)
    assert sc("add", "a", "b", kv=kv).returncode == 0
    released = sc("release", "a", "b", kv=kv)
    assert released.returncode == 0, released.stderr
    owners = ownership.read(kv.custom(DEMO_PATH))
    assert not owners.declarations and set(owners.releases) == {"a", "b"}
    assert sc("add", "a", "b", kv=kv).returncode == 0
    removed = report_of(sc("remove", "-y", "a", "b", "-o", "json", kv=kv))
    assert [(c["action"], c["status"]) for c in removed["changes"]] == [("release", "done"), ("delete", "done")]
    assert kv.paths() == []


def test_a_rotation_whose_record_failed_is_reported_done(stack: Path, kv: KV) -> None:
    assert sc("add", str(stack), kv=kv).returncode == 0
    ran = sc("rotate", str(stack), "--secret", "redis-credentials", "-o", "json", kv=kv, wrap=FailingRecord)
    report = report_of(ran)
    assert [(c["action"], c["status"]) for c in report["changes"]] == [("rotate", "done")]
    assert kv.versions(REDIS) == 2 and ran.returncode == 0
    assert any("version 2 is not recorded" in r["message"] for r in report["results"] if r["severity"] == "warning")


class FailingData:
    """A store whose data writes fail; its ownership records (a claim) go through."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write(self, mount: str, path: str, data: Any, cas: int) -> int:
        raise VaultUnavailable(f"{mount}/{path}: connection refused")


def test_add_reports_a_claim_it_recorded_as_done_beside_a_write_that_failed(
    tmp_path: Path, kv: KV, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = secret("db", "demo", static("user", "admin"), generated("pass"))
    stacks_root(
        tmp_path, {"a": contract("a", shared), "b": contract("b", shared, secret("zz", "demo", generated("k")))}
    )
    monkeypatch.chdir(tmp_path)
    assert sc("add", "a", kv=kv).returncode == 0
    report = report_of(sc("add", "b", "-o", "json", kv=kv, wrap=FailingData))
    statuses = {c["path"]: (c["action"], c["status"]) for c in report["changes"]}
    assert statuses == {f"{kv.mount}/demo/db": ("claim", "done"), f"{kv.mount}/demo/zz": ("create", "not-done")}
    assert set(ownership.read(kv.custom(DEMO_PATH)).declarations) == {"a", "b"} and kv.data("demo/zz") is None


class Interrupted:
    """A store on which the second delete is interrupted (Ctrl-C), or breaks unexpectedly."""

    def __init__(self, inner: Any, raised: BaseException) -> None:
        self.inner, self.raised, self.deletes = inner, raised, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def delete(self, mount: str, path: str) -> None:
        self.deletes += 1
        if self.deletes == 2:
            raise self.raised
        self.inner.delete(mount, path)


@pytest.mark.parametrize(("raised", "code"), [(KeyboardInterrupt(), 130), (RuntimeError("boom"), 3)])
def test_the_report_is_printed_whatever_ends_the_command(stack: Path, kv: KV, raised: BaseException, code: int) -> None:
    assert sc("add", str(stack), kv=kv).returncode == 0
    ctx = context(kv, wrap=lambda store: Interrupted(store, raised))
    with pytest.raises(type(raised)):
        cli.command(["remove", "-y", str(stack), "-o", "json"], ctx)
    report = report_of(Ran(code, ctx.stdout.getvalue(), ctx.stderr.getvalue()))  # type: ignore[call-arg]
    assert [c["status"] for c in report["changes"]] == ["done", "not-done"]
    assert report["summary"]["errors"] == 1 and len(kv.paths()) == 1


class Unreachable:
    """A store that goes away when the permissions are checked, after the plan was made."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def denied(self, checks: Any) -> Any:
        raise VaultUnavailable("connection refused")


def test_planned_changes_are_reported_when_the_permission_check_fails(stack: Path, kv: KV) -> None:
    assert sc("add", str(stack), kv=kv).returncode == 0
    report = report_of(sc("release", str(stack), "-o", "json", kv=kv, wrap=Unreachable))
    assert [(c["action"], c["status"]) for c in report["changes"]] == [("release", "not-done")] * 2
    assert report["summary"]["exitCode"] == 1 and len(kv.paths()) == 2


def test_a_refusal_leaves_every_other_change_not_done_in_a_dry_run_too(stack: Path, kv: KV) -> None:
    """One rule for builds and operations: a change a refusal in the same plan stops is
    `not-done`, never `pending` (the command without the dry run would not make it)."""
    kv.reserve(POSTGRES, {"managed-by": "external-secrets"})
    planned = report_of(sc("plan", str(stack), "-o", "json", kv=kv))
    assert [(c["path"], c["status"]) for c in planned["changes"]] == [
        (f"{kv.mount}/{POSTGRES}", "refused"),
        (f"{kv.mount}/{REDIS}", "not-done"),
    ]
    assert planned["summary"]["pending"] == 0 and planned["summary"]["exitCode"] == 1


def test_render_prints_what_a_build_emits_and_refuses_what_a_build_refuses(stack: Path) -> None:
    """`render` makes each ExternalSecret as it prints it, and checks only those an input item
    shares an identity with: its output and its conflicts are still a build's."""
    contract_file = stack / "hostk8s.secrets.yaml"
    contract_doc = yaml_codec.load(contract_file.read_text())
    built = in_process(stdin=package_input(with_path(contract_doc, "hostk8s.secrets.yaml")), env={})
    assert built.returncode == 0, built.stderr
    emitted = [
        krm.strip_orchestrator_annotations(item) for item in built.output()["items"] if item["kind"] == "ExternalSecret"
    ]
    rendered = sc("render", str(contract_file))
    assert rendered.returncode == 0, rendered.stderr
    assert yaml_codec.load_all(rendered.stdout) == emitted and len(emitted) == 2

    hand_written = {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": "redis-credentials", "namespace": "sample-app"},
    }
    contract_file.write_text(contract_file.read_text() + "---\n" + yaml_codec.dump(hand_written))
    refused = sc("render", str(contract_file))
    assert refused.returncode == 1 and refused.stdout == ""
    assert "ExternalSecret sample-app/redis-credentials is written by hand here" in refused.stderr
