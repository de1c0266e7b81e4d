"""No operation loses or forks a live credential, under races and operator mistakes. Each case
runs on the in-memory store and on the real OpenBao (the `kv` fixture), like test_behaviour."""

from __future__ import annotations

from typing import Any

from builders import DEMO, DEMO_PATH, contract, generated, resource_list, secret, static
from conftest import KV
from faults import FailingRecord
from secret_contract import actions, operations, ownership, pipeline
from secret_contract.pipeline import Options, Outcome
from test_behaviour import at_once, build, messages, store


def resolved(kv: KV, *contracts: dict[str, Any]) -> Outcome:
    return pipeline.build(resource_list(*contracts), kv.env, Options(write=False))


class HandBeforeWrite:
    """A store that runs `hand` once, right before the first data write of `path` it forwards:
    what another writer does while a build's request is in flight."""

    def __init__(self, inner: Any, path: str, hand: Any) -> None:
        self.inner, self.path, self.hand, self.fired = inner, path, hand, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write(self, mount: str, path: str, data: Any, cas: int) -> int:
        if path == self.path and not self.fired:
            self.fired = True
            self.hand()
        return int(self.inner.write(mount, path, data, cas))


def hooked(kv: KV, path: str, hand: Any) -> Any:
    inner = kv.factory()
    return lambda config: HandBeforeWrite(inner(config), path, hand)


SHARED = secret("db", "shared", static("user", "app"), generated("password", length=20))
STACK_A = contract("stack-a", SHARED)


# --- 1: migrate never takes another stack's live secret as its source ---------------------------


def test_migrate_refuses_a_source_another_contract_owns_and_the_build_names_the_owner(kv: KV) -> None:
    assert not build(kv, STACK_A).failed
    vault = store(kv)
    first = resolved(kv, STACK_A)
    actions.apply(vault, operations.plan_rotate(vault, "stack-a", first.targets).actions)
    before = (kv.versions("shared/db"), kv.data("shared/db"), kv.custom("shared/db"))
    for spec in ({"layout": "stack"}, {"prefix": "apps"}):
        stack_b = contract("stack-b", SHARED, vault=spec)
        refused = build(kv, stack_b)
        assert refused.failed and "live secret of contract 'stack-a'" in messages(refused)
        assert "secret-contract migrate" not in messages(refused)
        b_targets = resolved(kv, stack_b).targets
        for delete_source in (False, True):
            planned = operations.plan_migrate(vault, b_targets, delete_source=delete_source)
            assert planned.refused and not planned.actions  # a dry run shows the same refusal
            assert "live secret of contract 'stack-a'" in messages(planned.findings)
    assert (kv.versions("shared/db"), kv.data("shared/db"), kv.custom("shared/db")) == before
    assert ownership.MIGRATED_TO_KEY not in kv.custom("shared/db")
    assert kv.paths() == ["shared/db"]


# --- 2: remove and prune never delete on a stale plan --------------------------------------------


def test_remove_leaves_a_secret_another_stack_joined_after_the_plan(kv: KV) -> None:
    assert not build(kv, STACK_A).failed
    vault = store(kv)
    a = resolved(kv, STACK_A)
    planned = operations.plan_remove(vault, a.contracts[0], a.targets)
    assert [x.kind for x in planned.actions] == ["delete"]
    # While `remove` waits at its prompt, another stack joins the secret.
    assert not build(kv, contract("stack-b", SHARED)).failed
    value = (kv.data("shared/db") or {})["password"]
    findings = actions.apply(vault, planned.actions)
    assert "left as it is: who declares it changed" in messages(findings)
    assert (kv.data("shared/db") or {})["password"] == value
    assert set(ownership.read(kv.custom("shared/db")).declarations) == {"stack-a", "stack-b"}


def test_prune_leaves_a_secret_another_stack_joined_between_its_read_and_its_delete(kv: KV) -> None:
    own = secret("own", "shared", generated("k"))
    assert not build(kv, contract("stack-a", SHARED, own)).failed
    vault = store(kv)
    after = resolved(kv, contract("stack-a", own))  # the contract no longer declares shared/db
    planned = operations.plan_prune(vault, after.contracts[0], after.targets)
    assert [(x.kind, x.path) for x in planned.actions] == [("delete", "shared/db")]
    assert not build(kv, contract("stack-b", SHARED)).failed
    findings = actions.apply(vault, planned.actions)
    assert "left as it is" in messages(findings) and kv.data("shared/db") is not None


# --- 3: a generated key an earlier version holds is never regenerated ------------------------------


def test_a_generated_key_missing_from_the_latest_version_is_refused_naming_the_version(kv: KV) -> None:
    assert not build(kv, DEMO).failed
    original = kv.data(DEMO_PATH) or {}
    kv.seed(DEMO_PATH, {"user": "admin"})  # `kv put` replaces every key: `pass` survives only in v1
    outcome = build(kv, DEMO)
    assert outcome.failed and kv.versions(DEMO_PATH) == 2
    text = messages(outcome)
    assert "'pass' (v1)" in text and f"kv rollback -mount={kv.mount} -version=1 {DEMO_PATH}" in text
    assert "kv patch" in text and original["pass"] not in text
    kv.seed(DEMO_PATH, original)  # the rollback
    assert not build(kv, DEMO).failed and kv.data(DEMO_PATH) == original


