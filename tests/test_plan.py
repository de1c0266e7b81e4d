"""The pure planning step: what a build writes, given what Vault holds."""

from secret_contract import plan
from secret_contract.plan import Current, Desired, GeneratedKey

DESIRED = Desired(
    path="app/ns/db",
    owner="app",
    static={"username": "postgres", "port": "5432"},
    generated={"password": GeneratedKey("password", 24)},
)
OWNED = plan.ownership_metadata("app")


def test_missing_secret_is_created_with_cas_zero_and_claimed() -> None:
    change = plan.diff(DESIRED, None)
    assert (change.action, change.cas, change.claim) == ("create", 0, True)
    assert change.set_static == {"username": "postgres", "port": "5432"}
    assert set(change.generate) == {"password"}


def test_satisfied_secret_is_a_noop_without_writes() -> None:
    current = Current({"username": "postgres", "port": "5432", "password": "x"}, 3, OWNED)
    change = plan.diff(DESIRED, current)
    assert change.action == "noop"
    assert not change.writes_data and not change.claim


def test_generated_key_with_a_value_is_never_regenerated() -> None:
    current = Current({"username": "postgres", "port": "5432", "password": "kept"}, 1, OWNED)
    assert plan.diff(DESIRED, current).generate == {}


def test_new_key_is_added_and_others_are_kept() -> None:
    current = Current({"username": "postgres", "port": "5432", "password": "kept"}, 2, OWNED)
    desired = Desired(DESIRED.path, "app", DESIRED.static, {**DESIRED.generated, "token": GeneratedKey("token")})
    change = plan.diff(desired, current)
    assert (change.action, change.cas) == ("update", 2)
    assert set(change.generate) == {"token"}
    assert change.keep == {"username": "postgres", "port": "5432", "password": "kept"}


def test_changed_static_value_is_updated() -> None:
    current = Current({"username": "admin", "port": "5432", "password": "kept"}, 4, OWNED)
    change = plan.diff(DESIRED, current)
    assert change.set_static == {"username": "postgres"}
    assert change.keep == {"port": "5432", "password": "kept"}


def test_key_that_left_the_contract_is_kept() -> None:
    current = Current({"username": "postgres", "port": "5432", "password": "p", "legacy": "old"}, 5, OWNED)
    assert plan.diff(DESIRED, current).action == "noop"
    desired = Desired(DESIRED.path, "app", {"username": "root"}, DESIRED.generated)
    assert "legacy" in plan.diff(desired, current).keep


def test_soft_deleted_secret_is_recreated_at_the_next_version() -> None:
    change = plan.diff(DESIRED, Current({}, 7, OWNED, deleted=True))
    assert (change.action, change.cas, change.recreated) == ("update", 7, True)
    assert set(change.generate) == {"password"}


def test_secret_of_another_contract_or_tool_is_a_conflict() -> None:
    other = Current({"password": "x"}, 1, plan.ownership_metadata("other-app"))
    assert plan.diff(DESIRED, other).action == "conflict"
    pushed = Current({"password": "x"}, 1, {"managed-by": "external-secrets"})
    assert "external-secrets" in plan.diff(DESIRED, pushed).reason


def test_unowned_existing_secret_is_adopted_without_rewriting_values() -> None:
    current = Current({"username": "postgres", "port": "5432", "password": "old-script"}, 1, {})
    change = plan.diff(DESIRED, current)
    assert change.action == "noop" and change.claim


def test_summary_names_keys_never_values() -> None:
    change = plan.diff(DESIRED, None)
    assert "postgres" not in change.summary()
    assert "password" in change.summary()


def test_gaps_name_missing_secrets_keys_and_stale_static_values() -> None:
    assert plan.gaps(DESIRED, None) == ["missing secret"]
    current = Current({"username": "admin", "password": "p"}, 1, OWNED)
    assert plan.gaps(DESIRED, current) == ["key 'username' differs from the contract's value", "missing key 'port'"]
    full = Current({"username": "postgres", "port": "5432", "password": "p"}, 1, OWNED)
    assert plan.gaps(DESIRED, full) == []
