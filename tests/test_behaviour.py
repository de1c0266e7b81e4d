"""How a build and the commands treat Vault, run against two stores: the in-memory KV v2 store
and a real OpenBao server. Every case must pass identically on both, which is what keeps the
in-memory store honest."""

from __future__ import annotations

import threading
from typing import Any

from builders import DEMO, DEMO_PATH, contract, generated, resource_list, secret, static
from conftest import KV
from secret_contract import actions, operations, ownership, pipeline
from secret_contract.pipeline import Options, Outcome
from secret_contract.results import Result


def build(kv: KV, *contracts: dict[str, Any], rules: Any = None, **env: str) -> Outcome:
    options = Options(store_factory=kv.factory(rules))
    return pipeline.build(resource_list(*contracts), {**kv.env, **env}, options)


def messages(outcome: Outcome | list[Result], severity: str = "error") -> str:
    findings = outcome.findings if isinstance(outcome, Outcome) else outcome
    return "\n".join(f.message for f in findings if f.severity == severity)


def store(kv: KV, rules: Any = None) -> Any:
    from secret_contract.vault_config import VaultConfig

    return kv.factory(rules)(VaultConfig.from_env(kv.env))


# --- what a build writes --------------------------------------------------------------------


def test_first_build_creates_and_records_ownership_then_is_a_no_op(kv: KV) -> None:
    first = build(kv, DEMO)
    assert not first.failed, messages(first)
    stored = kv.data(DEMO_PATH)
    assert stored is not None and stored["user"] == "admin" and len(stored["pass"]) == 32
    owners = ownership.read(kv.custom(DEMO_PATH))
    assert (owners.managed_by, owners.owner, owners.origin) == ("secret-contract", "demo", "created")
    assert set(owners.declarations) == {"demo"}
    again = build(kv, DEMO)
    assert not again.failed and again.findings == [] and kv.versions(DEMO_PATH) == 1
    assert again.output.items == first.output.items


def test_a_key_the_contract_gained_is_added_alone_and_static_changes_are_written(kv: KV) -> None:
    build(kv, DEMO)
    before = kv.data(DEMO_PATH) or {}
    grown = contract(
        "demo", secret("db", "demo", static("user", "root"), generated("pass"), generated("api", "hex", 40))
    )
    outcome = build(kv, grown)
    after = kv.data(DEMO_PATH) or {}
    assert not outcome.failed
    assert after["pass"] == before["pass"] and after["user"] == "root" and len(after["api"]) == 40
    assert kv.versions(DEMO_PATH) == 2


def test_keys_and_secrets_that_left_the_contract_are_kept(kv: KV) -> None:
    two = contract(
        "demo", secret("db", "demo", static("user", "admin"), generated("pass")), secret("c", "demo", generated("k"))
    )
    build(kv, two)
    outcome = build(kv, contract("demo", secret("db", "demo", static("user", "admin"))))
    assert not outcome.failed
    assert set(kv.data(DEMO_PATH) or {}) == {"user", "pass"} and kv.data("demo/c") is not None


# --- ownership, reservations and deleted history (never a silent rotation) ------------------


def test_a_path_reserved_by_a_pushsecret_is_refused_before_any_write(kv: KV) -> None:
    kv.reserve(DEMO_PATH, {"managed-by": "external-secrets"})
    other = contract("demo", secret("db", "demo", generated("pass")), secret("free", "demo", generated("k")))
    outcome = build(kv, other)
    assert outcome.failed
    assert f"refusing to write {kv.mount}/{DEMO_PATH}: it is managed by 'external-secrets'" in messages(outcome)
    assert kv.data(DEMO_PATH) is None and kv.data("demo/free") is None
    assert kv.custom(DEMO_PATH) == {"managed-by": "external-secrets"}


def test_a_path_reserved_by_another_contract_without_data_is_refused(kv: KV) -> None:
    kv.reserve(DEMO_PATH, ownership.claim({"other": "0" * 16}, ownership.CREATED))
    outcome = build(kv, DEMO)
    assert outcome.failed and "reserved by contract 'other'" in messages(outcome)
    assert kv.data(DEMO_PATH) is None and ownership.read(kv.custom(DEMO_PATH)).owner == "other"