def test_a_rollback_to_before_a_key_existed_does_not_regenerate_it(kv: KV) -> None:
    assert not build(kv, DEMO).failed
    v1 = kv.data(DEMO_PATH) or {}
    grown = contract("demo", secret("db", "demo", static("user", "admin"), generated("pass"), generated("api")))
    assert not build(kv, grown).failed
    api = (kv.data(DEMO_PATH) or {})["api"]
    kv.seed(DEMO_PATH, v1)  # `kv rollback -version=1`
    outcome = build(kv, grown)
    assert outcome.failed and "'api' (v2)" in messages(outcome) and api not in messages(outcome)
    assert kv.versions(DEMO_PATH) == 3


# --- 4: the last deployed declarer leaves, and comes back -------------------------------------------


def test_removing_the_last_deployed_declarer_keeps_the_others_claims_and_it_can_be_added_again(kv: KV) -> None:
    rc = secret("redis-commander-credentials", "redis", static("username", "admin"), generated("password"))
    redis, airflow, app = (contract(s, rc) for s in ("foundation/redis", "foundation/airflow", "sample-app"))
    assert not build(kv, redis).failed
    path = "redis/redis-commander-credentials"
    value = (kv.data(path) or {})["password"]
    vault = store(kv)
    repository = operations.repository_declarations(resolved(kv, redis, airflow, app).targets)
    mine = resolved(kv, redis)
    planned = operations.plan_remove(vault, mine.contracts[0], mine.targets, repository)
    assert [x.kind for x in planned.actions] == ["release"]
    assert "still declared by foundation/airflow, sample-app" in planned.actions[0].note
    actions.apply(vault, planned.actions)
    assert set(ownership.read(kv.custom(path)).declarations) == {"foundation/airflow", "sample-app"}
    for stack in (redis, airflow, app):  # `make up` of any of them after `make down redis`
        outcome = build(kv, stack)
        assert not outcome.failed, messages(outcome)
    assert (kv.data(path) or {})["password"] == value and kv.versions(path) == 1


# --- 5 and 6: what a lost create race may join -----------------------------------------------------


def test_a_create_that_loses_to_a_hand_write_is_refused_not_recorded_as_created(kv: KV) -> None:
    def by_hand() -> None:
        kv.seed("team/api", {"token": "hand-1"})
        kv.seed("team/api", {"token": "hand-2"})

    api = contract("team", secret("api", "team", generated("token")))
    options = Options(store_factory=hooked(kv, "team/api", by_hand))
    outcome = pipeline.build(resource_list(api), kv.env, options)
    assert outcome.failed and "recorded no ownership" in messages(outcome)
    assert kv.data("team/api") == {"token": "hand-2"} and ownership.read(kv.custom("team/api")).unowned


def test_racing_contracts_that_differ_only_in_length_never_both_succeed(kv: KV) -> None:
    short = contract("alpha", secret("db", "race", static("user", "u"), generated("pass", length=16)))
    long = contract("beta", secret("db", "race", static("user", "u"), generated("pass", length=24)))
    for _ in range(3):
        for path in kv.paths():
            store(kv).delete(kv.mount, path)
        results = at_once(kv, short, long)
        assert len([o for o in results if not o.failed]) == 1, [messages(o) for o in results]


# --- 7 and 8: one Secret, one ExternalSecret --------------------------------------------------------


def test_two_externalsecrets_of_two_contracts_never_write_one_secret(kv: KV) -> None:
    a = contract("a", secret("db", "app", generated("password")))
    view = {"name": "other-view", "target": {"name": "db"}}
    b = contract("b", secret("other", "app", generated("token"), externalSecrets=[view]))
    outcome = build(kv, a, b)
    assert outcome.failed and "ExternalSecret app/other-view writes Secret app/db" in messages(outcome)
    assert kv.paths() == []


def test_a_shared_secret_joined_with_different_externalsecrets_is_refused_when_built_apart(kv: KV) -> None:
    base = secret("db", "app", static("user", "u"), generated("password"))
    assert not build(kv, contract("a", base)).failed
    templated = {**base, "externalSecret": {"target": {"template": {"data": {"password": "known"}}}}}
    slower = {**base, "externalSecret": {"refreshInterval": "24h"}}
    for other in (templated, slower):
        outcome = build(kv, contract("c", other))
        assert outcome.failed and "contract 'a' declares it differently" in messages(outcome)
    assert set(ownership.read(kv.custom("app/db")).declarations) == {"a"}
    # Within one build the same difference is named at its field.
    together = build(kv, contract("a", base), contract("c", templated))
    assert together.failed


# --- 13: rotate matches NAMESPACE/NAME and reports what it did --------------------------------------


def test_rotate_matches_namespace_and_name_and_refuses_an_ambiguous_bare_name(kv: KV) -> None:
    two = contract("demo", secret("db", "one", generated("p")), secret("db", "two", generated("p")))
    assert not build(kv, two).failed
    vault = store(kv)
    targets = resolved(kv, two).targets
    chosen = operations.plan_rotate(vault, "demo", targets, "two/db")
    assert [a.path for a in chosen.actions] == ["two/db"]
    ambiguous = operations.plan_rotate(vault, "demo", targets, "db")
    assert ambiguous.refused and not ambiguous.actions and "one/db, two/db" in messages(ambiguous.findings)


