"""The schema-result cache in ~/.cache/secret-contract: remembered between runs, and bounded."""

from __future__ import annotations

import os
from pathlib import Path

from secret_contract import validation_cache
from secret_contract.validation_cache import ValidationCache

# The bound the first test prunes against: small, so it lists the folder a few hundred times,
# not a thousand times a thousand entries.
BOUND = 40


def cache_at(tmp_path: Path, max_entries: int = validation_cache.MAX_ENTRIES) -> ValidationCache:
    return ValidationCache.from_env({"XDG_CACHE_HOME": str(tmp_path)}, schema_text="{}", max_entries=max_entries)


def entries(tmp_path: Path) -> int:
    return len(os.listdir(tmp_path / "secret-contract" / "schema-ok"))


def test_the_cache_never_grows_past_its_bound_and_keeps_what_was_used_lately(tmp_path: Path) -> None:
    cache = cache_at(tmp_path, max_entries=BOUND)
    used = cache.key({"name": "used-all-along"})
    cache.remember(used)
    os.utime(tmp_path / "secret-contract" / "schema-ok" / str(used), ns=(0, 0))  # remembered first
    for n in range(BOUND * 5 // 2 + 50):  # pruned more than once
        key = cache.key({"name": f"contract-{n}"})
        cache.remember(key)
        # An mtime apart from the rest, as on a filesystem with coarse timestamps it might not be.
        os.utime(tmp_path / "secret-contract" / "schema-ok" / str(key), ns=(n * 10**9, n * 10**9))
        if n % (BOUND // 10) == 0:
            assert cache.known(used)  # a build of this contract hit the cache just now
        assert entries(tmp_path) <= BOUND
    assert entries(tmp_path) > validation_cache.keep_entries(BOUND) // 2
    assert cache.known(used)
    assert not cache.known(cache.key({"name": "contract-0"}))  # the least recently used went first
    assert cache.known(cache.key({"name": f"contract-{BOUND * 5 // 2 + 49}"}))


def test_the_cache_is_bounded_by_default(tmp_path: Path) -> None:
    assert cache_at(tmp_path).max_entries == validation_cache.MAX_ENTRIES == 1000


def test_a_cache_that_is_turned_off_remembers_nothing(tmp_path: Path) -> None:
    cache = ValidationCache.from_env(
        {"XDG_CACHE_HOME": str(tmp_path), validation_cache.DISABLE_ENV: "false"}, schema_text="{}"
    )
    key = cache.key({"name": "x"})
    cache.remember(key)
    assert not cache.known(key) and not (tmp_path / "secret-contract").exists()
