"""The pure planning step: what a build may write, given what Vault holds."""

from secret_contract import ownership, plan, policy
from secret_contract.model import Desired, GeneratedKey
from secret_contract.store import Entry

DESIRED = Desired(
    mount="secret",
    path="ns/db",
    stacks=("app",),
    static={"username": "postgres", "port": "5432"},
    generated={"password": GeneratedKey("password", 24)},
    former_paths=("app/ns/db",),
)
OWNED = ownership.claim(DESIRED.declarations(), ownership.CREATED)
FULL = {"username": "postgres", "port": "5432", "password": "kept"}


def owned_by(stack: str, digest: str = "f" * 16) -> dict[str, str | None]:
    return ownership.claim({stack: digest}, ownership.CREATED)


def test_a_missing_secret_is_created_with_cas_zero_and_claimed() -> None:
    change = plan.diff(DESIRED, None)
    assert (change.action, change.cas) == ("create", 0)
    assert change.set_static == {"username": "postgres", "port": "5432"} and set(change.generate) == {"password"}
    assert change.metadata[ownership.OWNER_KEY] == "app" and change.metadata[ownership.ORIGIN_KEY] == "created"


def test_a_satisfied_secret_is_a_no_op_without_writes() -> None:
    change = plan.diff(DESIRED, Entry(FULL, 3, OWNED))
    assert change.action == "noop" and not change.writes


def test_a_generated_key_with_a_value_is_never_regenerated() -> None:
    assert plan.diff(DESIRED, Entry({**FULL, "password": "x"}, 1, OWNED)).generate == {}


def test_a_new_key_is_added_and_the_others_kept() -> None:
    desired = Desired(
        "secret", "ns/db", ("app",), DESIRED.static, {**DESIRED.generated, "token": GeneratedKey("token")}
    )
    change = plan.diff(desired, Entry(FULL, 2, ownership.claim(desired.declarations(), ownership.CREATED)))
    assert (change.action, change.cas, set(change.generate)) == ("update", 2, {"token"})
    assert change.keep == FULL


def test_a_changed_static_value_is_updated_and_the_declaration_recorded_again() -> None:
    change = plan.diff(DESIRED, Entry({**FULL, "username": "admin"}, 4, owned_by("app")))
    assert change.set_static == {"username": "postgres"} and "username" not in change.keep
    assert change.metadata == ownership.declare(DESIRED.declarations())


def test_keys_that_left_the_contract_are_kept() -> None:
    change = plan.diff(DESIRED, Entry({**FULL, "legacy": "old"}, 5, OWNED))
    assert change.action == "noop"


def test_a_deleted_history_is_blocked_when_keys_are_generated() -> None:
    for latest in ("deleted", "destroyed"):
        change = plan.diff(DESIRED, Entry({}, 7, OWNED, latest, "2026-01-01T00:00:00Z"))
        assert change.action == "blocked" and not change.writes
        assert "v7" in change.reason and "2026-01-01T00:00:00Z" in change.reason


def test_a_deleted_static_only_secret_is_written_again() -> None:
    statics = Desired("secret", "ns/db", ("app",), {"username": "postgres"})
    change = plan.diff(statics, Entry({}, 7, OWNED, "deleted"))
    assert (change.action, change.cas, change.recreated) == ("update", 7, True)


def test_a_metadata_only_entry_of_nobody_is_created() -> None:
    assert plan.diff(DESIRED, Entry({}, 0, {}, "none")).action == "create"


def test_another_tool_or_contract_is_a_conflict() -> None:
    pushed = plan.diff(DESIRED, Entry({}, 0, {"managed-by": "external-secrets"}, "none"))
    assert pushed.action == "conflict" and "external-secrets" in pushed.reason
    other = plan.diff(DESIRED, Entry({**FULL, "port": "1"}, 1, owned_by("other")))
    assert other.action == "conflict" and "contract 'other'" in other.reason
    reserved = plan.diff(DESIRED, Entry({}, 0, owned_by("other"), "none"))
    assert reserved.action == "conflict" and "reserved" in reserved.reason


def test_an_agreeing_contract_joins_a_shared_secret() -> None:
    change = plan.diff(DESIRED, Entry(FULL, 1, owned_by("other", DESIRED.digest)))
    assert change.action == "claim" and not change.writes_data
    assert change.metadata == ownership.declare({"app": DESIRED.digest})


