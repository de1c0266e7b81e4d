"""Generated values: a registry of named generators, each one small function.

Every value comes from `secrets` (the OS CSPRNG). Adding a generator is one decorated
function; validation, documentation and the error for unknown names read this registry.
"""

from __future__ import annotations

import base64
import secrets
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

LengthUse = Literal["used", "ignored", "forbidden"]


@dataclass(frozen=True)
class Generator:
    name: str
    make: Callable[[int], str]
    default_length: int
    min_length: int = 1
    max_length: int = 4096
    length: LengthUse = "used"
    description: str = ""


GENERATORS: dict[str, Generator] = {}


def register(
    name: str,
    *,
    default_length: int,
    min_length: int = 1,
    max_length: int = 4096,
    length: LengthUse = "used",
) -> Callable[[Callable[[int], str]], Callable[[int], str]]:
    def add(make: Callable[[int], str]) -> Callable[[int], str]:
        GENERATORS[name] = Generator(
            name, make, default_length, min_length, max_length, length, (make.__doc__ or "").strip()
        )
        return make

    return add


def get(name: str) -> Generator | None:
    return GENERATORS.get(name)


def generate(name: str, length: int | None = None) -> str:
    """A fresh value from generator `name` (validated beforehand, so a bad name is a bug)."""
    gen = GENERATORS[name]
    return gen.make(gen.default_length if length is None or gen.length != "used" else length)


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


@register("password", default_length=32, min_length=8, max_length=1024)
def password(length: int) -> str:
    """A-Z a-z 0-9 and !@#$%^&*."""
    return random_string(PASSWORD_ALPHABET, length)


@register("token", default_length=32, max_length=4096)
def token(length: int) -> str:
    """A-Z a-z 0-9."""
    return random_string(TOKEN_ALPHABET, length)


@register("hex", default_length=32, max_length=4096)
def hex_string(length: int) -> str:
    """0-9 a-f, exactly `length` characters."""
    return secrets.token_hex((length + 1) // 2)[:length]


@register("uuid", default_length=36, length="ignored")
def uuid4(_length: int) -> str:
    """An RFC 4122 version 4 UUID."""
    return str(uuid.UUID(bytes=secrets.token_bytes(16), version=4))


@register("fernet", default_length=44, length="forbidden")
def fernet(_length: int) -> str:
    """A Fernet key: url-safe base64 of 32 random bytes."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")