def test_a_partial_rotate_reports_what_it_rotated_before_the_failure(kv: KV) -> None:
    two = contract("demo", secret("a", "demo", generated("p")), secret("b", "demo", generated("p")))
    assert not build(kv, two).failed
    planned = operations.plan_rotate(store(kv), "demo", resolved(kv, two).targets)
    assert [a.path for a in planned.actions] == ["demo/a", "demo/b"]
    racing = HandBeforeWrite(store(kv), "demo/b", lambda: kv.seed("demo/b", {"p": "by-hand"}))
    findings = actions.apply(racing, planned.actions)
    assert "demo/a: rotated p" in messages(findings, "info") and "demo/b: failed" in messages(findings)
    assert kv.data("demo/b") == {"p": "by-hand"}


# --- low: what prune and remove find -------------------------------------------------------------


def test_prune_and_remove_find_what_the_stack_layout_left_one_level_deeper(kv: KV) -> None:
    both = contract(
        "st", secret("a", "ns", generated("p")), secret("b", "ns", generated("p")), vault={"layout": "stack"}
    )
    assert not build(kv, both).failed
    vault = store(kv)
    fewer = resolved(kv, contract("st", secret("a", "ns", generated("p")), vault={"layout": "stack"}))
    planned = operations.plan_prune(vault, fewer.contracts[0], fewer.targets)
    assert [(a.kind, a.path) for a in planned.actions] == [("delete", "st/ns/b")]
    removal = operations.plan_remove(vault, fewer.contracts[0], fewer.targets)
    assert sorted(a.path for a in removal.actions) == ["st/ns/a", "st/ns/b"]


def test_prune_releases_the_record_of_a_shared_secret_the_stack_stopped_declaring(kv: KV) -> None:
    rc = secret("rc", "redis", static("username", "admin"), generated("password"))
    own = secret("own", "app", generated("k"))
    redis, app = contract("redis", rc), contract("app", rc, own)
    assert not build(kv, redis).failed and not build(kv, app).failed
    vault = store(kv)
    app_now = contract("app", own)
    repository = operations.repository_declarations(resolved(kv, redis, app_now).targets)
    now = resolved(kv, app_now)
    planned = operations.plan_prune(vault, now.contracts[0], now.targets, repository)
    assert [(a.kind, a.path) for a in planned.actions] == [("release", "redis/rc")]
    actions.apply(vault, planned.actions)
    assert set(ownership.read(kv.custom("redis/rc")).declarations) == {"redis"}


# --- no value in any repr (a failing assertion prints reprs) -----------------------------------------


def test_no_stored_value_appears_in_the_repr_of_any_result_object(kv: KV) -> None:
    demo = contract("demo", secret("db", "demo", static("user", "static-sentinel-user"), generated("pass")))
    outcome = build(kv, demo)
    assert not outcome.failed
    values = list((kv.data(DEMO_PATH) or {}).values())
    vault = store(kv)
    targets = resolved(kv, demo).targets
    report = build(
        kv, contract("demo", secret("db", "demo", static("user", "static-sentinel-other"), generated("pass")))
    )
    values.append("static-sentinel-other")
    rotate = operations.plan_rotate(vault, "demo", targets)
    entry = vault.read(kv.mount, DEMO_PATH)
    from secret_contract import plan, sync

    states = sync.read_states(vault, targets)
    change = plan.diff(targets[0].desired, entry)
    shown = "\n".join(repr(x) for x in (outcome, report, rotate, entry, states, change, targets))
    for value in values:
        assert value not in shown


# --- a changed generator or length is said to be not applied (issue 21, item 4) ----------------------


def test_a_changed_length_is_not_applied_and_plan_and_build_name_rotate(kv: KV) -> None:
    assert not build(kv, DEMO).failed
    value = (kv.data(DEMO_PATH) or {})["pass"]
    shorter = contract("demo", secret("db", "demo", static("user", "admin"), generated("pass", length=12)))
    planned = pipeline.build(resource_list(shorter), kv.env, Options(store_factory=kv.factory(), dry_run=True))
    built = build(kv, shorter)
    for outcome in (planned, built):
        text = messages(outcome, "warning")
        assert "generator or length for 'pass' is not applied" in text
        assert "secret-contract rotate demo --secret demo/db --key pass" in text and value not in text
    assert (kv.data(DEMO_PATH) or {})["pass"] == value
    assert messages(build(kv, DEMO), "warning") == ""  # the original declaration: nothing to say


# --- found by an adversarial pass ----------------------------------------------------------------------


