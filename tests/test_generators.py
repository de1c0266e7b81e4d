import base64
import re
import string
import uuid

import pytest

from secret_contract import generators


@pytest.mark.parametrize(
    ("name", "length", "pattern"),
    [
        ("password", 24, r"[A-Za-z0-9!@#$%^&*]{24}"),
        ("password", None, r"[A-Za-z0-9!@#$%^&*]{32}"),
        ("token", 40, r"[A-Za-z0-9]{40}"),
        ("hex", 31, r"[0-9a-f]{31}"),
        ("hex", None, r"[0-9a-f]{32}"),
    ],
)
def test_generated_values_have_the_declared_alphabet_and_length(name: str, length: int | None, pattern: str) -> None:
    for _ in range(50):
        assert re.fullmatch(pattern, generators.generate(name, length))


def test_uuid_is_version_4_and_ignores_length() -> None:
    value = generators.generate("uuid", 10)
    assert uuid.UUID(value).version == 4
    assert len(value) == 36


def test_fernet_key_is_32_urlsafe_bytes() -> None:
    key = generators.generate("fernet")
    assert len(key) == 44
    assert len(base64.urlsafe_b64decode(key)) == 32


def test_values_do_not_repeat() -> None:
    assert len({generators.generate("token", 16) for _ in range(500)}) == 500


def test_random_string_is_unbiased_over_the_alphabet() -> None:
    # 62 symbols do not divide 256: a modulo without rejection would favour the first 8.
    sample = generators.random_string(generators.TOKEN_ALPHABET, 62 * 2000)
    counts = [sample.count(c) for c in generators.TOKEN_ALPHABET]
    assert max(counts) / min(counts) < 1.35
    first8 = sum(counts[:8]) / 8
    rest = sum(counts[8:]) / (len(counts) - 8)
    assert abs(first8 - rest) / rest < 0.05


def test_registry_adds_a_generator_with_one_function() -> None:
    @generators.register("digits-test", default_length=6, pattern=r"[0-9]{n}")
    def digits(length: int) -> str:
        """0-9."""
        return generators.random_string(string.digits, length)

    try:
        value = generators.generate("digits-test")
        assert re.fullmatch(r"[0-9]{6}", value) and generators.implausible("digits-test", None, value) is None
        assert generators.implausible("digits-test", None, "12345a") is not None
    finally:
        del generators.GENERATORS["digits-test"]


def test_every_generator_makes_values_its_own_check_accepts() -> None:
    for name, gen in generators.GENERATORS.items():
        lengths = [None] if gen.length != "used" else [None, gen.min_length, gen.min_length + 1]
        for length in lengths:
            assert generators.implausible(name, length, generators.generate(name, length)) is None, (name, length)


def test_values_no_generator_makes_are_named_without_quoting_them() -> None:
    cases = {
        ("fernet", None, "A" * 32): "is not a value the 'fernet' generator makes",  # the older script's fernet keys
        ("fernet", None, "A" * 43 + "="): None,
        ("hex", 6, "abcdeg"): "is not a value the 'hex' generator makes",
        ("uuid", None, "12345678-1234-1234-1234-123456789012"): "is not a value the 'uuid' generator makes",
        ("password", 12, ""): "is empty",
        ("token", 8, "abcdefgh"): None,
    }
    for (name, length, value), expected in cases.items():
        problem = generators.implausible(name, length, value)
        assert (problem is None) == (expected is None) and (expected is None or expected in problem), (name, value)
        assert problem is None or not value or value not in problem
