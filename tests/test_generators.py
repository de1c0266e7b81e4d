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
    @generators.register("digits-test", default_length=6)
    def digits(length: int) -> str:
        return generators.random_string(string.digits, length)

    try:
        assert re.fullmatch(r"[0-9]{6}", generators.generate("digits-test"))
        assert generators.get("digits-test").default_length == 6
    finally:
        del generators.GENERATORS["digits-test"]