def test_a_record_of_an_earlier_release_still_guards_the_declaration(kv: KV) -> None:
    """Digests recorded before the ExternalSecret was part of them cover the keys alone."""
    from secret_contract.model import Desired, GeneratedKey

    old = Desired(kv.mount, DEMO_PATH, ("first",), {"user": "admin"}, {"pass": GeneratedKey("password")})
    assert not build(kv, contract("first", secret("db", "demo", static("user", "admin"), generated("pass")))).failed
    store(kv).update_metadata(kv.mount, DEMO_PATH, ownership.declare({"first": old.earlier_digest}))
    longer = contract("second", secret("db", "demo", static("user", "admin"), generated("pass", length=40)))
    refused = build(kv, longer)
    assert refused.failed and "contract 'first' declares it differently" in messages(refused)
    same = build(kv, contract("second", secret("db", "demo", static("user", "admin"), generated("pass"))))
    assert not same.failed, messages(same)


def test_a_repository_wide_setting_change_does_not_set_stacks_built_apart_against_each_other(kv: KV) -> None:
    rc = secret("rc", "redis", static("username", "admin"), generated("password"))
    assert not build(kv, contract("redis", rc)).failed and not build(kv, contract("app", rc)).failed
    for setting in ({"SECRET_CONTRACT_REFRESH_INTERVAL": "2h"}, {"SECRET_CONTRACT_STORE_NAME": "other"}):
        again = build(kv, contract("redis", rc), **setting)
        assert not again.failed, messages(again)


def test_one_stacks_own_extra_view_on_a_shared_secret_is_its_own(kv: KV) -> None:
    rc = secret("rc", "redis", static("username", "admin"), generated("password"))
    viewed = {**rc, "externalSecrets": [{"name": "rc-admin", "target": {"name": "rc-admin"}}]}
    assert not build(kv, contract("a", viewed)).failed
    joined = build(kv, contract("b", rc))
    assert not joined.failed, messages(joined)
    assert not build(kv, contract("a", viewed), contract("b", rc)).failed


def test_make_down_and_up_with_a_repository_declarer_that_differs_and_never_built(kv: KV) -> None:
    rc = secret("rc", "redis", static("username", "admin"), generated("password"))
    slow = {**rc, "externalSecret": {"refreshInterval": "24h"}}
    redis, airflow, app = contract("redis", rc), contract("airflow", slow), contract("app", rc)
    assert not build(kv, redis).failed
    vault = store(kv)
    repository = operations.repository_declarations(resolved(kv, redis, airflow, app).targets)
    assert repository[f"{kv.mount}/redis/rc"]["app"] == repository[f"{kv.mount}/redis/rc"]["redis"]
    assert repository[f"{kv.mount}/redis/rc"]["airflow"] != repository[f"{kv.mount}/redis/rc"]["redis"]
    mine = resolved(kv, redis)
    actions.apply(vault, operations.plan_remove(vault, mine.contracts[0], mine.targets, repository).actions)
    # app, which declares it as redis recorded it, keeps it; airflow, which declares it
    # otherwise, is not given redis's credential: its build is refused until it agrees.
    recorded = ownership.read(kv.custom("redis/rc")).declarations
    assert recorded == {"app": repository[f"{kv.mount}/redis/rc"]["redis"]}
    refused = build(kv, airflow)
    assert refused.failed and "contract 'app' declares it differently" in messages(refused)
    assert not build(kv, redis).failed
    assert not build(kv, contract("airflow", rc)).failed  # airflow's contract made to agree, and built


def test_a_released_or_unowned_history_is_not_taken_over_after_its_latest_version_is_deleted(kv: KV) -> None:
    kv.seed(DEMO_PATH, {"user": "admin", "pass": "old"})
    vault = store(kv)
    actions.apply(vault, operations.plan_migrate(vault, resolved(kv, DEMO).targets).actions)
    mine = resolved(kv, DEMO)
    actions.apply(vault, operations.plan_remove(vault, mine.contracts[0], mine.targets).actions)
    kv.soft_delete(DEMO_PATH)
    intruder = build(kv, contract("intruder", secret("db", "demo", static("user", "attacker"))))
    assert intruder.failed and "does not write over a history it does not own" in messages(intruder)
    assert set(ownership.read(kv.custom(DEMO_PATH)).releases) == {"demo"} and kv.versions(DEMO_PATH) == 1
    kv.seed("demo/other", {"user": "hand"})
    kv.soft_delete("demo/other")
    hand = build(kv, contract("x", secret("other", "demo", static("user", "attacker"))))
    assert hand.failed and kv.versions("demo/other") == 1


def test_a_key_held_only_by_a_deleted_earlier_version_is_not_regenerated(kv: KV) -> None:
    assert not build(kv, DEMO).failed
    kv.soft_delete(DEMO_PATH)  # v1, holding `pass`
    kv.seed(DEMO_PATH, {"user": "admin"})  # v2 without it
    outcome = build(kv, DEMO)
    assert outcome.failed and "earlier version v1 was deleted" in messages(outcome) and kv.versions(DEMO_PATH) == 2


def test_a_key_prune_dropped_is_generated_anew_when_declared_again(kv: KV) -> None:
    both = contract("demo", secret("db", "demo", static("user", "admin"), generated("pass"), generated("api")))
    assert not build(kv, both).failed
    vault = store(kv)
    fewer = resolved(kv, DEMO)
    actions.apply(vault, operations.plan_prune(vault, fewer.contracts[0], fewer.targets).actions)
    assert "api" not in (kv.data(DEMO_PATH) or {})
    again = build(kv, both)
    assert not again.failed, messages(again)
    assert "api" in (kv.data(DEMO_PATH) or {}) and ownership.DROPPED_KEY not in kv.custom(DEMO_PATH)