def test_a_soft_deleted_latest_version_is_never_refilled_with_new_values(kv: KV) -> None:
    build(kv, DEMO)
    kv.soft_delete(DEMO_PATH)
    outcome = build(kv, DEMO)  # not strict: still an error, this is data loss, not an outage
    text = messages(outcome)
    assert outcome.failed and f"not writing {kv.mount}/{DEMO_PATH}: its latest version (v1) was deleted at 20" in text
    assert "bao kv undelete" in text and "secret-contract rotate" in text
    assert kv.versions(DEMO_PATH) == 1


def test_destroyed_versions_are_never_refilled(kv: KV) -> None:
    build(kv, DEMO)
    kv.destroy(DEMO_PATH)
    outcome = build(kv, DEMO)
    assert outcome.failed and "was destroyed" in messages(outcome) and kv.versions(DEMO_PATH) == 1


def test_an_expired_version_is_never_refilled(kv: KV) -> None:
    kv.expire_after(DEMO_PATH, 1)  # delete_version_after on the path, before the first version
    assert not build(kv, DEMO).failed
    kv.wait(1.3)  # past the version's expiry: the in-memory store's clock, OpenBao's own
    outcome = build(kv, DEMO)
    assert outcome.failed and "its latest version (v1) was deleted at" in messages(outcome)
    assert kv.versions(DEMO_PATH) == 1


def test_a_static_only_secret_with_a_deleted_version_is_written_again_with_a_warning(kv: KV) -> None:
    statics = contract("demo", secret("db", "demo", static("user", "admin")))
    build(kv, statics)
    kv.soft_delete(DEMO_PATH)
    outcome = build(kv, statics)
    assert not outcome.failed and "rewrote" in messages(outcome, "warning")
    assert kv.data(DEMO_PATH) == {"user": "admin"}


def test_a_secret_of_another_contract_is_refused_naming_it(kv: KV) -> None:
    other = contract("other", secret("db", "demo", static("user", "someone"), generated("pass")))
    build(kv, other)
    before = kv.data(DEMO_PATH)
    outcome = build(kv, DEMO)
    assert outcome.failed and "contract 'other' declares it differently" in messages(outcome)
    assert "key 'user' holds another value" in messages(outcome)
    assert kv.data(DEMO_PATH) == before


def test_a_build_never_takes_over_unowned_values_migrate_adopts_them(kv: KV) -> None:
    kv.seed(DEMO_PATH, {"user": "admin", "pass": "from-the-old-script"})
    outcome = build(kv, DEMO)
    assert outcome.failed and "a build never takes over a secret it did not create" in messages(outcome)
    assert "secret-contract migrate" in messages(outcome) and kv.custom(DEMO_PATH) == {}
    vault = store(kv)
    actions.apply(vault, operations.plan_migrate(vault, targets(kv)).actions)
    assert not build(kv, DEMO).failed
    assert kv.data(DEMO_PATH) == {"user": "admin", "pass": "from-the-old-script"} and kv.versions(DEMO_PATH) == 1
    assert ownership.read(kv.custom(DEMO_PATH)).origin == "adopted:1"


def test_a_contract_cannot_claim_a_hand_written_secret_and_then_overwrite_it(kv: KV) -> None:
    kv.seed(DEMO_PATH, {"user": "admin", "pass": "by-hand-prod"})
    claim = build(kv, contract("intruder", secret("db", "demo", static("user", "admin"), generated("pass"))))
    overwrite = build(kv, contract("intruder", secret("db", "demo", static("user", "admin"), static("pass", "mine"))))
    assert claim.failed and overwrite.failed
    assert kv.data(DEMO_PATH) == {"user": "admin", "pass": "by-hand-prod"} and kv.custom(DEMO_PATH) == {}


