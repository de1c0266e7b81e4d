"""Credentials out of text that came from elsewhere: a server's error, an exception's message.

Servers and proxies echo what they were sent (the body, and sometimes every header), so any
text from outside is scrubbed before it is shown: of every credential this client holds, in
each form it travels in (a token, a user name and password, their Basic header value), and of
whatever follows a credential-carrying header's name, for credentials it never knew (a bearer
token a registry's auth service handed out).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from functools import cache
from urllib.parse import unquote

SCRUB_MIN = 3  # shorter strings are not scrubbed from server text (they would shred it)
MASK = "***"
_CREDENTIAL_HEADERS = r"authorization|proxy-authorization|x-vault-token|x-registry-auth|cookie|set-cookie"


@cache
def _header_value() -> re.Pattern[str]:
    """A header's name, a separator as text or JSON writes it (`: `, `=`, `": "`), an optional
    scheme, and the value up to the next delimiter. Compiled on first use: only error text needs it."""
    return re.compile(
        rf"(?i)\b({_CREDENTIAL_HEADERS})([\"']?\s*[:=]\s*[\"']?)((?:basic|bearer|token|negotiate)\s+)?[^\s\"',;}}\]]+"
    )


def basic_forms(username: str | None, password: str | None) -> list[str]:
    """Every form a user name and password travel in: as given, URL-decoded, and the value of
    the Basic header they make."""
    if not username and not password:
        return []
    forms = [username or "", password or "", unquote(username or ""), unquote(password or "")]
    pair = f"{unquote(username or '')}:{unquote(password or '')}"
    forms += [pair, base64.b64encode(pair.encode()).decode()]
    return [form for form in forms if form]


def reason(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """An exception's text on one line, scrubbed, at most 300 characters (else its type's
    name): a server may echo the request's headers in its errors. Scrubbed before the cut, since
    a credential cut in half would no longer match."""
    return scrub(" ".join(str(exc).split()), secrets)[:300] or type(exc).__name__


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` without any of `secrets` (longest first) and without credential header values."""
    for value in sorted({v for v in secrets if len(v) >= SCRUB_MIN}, key=len, reverse=True):
        text = text.replace(value, MASK)
    return _header_value().sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3) or ''}{MASK}", text)