def test_migrate_with_delete_source_of_one_older_secret_shared_by_two_contracts_succeeds(kv: KV) -> None:
    kv.seed(DEMO_PATH, {"user": "admin", "pass": "old"})
    one = contract("one", secret("db", "demo", static("user", "admin"), generated("pass")), vault={"layout": "stack"})
    two = contract("two", secret("db", "demo", static("user", "admin"), generated("pass")), vault={"layout": "stack"})
    vault = store(kv)
    planned = operations.plan_migrate(vault, resolved(kv, one, two).targets, delete_source=True)
    assert [a.kind for a in planned.actions] == ["copy", "delete-source", "copy"]
    findings = actions.apply(vault, planned.actions)
    assert messages(findings) == "" and kv.paths() == ["one/demo/db", "two/demo/db"]


def test_no_credential_in_the_repr_of_the_vault_configuration() -> None:
    from secret_contract.vault_config import VaultConfig

    config = VaultConfig.from_env(
        {"VAULT_ADDR": "http://alice:s3cretpw@h:8200", "HTTPS_PROXY": "http://bob:proxypw@p:3128"}
    )
    assert config is not None and "s3cretpw" not in repr(config) and "proxypw" not in repr(config)


# --- a value a person provides (issue 21, item 3) ---------------------------------------------------


def provided(key: str) -> dict[str, Any]:
    return {"key": key, "provided": True}


def test_a_provided_key_is_never_written_or_deleted_and_is_reported_until_someone_writes_it(kv: KV) -> None:
    vendor = contract("demo", secret("db", "demo", static("user", "admin"), generated("pass"), provided("api-key")))
    first = build(kv, vendor)
    assert not first.failed, messages(first)
    assert set(kv.data(DEMO_PATH) or {}) == {"user", "pass"}  # never written by the tool
    assert "key 'api-key' is provided by a person" in messages(first, "warning")
    assert f"bao kv patch -mount={kv.mount} {DEMO_PATH} api-key=..." in messages(first, "warning")
    (es,) = first.externalsecrets
    assert {d["secretKey"] for d in es["spec"]["data"]} == {"user", "pass", "api-key"}  # ESO delivers it
    vault = store(kv)
    targets = resolved(kv, vendor).targets
    assert "missing key 'api-key' (provided by a person" in messages(operations.verify(vault, targets))
    kv.seed(DEMO_PATH, {**(kv.data(DEMO_PATH) or {}), "api-key": "vendor-issued"})  # a person writes it
    again = build(kv, vendor)
    assert not again.failed and messages(again, "warning") == "" and kv.versions(DEMO_PATH) == 2
    assert messages(operations.verify(vault, targets)) == ""
    mine = resolved(kv, vendor)
    pruned = operations.plan_prune(vault, mine.contracts[0], mine.targets)
    assert pruned.actions == []  # prune keeps what a person provided
    rotated = operations.plan_rotate(vault, "demo", targets, keys=("api-key",))
    assert rotated.refused and "provided by a person" in messages(rotated.findings)
    assert (kv.data(DEMO_PATH) or {})["api-key"] == "vendor-issued"


def test_a_provided_key_is_one_kind_of_entry() -> None:
    from secret_contract import contract as contract_model
    from secret_contract import krm

    for entry, said in (
        ({"key": "k", "provided": True, "value": "v"}, "not value and provided"),
        ({"key": "k", "provided": False}, "must be true"),
    ):
        obj = contract("demo", secret("db", "demo", entry))
        _, findings = contract_model.load(obj, krm.resource_ref(obj), None)
        assert any(said in f.message for f in findings), [f.message for f in findings]


def test_remove_never_destroys_a_value_a_person_provided(kv: KV) -> None:
    vendor = contract("demo", secret("db", "demo", generated("pass"), provided("api-key")))
    assert not build(kv, vendor).failed
    assert ownership.read(kv.custom(DEMO_PATH)).provided == {"api-key"}
    vault = store(kv)
    mine = resolved(kv, vendor)
    before_written = operations.plan_remove(vault, mine.contracts[0], mine.targets)
    assert [a.kind for a in before_written.actions] == ["delete"]  # nothing provided yet: nothing to lose
    kv.seed(DEMO_PATH, {**(kv.data(DEMO_PATH) or {}), "api-key": "vendor-issued"})
    planned = operations.plan_remove(vault, mine.contracts[0], mine.targets)
    assert [a.kind for a in planned.actions] == ["release"] and "api-key, provided by a person" in planned.actions[
        0
    ].note
    actions.apply(vault, planned.actions)
    assert (kv.data(DEMO_PATH) or {})["api-key"] == "vendor-issued"
    assert not build(kv, vendor).failed  # `make up` again: taken back, the vendor's key kept
    assert (kv.data(DEMO_PATH) or {})["api-key"] == "vendor-issued"


# --- release: a stack's credential stays its own --------------------------------------------------