def test_unowned_values_that_differ_from_the_contract_need_migrate(kv: KV) -> None:
    kv.seed(DEMO_PATH, {"user": "someone-else"})
    outcome = build(kv, DEMO)
    assert outcome.failed and "secret-contract migrate" in messages(outcome)
    assert kv.data(DEMO_PATH) == {"user": "someone-else"} and kv.custom(DEMO_PATH) == {}


def test_remove_releases_an_adopted_secret_and_keeps_its_history(kv: KV) -> None:
    kv.seed(DEMO_PATH, {"user": "admin", "pass": "old"})
    vault = store(kv)
    actions.apply(vault, operations.plan_migrate(vault, targets(kv)).actions)
    planned = operations.plan_remove(vault, pipeline_contract(kv), targets(kv))
    assert [a.kind for a in planned.actions] == ["release"]
    actions.apply(vault, planned.actions)
    assert kv.data(DEMO_PATH) == {"user": "admin", "pass": "old"}
    owners = ownership.read(kv.custom(DEMO_PATH))
    assert not owners.declarations and set(owners.releases) == {"demo"}
    # Another contract naming the path does not get it; the stack that released it takes it back.
    intruder = build(kv, contract("intruder", secret("db", "demo", static("user", "admin"), generated("pass"))))
    assert intruder.failed and "released by contract 'demo'" in messages(intruder)
    back = build(kv, DEMO)
    assert not back.failed, messages(back)
    assert kv.data(DEMO_PATH) == {"user": "admin", "pass": "old"}
    assert set(ownership.read(kv.custom(DEMO_PATH)).declarations) == {"demo"}


def test_remove_deletes_what_it_created(kv: KV) -> None:
    build(kv, DEMO)
    vault = store(kv)
    planned = operations.plan_remove(vault, pipeline_contract(kv), targets(kv))
    assert [(a.kind, a.where) for a in planned.actions] == [("delete", f"{kv.mount}/{DEMO_PATH}")]
    actions.apply(vault, planned.actions)
    assert kv.paths() == []


def test_release_keeps_the_values_and_the_next_build_of_the_stack_takes_them_back(kv: KV) -> None:
    build(kv, DEMO)
    before = kv.data(DEMO_PATH)
    vault = store(kv)
    planned = operations.plan_release(vault, pipeline_contract(kv), targets(kv))
    assert [(a.kind, a.where) for a in planned.actions] == [("release", f"{kv.mount}/{DEMO_PATH}")]
    actions.apply(vault, planned.actions)
    owners = ownership.read(kv.custom(DEMO_PATH))
    assert not owners.declarations and set(owners.releases) == {"demo"} and owners.origin == "created"
    assert kv.data(DEMO_PATH) == before and kv.versions(DEMO_PATH) == 1
    assert operations.plan_release(vault, pipeline_contract(kv), targets(kv)).actions == []  # already released
    intruder = build(kv, contract("intruder", secret("db", "demo", static("user", "admin"), generated("pass"))))
    assert intruder.failed and "released by contract 'demo'" in messages(intruder)
    back = build(kv, DEMO)
    assert not back.failed, messages(back)
    assert kv.data(DEMO_PATH) == before and kv.versions(DEMO_PATH) == 1  # the same credentials, no new version
    owners = ownership.read(kv.custom(DEMO_PATH))
    assert set(owners.declarations) == {"demo"} and not owners.releases and owners.owner == "demo"


def test_remove_after_release_deletes_what_the_stack_created(kv: KV) -> None:
    build(kv, DEMO)
    vault = store(kv)
    actions.apply(vault, operations.plan_release(vault, pipeline_contract(kv), targets(kv)).actions)
    planned = operations.plan_remove(vault, pipeline_contract(kv), targets(kv))
    assert [(a.kind, a.where) for a in planned.actions] == [("delete", f"{kv.mount}/{DEMO_PATH}")]
    actions.apply(vault, planned.actions)
    assert kv.paths() == []


