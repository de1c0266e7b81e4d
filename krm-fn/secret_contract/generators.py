"""Generated values: a registry of named generators, each one small function.

Every value comes from `secrets` (the OS CSPRNG). Adding a generator is one decorated
function with the pattern its values match (and, where a pattern cannot say it all, a check
of its own); validation, `verify` and the error for unknown names read this registry.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

LengthUse = Literal["used", "ignored", "forbidden"]


@dataclass(frozen=True)
class Generator:
    name: str
    make: Callable[[int], str]
    default_length: int
    pattern: str  # a regular expression every value of it matches (`{n}` is the length)
    min_length: int = 1
    max_length: int = 4096
    length: LengthUse = "used"
    # What the pattern cannot say about a value (why it is not one of this generator's), or None.
    check: Callable[[str], str | None] | None = None


GENERATORS: dict[str, Generator] = {}


def register(
    name: str,
    *,
    default_length: int,
    pattern: str,
    min_length: int = 1,
    max_length: int = 4096,
    length: LengthUse = "used",
    check: Callable[[str], str | None] | None = None,
) -> Callable[[Callable[[int], str]], Callable[[int], str]]:
    def add(make: Callable[[int], str]) -> Callable[[int], str]:
        GENERATORS[name] = Generator(name, make, default_length, pattern, min_length, max_length, length, check)
        return make

    return add


def get(name: str) -> Generator | None:
    return GENERATORS.get(name)


def effective_length(name: str, length: int | None) -> int | None:
    """The length a value of `name` has: the declared one, else the default; None where the
    generator fixes it."""
    gen = GENERATORS.get(name)
    if gen is None or gen.length != "used":
        return None
    return gen.default_length if length is None else length


def generate(name: str, length: int | None = None) -> str:
    """A fresh value from generator `name` (validated beforehand, so a bad name is a bug)."""
    gen = GENERATORS[name]
    return gen.make(effective_length(name, length) or gen.default_length)


def implausible(name: str, length: int | None, value: str) -> str | None:
    """Why `value` cannot have come from generator `name` (never quoting it), or None."""
    gen = GENERATORS.get(name)
    if gen is None:
        return None
    if not value:
        return "is empty"
    size = effective_length(name, length)
    pattern = gen.pattern.replace("{n}", f"{{{size}}}") if size is not None else gen.pattern
    if not re.fullmatch(pattern, value):
        shape = f"{size} characters of " if size is not None else ""
        return f"is not a value the '{name}' generator makes ({shape}{gen.make.__doc__ or name})"
    return gen.check(value) if gen.check is not None else None


def random_string(alphabet: str, length: int) -> str:
    """`length` characters drawn uniformly from `alphabet`.

    Draws bytes in bulk and rejects those past the largest multiple of the alphabet size,
    which keeps the choice unbiased and is ~10x faster than `secrets.choice` per character.
    """
    size = len(alphabet)
    limit = 256 - 256 % size
    out: list[str] = []
    while len(out) < length:
        for byte in secrets.token_bytes(length - len(out) + 8):
            if byte < limit:
                out.append(alphabet[byte % size])
                if len(out) == length:
                    break
    return "".join(out)


PASSWORD_ALPHABET = string.ascii_letters + string.digits + "!@#$%^&*"
TOKEN_ALPHABET = string.ascii_letters + string.digits


@register("password", default_length=32, pattern=r"[A-Za-z0-9!@#$%^&*]{n}", min_length=8, max_length=1024)
def password(length: int) -> str:
    """A-Z a-z 0-9 and !@#$%^&*."""
    return random_string(PASSWORD_ALPHABET, length)


@register("token", default_length=32, pattern=r"[A-Za-z0-9]{n}", max_length=4096)
def token(length: int) -> str:
    """A-Z a-z 0-9."""
    return random_string(TOKEN_ALPHABET, length)


@register("hex", default_length=32, pattern=r"[0-9a-f]{n}", max_length=4096)
def hex_string(length: int) -> str:
    """0-9 a-f, exactly `length` characters."""
    return secrets.token_hex((length + 1) // 2)[:length]


@register(
    "uuid",
    default_length=36,
    pattern=r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
    length="ignored",
)
def uuid4(_length: int) -> str:
    """An RFC 4122 version 4 UUID."""
    import uuid  # only when one is generated: importing it costs more than a small build's work

    return str(uuid.UUID(bytes=secrets.token_bytes(16), version=4))


def _fernet_problem(value: str) -> str | None:
    try:
        if len(base64.urlsafe_b64decode(value.encode("ascii"))) == 32:
            return None
    except (binascii.Error, ValueError):
        pass
    return "is not a Fernet key (url-safe base64 of 32 bytes)"


@register("fernet", default_length=44, pattern=r"[A-Za-z0-9_-]{43}=", length="forbidden", check=_fernet_problem)
def fernet(_length: int) -> str:
    """A Fernet key: url-safe base64 of 32 random bytes."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")