OWN = contract("a", secret("db", "demo", static("user", "admin"), generated("pass")))
# Names a's path with another static value and another key: its build is refused while a holds it.
DIFFERING = contract("b", secret("db", "demo", static("user", "root"), generated("pass"), generated("extra")))
SAME = contract("b", secret("db", "demo", static("user", "admin"), generated("pass")))


def repository(kv: KV, *contracts: dict[str, Any]) -> dict[str, dict[str, str]]:
    """What `declared_in_repository` says for a stacks root holding `contracts`."""
    return operations.repository_declarations(resolved(kv, *contracts).targets)


def leave(kv: KV, how: Any, stack: dict[str, Any], elsewhere: dict[str, dict[str, str]]) -> actions.Planned:
    """`release` or `remove` (`how`) of one stack, carried out."""
    vault = store(kv)
    mine = resolved(kv, stack)
    planned = how(vault, mine.contracts[0], mine.targets, elsewhere)
    actions.apply(vault, planned.actions)
    return planned


def test_release_never_hands_a_credential_to_a_contract_that_declares_it_differently(kv: KV) -> None:
    assert not build(kv, OWN).failed
    before = kv.data(DEMO_PATH)
    assert build(kv, DIFFERING).failed  # refused while a holds it
    released = leave(kv, operations.plan_release, OWN, repository(kv, OWN, DIFFERING))
    assert "contract 'b' declares it differently and is not given it" in released.actions[0].note
    owners = ownership.read(kv.custom(DEMO_PATH))
    assert not owners.declarations and set(owners.releases) == {"a"}
    refused = build(kv, DIFFERING)  # `make up b`
    assert refused.failed and "released by contract 'a'" in messages(refused)
    # b's remove finds no claim of its own, even with a's contract outside the stacks root.
    assert leave(kv, operations.plan_remove, DIFFERING, repository(kv, DIFFERING)).actions == []
    back = build(kv, OWN)  # `make up a`
    assert not back.failed, messages(back)
    assert kv.data(DEMO_PATH) == before and set(ownership.read(kv.custom(DEMO_PATH)).declarations) == {"a"}
    # a leaving for good deletes what it made: b never held it.
    removed = leave(kv, operations.plan_remove, OWN, repository(kv, OWN, DIFFERING))
    assert [a.kind for a in removed.actions] == ["delete"] and kv.paths() == []


def test_a_shared_secret_released_by_one_stack_is_never_deleted_by_the_other(kv: KV) -> None:
    assert not build(kv, OWN).failed and not build(kv, SAME).failed
    before = kv.data(DEMO_PATH)
    released = leave(kv, operations.plan_release, OWN, repository(kv, OWN, SAME))
    assert released.actions[0].note.startswith("still declared by b")
    # b goes for good, with a's contract outside the scanned stacks root: a's release stands.
    removed = leave(kv, operations.plan_remove, SAME, repository(kv, SAME))
    assert [a.kind for a in removed.actions] == ["release"]
    assert "kept for contract 'a', which released it" in removed.actions[0].note
    owners = ownership.read(kv.custom(DEMO_PATH))
    assert not owners.declarations and set(owners.releases) == {"a"}
    assert not build(kv, OWN).failed and kv.data(DEMO_PATH) == before


def test_both_stacks_of_a_shared_secret_release_it_and_either_takes_it_back(kv: KV) -> None:
    assert not build(kv, OWN).failed and not build(kv, SAME).failed
    before = kv.data(DEMO_PATH)
    leave(kv, operations.plan_release, OWN, {})
    leave(kv, operations.plan_release, SAME, {})
    assert set(ownership.read(kv.custom(DEMO_PATH)).releases) == {"a", "b"}
    back = build(kv, OWN)  # `make up a` after `make down a; make down b`
    assert not back.failed, messages(back)
    assert not build(kv, SAME).failed  # b joins, and its release record goes
    owners = ownership.read(kv.custom(DEMO_PATH))
    assert set(owners.declarations) == {"a", "b"} and not owners.releases and kv.data(DEMO_PATH) == before


def test_a_claim_landing_after_a_release_does_not_let_the_joiner_delete_it(kv: KV) -> None:
    """b's build planned a metadata-only join on a's secret just before `make down a`; its
    record lands after the release. b's later `remove` must leave a's credential."""
    assert not build(kv, OWN).failed
    before = kv.data(DEMO_PATH)
    digest = resolved(kv, SAME).targets[0].desired.digest
    leave(kv, operations.plan_release, OWN, {})
    store(kv).update_metadata(kv.mount, DEMO_PATH, ownership.declare({"b": digest}))
    leave(kv, operations.plan_remove, SAME, repository(kv, SAME))
    assert kv.data(DEMO_PATH) == before
    assert not build(kv, OWN).failed and kv.data(DEMO_PATH) == before


def test_migrate_by_another_stack_never_adopts_a_released_secret(kv: KV) -> None:
    assert not build(kv, OWN).failed
    before = kv.data(DEMO_PATH)
    leave(kv, operations.plan_release, OWN, {})
    vault = store(kv)
    planned = operations.plan_migrate(vault, resolved(kv, DIFFERING).targets)
    assert planned.actions == [] and "released by contract 'a'" in messages(planned.findings)
    assert "secret-contract add a b" in messages(planned.findings)
    mine = operations.plan_migrate(vault, resolved(kv, OWN).targets)
    assert mine.actions == [] and "building it takes it back" in messages(mine.findings, "info")
    refused = build(kv, DIFFERING)
    assert refused.failed and "migrate" not in messages(refused) and kv.data(DEMO_PATH) == before