def test_release_of_a_shared_secret_leaves_it_to_the_other_stack_and_rejoins_it(kv: KV) -> None:
    shared = secret("rc", "redis", static("username", "admin"), generated("password", length=12))
    build(kv, contract("foundation/redis", shared))
    app = contract("sample-app", shared)
    build(kv, app)
    before = kv.data("redis/rc")
    vault = store(kv)
    resolved = pipeline.build(resource_list(app), kv.env, Options(write=False))
    planned = operations.plan_release(vault, resolved.contracts[0], resolved.targets)
    assert [a.kind for a in planned.actions] == ["release"] and "still declared by foundation/redis" in planned.actions[
        0
    ].note
    actions.apply(vault, planned.actions)
    assert set(ownership.read(kv.custom("redis/rc")).declarations) == {"foundation/redis"}
    assert not build(kv, app).failed
    assert kv.data("redis/rc") == before and kv.versions("redis/rc") == 1
    assert set(ownership.read(kv.custom("redis/rc")).declarations) == {"foundation/redis", "sample-app"}


# --- one Vault path, one declaration ------------------------------------------------------------


def test_two_contracts_with_one_name_and_different_values_fail_before_writing(kv: KV) -> None:
    twin = contract("demo", secret("db", "demo", static("user", "root"), generated("pass")))
    outcome = build(kv, DEMO, twin)
    assert outcome.failed and "declares key 'user' differently" in messages(outcome)
    assert kv.paths() == []


def test_stacks_sharing_a_secret_get_one_value_and_identical_externalsecrets(kv: KV) -> None:
    shared = secret(
        "pgadmin4-credentials", "postgres", static("email", "admin@example.com"), generated("password", length=12)
    )
    postgres = contract("foundation/postgres", shared)
    app = contract("sample-app", shared, secret("own", "sample-app", generated("k")))
    first = build(kv, app)
    second = build(kv, postgres)
    assert not first.failed and not second.failed, messages(second)
    path = "postgres/pgadmin4-credentials"
    assert kv.versions(path) == 1
    assert set(ownership.read(kv.custom(path)).declarations) == {"foundation/postgres", "sample-app"}
    assert first.externalsecrets[0] == second.externalsecrets[0]


def test_a_shared_secret_declared_differently_by_another_stack_is_refused(kv: KV) -> None:
    build(
        kv,
        contract(
            "foundation/redis", secret("rc", "redis", static("username", "admin"), generated("password", length=12))
        ),
    )
    outcome = build(
        kv, contract("sample-app", secret("rc", "redis", static("username", "admin"), generated("password", length=16)))
    )
    assert outcome.failed and "contract 'foundation/redis' declares it differently" in messages(outcome)


def test_remove_of_one_stack_keeps_a_secret_another_still_declares(kv: KV) -> None:
    shared = secret("rc", "redis", static("username", "admin"), generated("password", length=12))
    build(kv, contract("foundation/redis", shared))
    build(kv, contract("sample-app", shared))
    vault = store(kv)
    app = contract("sample-app", shared)
    resolved = pipeline.build(resource_list(app), kv.env, Options(write=False))
    planned = operations.plan_remove(vault, resolved.contracts[0], resolved.targets)
    assert [a.kind for a in planned.actions] == ["release"] and "still declared by foundation/redis" in planned.actions[
        0
    ].note
    actions.apply(vault, planned.actions)
    assert kv.data("redis/rc") is not None
    assert set(ownership.read(kv.custom("redis/rc")).declarations) == {"foundation/redis"}


def test_keys_that_begin_with_the_mount_name_are_refused(kv: KV) -> None:
    outcome = build(
        kv, contract(kv.mount, secret("db", "demo", generated("pass"))), SECRET_CONTRACT_PATH_LAYOUT="stack"
    )
    assert outcome.failed and "ESO strips a leading" in messages(outcome) and kv.paths() == []
    # The same under the default layout, with a namespace named like the mount, and with a prefix.
    for named in (
        contract("demo", secret("db", kv.mount, generated("pass"))),
        contract("demo", secret("db", "demo", generated("pass")), vault={"prefix": f"{kv.mount}/teams"}),
    ):
        outcome = build(kv, named)
        assert outcome.failed and "ESO strips a leading" in messages(outcome) and kv.paths() == []