def test_a_build_never_takes_over_unowned_values() -> None:
    matching = plan.diff(DESIRED, Entry(FULL, 3, {}))
    assert matching.action == "blocked" and "migrate" in matching.reason and not matching.metadata
    assert matching.awaiting_owner  # re-read first: it may be a concurrent build's write
    differing = plan.diff(DESIRED, Entry({"username": "postgres"}, 3, {}))
    assert differing.action == "blocked" and "migrate" in differing.reason and not differing.awaiting_owner


def test_after_a_lost_race_unowned_values_are_joined_only_once_their_ownership_record_lands() -> None:
    # Unowned data that matches: wait for the winner's record; never claim it as created.
    same = plan.diff(DESIRED, Entry(FULL, 2, {}), raced=True)
    assert same.action == "conflict" and same.awaiting_owner and not same.metadata
    assert "recorded no ownership" in same.reason and "migrate" in same.reason
    other = plan.diff(DESIRED, Entry({**FULL, "username": "x"}, 1, {}), raced=True)
    assert other.action == "conflict" and not other.awaiting_owner
    # Once the record of a build of this tool is there, the usual rules apply: a join.
    joined = plan.diff(DESIRED, Entry(FULL, 1, owned_by("other", DESIRED.digest)), raced=True)
    assert joined.action == "claim" and ownership.ORIGIN_KEY not in joined.metadata


def test_a_declaration_differing_only_in_generator_or_length_conflicts_after_a_race() -> None:
    longer = Desired(DESIRED.mount, DESIRED.path, ("app",), DESIRED.static, {"password": GeneratedKey("password", 40)})
    change = plan.diff(longer, Entry(FULL, 1, owned_by("other", DESIRED.digest)), raced=True)
    assert change.action == "conflict" and "'other'" in change.reason


def test_a_generated_key_an_earlier_version_holds_is_never_regenerated() -> None:
    change = plan.diff(
        DESIRED, Entry({"username": "postgres", "port": "5432"}, 2, OWNED), history=plan.History({"password": 1})
    )
    assert change.action == "blocked" and not change.writes
    assert "'password' (v1)" in change.reason and "latest version (v2)" in change.reason
    assert "kv rollback -mount=secret -version=1 ns/db" in change.reason and "rotate" in change.reason
    # A key no version ever held is generated, as before.
    gained = plan.diff(DESIRED, Entry({"username": "postgres", "port": "5432"}, 2, OWNED), history=plan.History())
    assert gained.action == "update" and set(gained.generate) == {"password"}
    # An earlier version that was deleted may hold it: refused too, naming how to look.
    hidden = plan.diff(
        DESIRED, Entry({"username": "postgres", "port": "5432"}, 3, OWNED), history=plan.History({}, (1,))
    )
    assert hidden.action == "blocked" and "v1 was deleted" in hidden.reason and "kv undelete" in hidden.reason
    # A key `prune` dropped was left behind on purpose: declared again, it is generated anew.
    dropped = {**OWNED, **ownership.record_dropped({"password"})}
    again = plan.diff(
        DESIRED, Entry({"username": "postgres", "port": "5432"}, 2, dropped), history=plan.History({"password": 1})
    )
    assert again.action == "update" and set(again.generate) == {"password"}
    assert again.metadata[ownership.DROPPED_KEY] is None


def test_values_another_contract_owns_at_a_former_path_are_its_live_secret_not_older_data() -> None:
    change = plan.diff(DESIRED, None, {"shared/db": Entry(FULL, 2, owned_by("stack-a", DESIRED.digest))})
    assert change.action == "conflict" and "live secret of contract 'stack-a'" in change.reason
    assert "secret-contract migrate" not in change.reason
    # The same stack's own secret at its former location may be moved.
    own = plan.diff(DESIRED, None, {"shared/db": Entry(FULL, 2, owned_by("app", DESIRED.digest))})
    assert own.action == "blocked" and "migrate app" in own.reason