def test_remove_after_release_keeps_a_version_someone_else_wrote_since(kv: KV) -> None:
    assert not build(kv, OWN).failed
    leave(kv, operations.plan_release, OWN, {})
    written = {**(kv.data(DEMO_PATH) or {}), "api": "typed-by-hand"}
    store(kv).write(kv.mount, DEMO_PATH, written, 1)  # `bao kv put` on the kept path
    planned = leave(kv, operations.plan_remove, OWN, {})
    assert planned.actions == []
    assert "v2 may have been written by someone else after contract 'a' released it at v1" in messages(
        planned.findings, "warning"
    )
    assert kv.data(DEMO_PATH) == written


def test_a_release_recorded_by_an_earlier_version_is_still_honoured(kv: KV) -> None:
    assert not build(kv, OWN).failed
    before = kv.data(DEMO_PATH)
    earlier = {ownership.declared_key("a"): None, ownership.OWNER_KEY: None, ownership.RELEASED_KEY: "a"}
    store(kv).update_metadata(kv.mount, DEMO_PATH, earlier)
    assert build(kv, DIFFERING).failed
    assert leave(kv, operations.plan_remove, OWN, {}).actions == []  # no version recorded: not destroyed
    assert not build(kv, OWN).failed and kv.data(DEMO_PATH) == before
    assert ownership.RELEASED_KEY not in kv.custom(DEMO_PATH)


# --- a version written by hand since this tool last wrote is never destroyed ----------------------

GROWN = contract("a", secret("db", "demo", static("user", "admin"), generated("pass"), generated("api")))


def hand_write(kv: KV, **values: str) -> dict[str, str]:
    """`bao kv patch` on the path: a person's version, written with no ownership record."""
    written = {**(kv.data(DEMO_PATH) or {}), **values}
    store(kv).write(kv.mount, DEMO_PATH, written, kv.versions(DEMO_PATH))
    return written


def written_version(kv: KV) -> int | None:
    return ownership.read(kv.custom(DEMO_PATH)).written


def test_remove_keeps_a_secret_holding_a_version_written_by_hand_and_says_why(kv: KV) -> None:
    assert not build(kv, OWN).failed and written_version(kv) == 1
    written = hand_write(kv, **{"pass": "rotated-by-hand"})
    planned = leave(kv, operations.plan_remove, OWN, {})
    assert [a.kind for a in planned.actions] == ["release"]
    assert "v2 is not v1, the last version secret-contract recorded writing" in planned.actions[0].note
    assert "delete it by hand if meant" in planned.actions[0].note
    assert kv.data(DEMO_PATH) == written and kv.versions(DEMO_PATH) == 2
    # Gone for good: a second `remove` (after that release) still keeps it, and says why.
    again = leave(kv, operations.plan_remove, OWN, {})
    assert again.actions == [] and "v2 is not v1" in messages(again.findings, "warning")
    assert kv.data(DEMO_PATH) == written


def test_a_build_or_rotate_over_a_hand_written_version_does_not_make_it_the_tools(kv: KV) -> None:
    assert not build(kv, OWN).failed
    hand_write(kv, **{"pass": "rotated-by-hand"})
    grown = build(kv, GROWN)  # v3 carries the person's value forward
    assert not grown.failed, messages(grown)
    assert kv.versions(DEMO_PATH) == 3 and written_version(kv) == 1
    vault = store(kv)
    rotate = operations.plan_rotate(vault, "a", resolved(kv, GROWN).targets, keys=("api",))
    assert "`remove` will keep this secret" in rotate.actions[0].note
    actions.apply(vault, rotate.actions)
    assert (kv.data(DEMO_PATH) or {})["pass"] == "rotated-by-hand" and written_version(kv) == 1
    planned = leave(kv, operations.plan_remove, GROWN, {})
    assert [a.kind for a in planned.actions] == ["release"] and "v4 is not v1" in planned.actions[0].note
    assert (kv.data(DEMO_PATH) or {})["pass"] == "rotated-by-hand"


def test_remove_deletes_a_secret_whose_every_version_a_build_or_rotate_wrote(kv: KV) -> None:
    assert not build(kv, OWN).failed
    assert not build(kv, GROWN).failed and written_version(kv) == 2  # an update records its version
    vault = store(kv)
    actions.apply(vault, operations.plan_rotate(vault, "a", resolved(kv, GROWN).targets).actions)
    assert kv.versions(DEMO_PATH) == 3 and written_version(kv) == 3
    planned = leave(kv, operations.plan_remove, GROWN, {})
    assert [a.kind for a in planned.actions] == ["delete"] and kv.paths() == []