def test_a_float_length_is_refused_before_any_write(kv: KV) -> None:
    for bad in (2.0, 1e9):
        outcome = build(
            kv, contract("demo", secret("db", "demo", {"key": "pass", "generate": "password", "length": bad}))
        )
        assert outcome.failed and "must be an integer" in messages(outcome)
    assert kv.paths() == []


# --- permissions -----------------------------------------------------------------------------


def test_a_token_allowed_some_paths_writes_none_of_them(kv: KV) -> None:
    two = contract("demo", secret("db", "demo", generated("pass")), secret("cache", "demo", generated("k")))
    rules = [
        (f"{kv.mount}/data/demo/db", {"create", "read", "update"}),
        (f"{kv.mount}/metadata/demo/db", {"patch", "read"}),
        (f"{kv.mount}/data/demo/cache", {"read"}),
        (f"{kv.mount}/metadata/*", {"read", "list"}),
        ("sys/internal/ui/mounts/*", {"read"}),
    ]
    outcome = build(kv, two, rules=rules, SECRET_CONTRACT_STRICT="true")
    text = messages(outcome)
    assert outcome.failed and f"may not create {kv.mount}/data/demo/cache" in text
    assert f"may not patch {kv.mount}/metadata/demo/cache" in text and kv.paths() == []
    assert "no secret of this build was written" in text


# --- rotate and migrate -------------------------------------------------------------------------


def test_rotate_replaces_generated_values_in_a_new_version_and_keeps_the_old(kv: KV) -> None:
    build(kv, DEMO)
    before = kv.data(DEMO_PATH) or {}
    vault = store(kv)
    dry = operations.plan_rotate(vault, "demo", targets(kv))
    assert [(a.kind, a.keys) for a in dry.actions] == [("rotate", ("pass",))] and kv.versions(DEMO_PATH) == 1
    done = actions.apply(vault, dry.actions)
    after = kv.data(DEMO_PATH) or {}
    assert after["pass"] != before["pass"] and after["user"] == "admin"
    assert kv.data(DEMO_PATH, version=1) == before and kv.versions(DEMO_PATH) == 2
    assert before["pass"] not in messages(done, "info") and after["pass"] not in messages(done, "info")


def test_rotate_refuses_static_keys_and_secrets_it_does_not_own(kv: KV) -> None:
    build(kv, DEMO)
    vault = store(kv)
    assert "has a static value" in messages(operations.plan_rotate(vault, "demo", targets(kv), keys=("user",)).findings)
    kv.seed("demo/other", {"pass": "x"}, {"managed-by": "external-secrets"})
    theirs = contract("demo", secret("other", "demo", generated("pass")))
    resolved = pipeline.build(resource_list(theirs), kv.env, Options(write=False))
    refused = operations.plan_rotate(vault, "demo", resolved.targets)
    assert "refusing to rotate" in messages(refused.findings) and not refused.actions
    # Another contract's secret, and one nobody owns, are refused too.
    build(kv, contract("billing", secret("invoices", "demo", generated("pass"))))
    kv.seed("demo/manual", {"pass": "by-hand"})
    for name in ("invoices", "manual"):
        mine = contract("demo", secret(name, "demo", generated("pass")))
        resolved = pipeline.build(resource_list(mine), kv.env, Options(write=False))
        refused = operations.plan_rotate(vault, "demo", resolved.targets)
        assert "not owned by contract 'demo'" in messages(refused.findings) and not refused.actions, name


def test_rotate_is_the_way_out_of_a_deleted_history(kv: KV) -> None:
    build(kv, DEMO)
    kv.soft_delete(DEMO_PATH)
    vault = store(kv)
    actions.apply(vault, operations.plan_rotate(vault, "demo", targets(kv)).actions)
    assert set(kv.data(DEMO_PATH) or {}) == {"user", "pass"} and not build(kv, DEMO).failed