def test_a_released_secret_is_taken_back_only_by_the_stack_that_released_it() -> None:
    owners = ownership.read(OWNED)
    released = {**OWNED, **ownership.release(owners, "app", remaining=[], at=1)}
    released = {k: v for k, v in released.items() if v is not None}
    back = plan.diff(DESIRED, Entry(FULL, 1, released))
    assert back.action == "claim" and back.metadata[ownership.released_key("app")] is None
    assert back.metadata[ownership.OWNER_KEY] == "app"
    stranger = Desired(DESIRED.mount, DESIRED.path, ("intruder",), DESIRED.static, DESIRED.generated)
    refused = plan.diff(stranger, Entry(FULL, 1, released))
    assert refused.action == "blocked" and "released by contract 'app'" in refused.reason and not refused.writes


def test_values_at_a_former_path_are_never_forked() -> None:
    change = plan.diff(DESIRED, None, {"app/ns/db": Entry(FULL, 1, {})})
    assert change.action == "blocked" and "secret/app/ns/db" in change.reason and "migrate app" in change.reason


def test_the_digest_ignores_key_order_and_a_spelled_out_default_length() -> None:
    one = Desired("m", "p", ("a",), {"u": "x"}, {"p": GeneratedKey("password")})
    two = Desired("m", "p", ("b",), {"u": "x"}, {"p": GeneratedKey("password", 32)})
    assert one.digest == two.digest
    assert one.digest != Desired("m", "p", ("a",), {"u": "y"}, {"p": GeneratedKey("password")}).digest


def test_the_digest_covers_the_externalsecret_and_an_earlier_releases_digest_still_guards_the_keys() -> None:
    one = Desired("m", "p", ("a",), {"u": "x"}, delivery="one")
    assert one.digest != Desired("m", "p", ("a",), {"u": "x"}, delivery="two").digest
    assert one.agrees(one.digest) and not one.agrees(Desired("m", "p", ("a",), {"u": "x"}, delivery="two").digest)
    # A record of an earlier release covers the keys alone, and is compared as such.
    assert one.agrees(Desired("m", "p", ("b",), {"u": "x"}, delivery="two").earlier_digest)
    assert not one.agrees(Desired("m", "p", ("b",), {"u": "y"}).earlier_digest)
    longer = Desired(DESIRED.mount, DESIRED.path, ("app",), DESIRED.static, {"password": GeneratedKey("password", 40)})
    old_record = owned_by("other", DESIRED.earlier_digest)
    assert plan.diff(longer, Entry(FULL, 1, old_record)).action == "conflict"
    assert plan.diff(DESIRED, Entry(FULL, 1, old_record)).action == "claim"


def test_summary_names_keys_never_values() -> None:
    summary = plan.diff(DESIRED, None).summary()
    assert "postgres" not in summary and "password" in summary


def test_gaps_name_missing_secrets_keys_and_stale_static_values() -> None:
    assert plan.gaps(DESIRED, None) == ["missing secret"]
    assert plan.gaps(DESIRED, Entry({"username": "admin", "password": "p" * 24}, 1, OWNED)) == [
        "key 'username' differs from the contract's value",
        "missing key 'port'",
    ]
    assert plan.gaps(DESIRED, Entry({**FULL, "password": "p" * 24}, 1, OWNED)) == []


def test_a_version_newer_than_the_one_recorded_as_written_is_released_never_deleted() -> None:
    def dispose(written: str | None, version: int) -> policy.Disposal | None:
        custom = {**OWNED, **({ownership.WRITTEN_KEY: written} if written is not None else {})}
        return policy.dispose(ownership.read(custom), "app", {}, frozenset(FULL), version)

    assert dispose("3", 3) == policy.Disposal("delete")
    assert dispose(None, 3) == policy.Disposal("delete")  # recorded by an earlier release: as before
    for written in ("2", "not-a-version"):  # unreadable: every version counts as someone else's
        kept = dispose(written, 3)
        assert kept is not None and kept.kind == "release" and "v3 is not v" in kept.note
    # A build over a person's version carries its values forward: not recorded as the tool's.
    stale = {**FULL, "username": "root"}
    over_foreign = plan.diff(DESIRED, Entry(stale, 3, {**OWNED, ownership.WRITTEN_KEY: "2"}))
    assert over_foreign.action == "update" and not over_foreign.records_version
    over_own = plan.diff(DESIRED, Entry(stale, 3, {**OWNED, ownership.WRITTEN_KEY: "3"}))
    assert over_own.action == "update" and over_own.records_version