def test_prune_drops_keys_only_from_a_version_the_tool_wrote(kv: KV) -> None:
    assert not build(kv, GROWN).failed
    vault = store(kv)
    fewer = resolved(kv, OWN)
    hand_write(kv, api="typed-by-hand")
    kept = operations.plan_prune(vault, fewer.contracts[0], fewer.targets)
    assert kept.actions == []
    assert "keeps api: v2 is not v1, the last version secret-contract recorded writing" in messages(
        kept.findings, "warning"
    )
    assert (kv.data(DEMO_PATH) or {})["api"] == "typed-by-hand"
    # Only the tool's versions: the key is dropped and the version it writes is recorded.
    assert not build(kv, contract("c", secret("db", "other", generated("pass"), generated("api")))).failed
    other = resolved(kv, contract("c", secret("db", "other", generated("pass"))))
    dropped = operations.plan_prune(vault, other.contracts[0], other.targets)
    assert [a.kind for a in dropped.actions] == ["drop-keys"]
    actions.apply(vault, dropped.actions)
    assert "api" not in (kv.data("other/db") or {})
    assert ownership.read(kv.custom("other/db")).written == kv.versions("other/db") == 2


def test_a_secret_recorded_by_an_earlier_release_is_removed_as_before(kv: KV) -> None:
    """No `secret-contract-written-version`: its history is trusted, as earlier releases did."""
    assert not build(kv, OWN).failed
    store(kv).update_metadata(kv.mount, DEMO_PATH, {ownership.WRITTEN_KEY: None})
    hand_write(kv, **{"pass": "rotated-by-hand"})
    assert written_version(kv) is None
    planned = leave(kv, operations.plan_remove, OWN, {})
    assert [a.kind for a in planned.actions] == ["delete"] and kv.paths() == []
    # Its next data write starts the record.
    assert not build(kv, OWN).failed
    store(kv).update_metadata(kv.mount, DEMO_PATH, {ownership.WRITTEN_KEY: None})
    assert not build(kv, GROWN).failed and written_version(kv) == 2


def test_a_version_written_between_the_plan_and_the_delete_is_kept(kv: KV) -> None:
    assert not build(kv, OWN).failed
    vault = store(kv)
    mine = resolved(kv, OWN)
    planned = operations.plan_remove(vault, mine.contracts[0], mine.targets)
    assert [a.kind for a in planned.actions] == ["delete"]
    written = hand_write(kv, **{"pass": "rotated-by-hand"})  # while `remove` waits at its prompt
    findings = actions.apply(vault, planned.actions)
    assert "left as it is: it has a new version (v2, planned on v1)" in messages(findings)
    assert kv.data(DEMO_PATH) == written


def test_a_data_write_whose_record_failed_is_kept_by_remove(kv: KV) -> None:
    assert not build(kv, OWN).failed
    inner = kv.factory()
    failing = pipeline.build(
        resource_list(GROWN), kv.env, Options(store_factory=lambda config: FailingRecord(inner(config)))
    )
    assert failing.failed and kv.versions(DEMO_PATH) == 2 and written_version(kv) == 1
    planned = leave(kv, operations.plan_remove, GROWN, {})
    assert [a.kind for a in planned.actions] == ["release"] and "v2 is not v1" in planned.actions[0].note
    assert kv.versions(DEMO_PATH) == 2


def test_a_rotation_whose_record_failed_is_reported_done_naming_the_version(kv: KV) -> None:
    """The new version exists and the credential changed: `apply` says so, with a warning
    naming the version the record missed, and stops there; `remove` then keeps the secret."""
    assert not build(kv, OWN).failed
    before = kv.data(DEMO_PATH) or {}
    mine = resolved(kv, OWN)
    failing = FailingRecord(store(kv))
    planned = operations.plan_rotate(failing, "a", mine.targets)
    done: list[int] = []
    findings = actions.apply(failing, planned.actions, done=done.append)
    assert done == [0] and messages(findings) == ""
    said = messages(findings, "warning")
    assert "rotated pass (version 2" in said and "ownership record failed" in said
    assert "version 2 is not recorded as written by secret-contract" in said
    assert kv.versions(DEMO_PATH) == 2 and (kv.data(DEMO_PATH) or {})["pass"] != before["pass"]
    assert written_version(kv) == 1
    removal = leave(kv, operations.plan_remove, OWN, {})
    assert [a.kind for a in removal.actions] == ["release"] and kv.versions(DEMO_PATH) == 2


class Writes:
    """A store that counts the writes it forwards, of any kind."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.calls = inner, []

    def __getattr__(self, name: str) -> Any:
        if name in ("write", "update_metadata", "delete"):
            self.calls.append(name)
        return getattr(self.inner, name)


def test_a_no_op_build_sends_no_write(kv: KV) -> None:
    assert not build(kv, GROWN).failed
    inner = kv.factory()
    seen: list[Writes] = []

    def counting(config: Any) -> Writes:
        seen.append(Writes(inner(config)))
        return seen[-1]

    again = pipeline.build(resource_list(GROWN), kv.env, Options(store_factory=counting))
    assert not again.failed and again.findings == [] and kv.versions(DEMO_PATH) == 1
    assert seen and seen[0].calls == []
    # The measure can fail: a build that writes is seen, its record in one metadata write.
    changed = contract("a", secret("db", "demo", static("user", "root"), generated("pass"), generated("api")))
    assert not pipeline.build(resource_list(changed), kv.env, Options(store_factory=counting)).failed
    assert seen[1].calls == ["write", "update_metadata"] and written_version(kv) == 2