def test_values_at_the_older_layout_are_never_forked_and_migrate_moves_them(kv: KV) -> None:
    kv.seed("demo/demo/db", {"user": "admin", "pass": "kept"})  # the stack layout's path
    outcome = build(kv, DEMO)
    assert outcome.failed and f"already exist at {kv.mount}/demo/demo/db" in messages(outcome)
    assert "secret-contract migrate demo" in messages(outcome) and kv.data(DEMO_PATH) is None
    vault = store(kv)
    planned = operations.plan_migrate(vault, targets(kv))
    assert [a.kind for a in planned.actions] == ["copy", "mark-source"]
    actions.apply(vault, planned.actions)
    assert kv.data(DEMO_PATH) == {"user": "admin", "pass": "kept"}
    assert kv.custom("demo/demo/db")[ownership.MIGRATED_TO_KEY] == f"{kv.mount}/{DEMO_PATH}"
    assert not build(kv, DEMO).failed and kv.versions(DEMO_PATH) == 1


def test_migrate_adopts_in_place_and_the_next_build_fills_what_is_missing(kv: KV) -> None:
    kv.seed(DEMO_PATH, {"user": "admin"})  # the older script, before the contract gained `pass`
    assert build(kv, DEMO).failed
    vault = store(kv)
    actions.apply(vault, operations.plan_migrate(vault, targets(kv)).actions)
    outcome = build(kv, DEMO)
    assert (
        not outcome.failed
        and (kv.data(DEMO_PATH) or {}).get("user") == "admin"
        and "pass" in (kv.data(DEMO_PATH) or {})
    )


# --- verify -----------------------------------------------------------------------------------


def test_verify_names_gaps_and_values_no_generator_makes(kv: KV) -> None:
    keys = contract(
        "demo",
        secret(
            "db", "demo", static("user", "admin"), generated("f", "fernet"), generated("id", "uuid"), generated("e")
        ),
    )
    build(kv, keys)
    kv.seed(DEMO_PATH, {"user": "root", "f": "A" * 32, "id": "not-a-uuid", "e": ""})
    resolved = pipeline.build(resource_list(keys), kv.env, Options(write=False))
    text = messages(operations.verify(store(kv), resolved.targets))
    assert "key 'user' differs" in text and "key 'f' is not a value the 'fernet' generator makes" in text
    assert "key 'id' is not a value the 'uuid'" in text and "key 'e' is empty" in text
    assert "A" * 32 not in text and "not-a-uuid" not in text


# --- races ---------------------------------------------------------------------------------------


def test_incompatible_contracts_racing_on_one_path_never_both_succeed(kv: KV) -> None:
    alpha = contract("alpha", secret("db", "shared", static("user", "alpha"), generated("pass")))
    beta = contract("beta", secret("db", "shared", static("user", "beta"), generated("pass")))
    for _ in range(5):
        for path in kv.paths():
            store(kv).delete(kv.mount, path)
        winners = [o for o in at_once(kv, alpha, beta) if not o.failed]
        assert len(winners) == 1
        stack = winners[0].contracts[0].contract.stack
        assert (kv.data("shared/db") or {})["user"] == stack
        assert set(ownership.read(kv.custom("shared/db")).declarations) == {stack}


def at_once(kv: KV, *contracts: dict[str, Any]) -> list[Outcome]:
    """Build each contract in its own thread, all at once."""
    results: list[Outcome] = []
    runs = [threading.Thread(target=lambda c=c: results.append(build(kv, c))) for c in contracts]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    return results


def resolved(kv: KV, obj: dict[str, Any] = DEMO) -> Outcome:
    """The contract validated and resolved against the store's settings, Vault untouched."""
    return pipeline.build(resource_list(obj), kv.env, Options(write=False))


def targets(kv: KV) -> list[Any]:
    return resolved(kv).targets


def pipeline_contract(kv: KV) -> Any:
    return resolved(kv).contracts[0]


def test_a_released_static_only_secret_whose_latest_version_was_deleted_is_taken_back_whole(kv: KV) -> None:
    statics = contract("demo", secret("db", "demo", static("user", "admin")))
    build(kv, statics)
    vault = store(kv)
    mine = pipeline.build(resource_list(statics), kv.env, Options(write=False))
    actions.apply(vault, operations.plan_release(vault, mine.contracts[0], mine.targets).actions)
    kv.soft_delete(DEMO_PATH)
    back = build(kv, statics)
    assert not back.failed and "static values were written again" in messages(back, "warning")
    owners = ownership.read(kv.custom(DEMO_PATH))
    assert set(owners.declarations) == {"demo"} and not owners.releases and owners.owner == "demo"
    assert build(kv, statics).findings == []  # recorded whole: the next build has nothing to say


def test_remove_after_release_says_why_it_keeps_a_value_a_person_provided(kv: KV) -> None:
    vendor = contract("demo", secret("db", "demo", generated("pass"), {"key": "tok", "provided": True}))
    build(kv, vendor)
    kv.seed(DEMO_PATH, {**(kv.data(DEMO_PATH) or {}), "tok": "by-hand"})
    vault = store(kv)
    mine = pipeline.build(resource_list(vendor), kv.env, Options(write=False))
    actions.apply(vault, operations.plan_release(vault, mine.contracts[0], mine.targets).actions)
    planned = operations.plan_remove(vault, mine.contracts[0], mine.targets)
    assert planned.actions == []
    said = messages(planned.findings, "warning")
    assert "kept, it holds tok, provided by a person" in said and "not owned" not in said
    assert (kv.data(DEMO_PATH) or {})["tok"] == "by-hand"


def test_several_contracts_are_decided_before_anything_is_written(kv: KV) -> None:
    """`release a b` on a secret both declare: one plan, each contract decided on Vault as the
    actions before it leave it, so both releases apply and either stack takes it back."""
    shared = secret("db", "demo", static("user", "admin"), generated("pass"))
    both = [contract("a", shared), contract("b", shared)]
    build(kv, *both)
    before = kv.data(DEMO_PATH)
    vault = store(kv)
    mine = pipeline.build(resource_list(*both), kv.env, Options(write=False))
    planned = operations.plan_contracts(vault, mine.contracts, lambda s, c: operations.plan_release(s, c, mine.targets))
    assert [a.kind for a in planned.actions] == ["release", "release"]
    assert set(ownership.read(kv.custom(DEMO_PATH)).declarations) == {"a", "b"}  # nothing written yet
    assert all(f.severity == "info" for f in actions.apply(vault, planned.actions))
    owners = ownership.read(kv.custom(DEMO_PATH))
    assert not owners.declarations and set(owners.releases) == {"a", "b"}
    assert not build(kv, contract("b", shared)).failed and kv.data(DEMO_PATH) == before


def test_stacks_leaving_together_are_no_claim_for_each_other(kv: KV) -> None:
    """`remove a b` / `release a b` with the repository's declarations, which name both stacks:
    neither is a declarer that keeps the secret for the other. remove deletes a secret only
    they declared; release leaves it released by both and declared by neither."""
    shared = secret("db", "demo", static("user", "admin"), generated("pass"))
    both = [contract("a", shared), contract("b", shared)]
    mine = pipeline.build(resource_list(*both), kv.env, Options(write=False))
    repository = operations.repository_declarations(mine.targets)

    def leave(how: operations.Leave) -> actions.Planned:
        vault = store(kv)
        planned = operations.plan_leaving(vault, mine.contracts, mine.targets, repository, how)
        assert all(f.severity == "info" for f in actions.apply(vault, planned.actions))
        return planned

    build(kv, *both)
    released = leave(operations.plan_release)
    owners = ownership.read(kv.custom(DEMO_PATH))
    assert [a.kind for a in released.actions] == ["release", "release"]
    assert not owners.declarations and set(owners.releases) == {"a", "b"}
    build(kv, *both)
    removed = leave(operations.plan_remove)
    assert [a.kind for a in removed.actions] == ["release", "delete"] and kv.paths() == []
