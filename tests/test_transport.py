"""How the function talks to Vault when the network is not simple: an HA standby's redirect,
corporate proxies, answers that are not Vault's, servers that drip or flood, and anything
that could carry a credential or a value into a message. Real servers on loopback only."""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from builders import DEMO, DEMO_PATH, generator_input, in_process
from conftest import Ran, Vault, assert_no_leak, secret_contract
from faults import Answer, answering_server, forwarding_proxy
from peak_rss import run_measured
from secret_contract import yaml_codec


def build(env: dict[str, str], strict: bool = False) -> Ran:
    return secret_contract(stdin=generator_input(DEMO), env={**env, "SECRET_CONTRACT_STRICT": str(strict).lower()})


def build_in_process(env: dict[str, str], strict: bool = False) -> Ran:
    """`build` in this process: for what is decided before a request reaches a server."""
    return in_process(stdin=generator_input(DEMO), env={**env, "SECRET_CONTRACT_STRICT": str(strict).lower()})


def clean(ran: Ran) -> None:
    """A handled failure: a message, a ResourceList, no traceback."""
    assert "Traceback" not in ran.stderr and "unexpected error" not in ran.stderr
    assert yaml_codec.load(ran.stdout)["kind"] == "ResourceList"


# --- HA standby redirects -----------------------------------------------------------------------


def test_a_standby_redirect_is_followed_to_the_active_node(vault: Vault) -> None:
    seen: list[str] = []

    def standby(method: str, path: str, _body: bytes) -> Answer:
        seen.append(f"{method} {path}")
        return 307, {"Location": f"{vault.server.addr}{path}"}, b""

    with answering_server(standby) as front:
        ran = build({**vault.env, "VAULT_ADDR": front}, strict=True)
    assert ran.returncode == 0, ran.stderr
    assert vault.read(DEMO_PATH) is not None and any("/data/" in s for s in seen)


def test_a_redirect_loop_or_a_redirect_without_location_is_a_clear_error(vault: Vault) -> None:
    with answering_server(lambda _m, p, _b: (307, {"Location": p}, b"")) as loop:
        ran = build({**vault.env, "VAULT_ADDR": loop}, strict=True)
        assert ran.returncode == 1 and f"{loop}: HTTP 307 redirect" in ran.stderr
        clean(ran)
    with answering_server(lambda *_: (302, {}, b"")) as nowhere:
        ran = build({**vault.env, "VAULT_ADDR": nowhere}, strict=True)
        assert ran.returncode == 1 and "without a usable Location" in ran.stderr
        clean(ran)


def test_a_redirect_from_https_to_http_is_refused(vault: Vault, tmp_path: Path) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert, key = tmp_path / "front.pem", tmp_path / "front.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context.load_cert_chain(cert, key)
    with answering_server(lambda _m, p, _b: (307, {"Location": f"{vault.server.addr}{p}"}, b""), context) as front:
        ran = build({**vault.env, "VAULT_ADDR": front, "VAULT_CACERT": str(cert)}, strict=True)
    assert ran.returncode == 1 and "refusing a redirect from https to http" in ran.stderr
    assert vault.paths() == []
    clean(ran)


# --- proxies -------------------------------------------------------------------------------------


def test_http_proxy_and_no_proxy_are_honoured(vault: Vault) -> None:
    port = int(vault.server.addr.rsplit(":", 1)[1])
    addr = f"http://vault.test:{port}"
    with forwarding_proxy({"vault.test": port}) as (proxy, seen):
        env = {**vault.env, "VAULT_ADDR": addr, "HTTP_PROXY": proxy}
        ran = build(env, strict=True)
        assert ran.returncode == 0, ran.stderr
        assert any(line.startswith("POST http://vault.test") for line in seen)
        assert vault.read(DEMO_PATH) is not None
        direct = build({**env, "NO_PROXY": "vault.test"}, strict=True)
        assert direct.returncode == 1 and f"{addr}: cannot connect to Vault" in direct.stderr
        count = len(seen)
        explicit = build({**vault.env, "VAULT_ADDR": addr, "VAULT_PROXY_ADDR": proxy}, strict=True)
        assert explicit.returncode == 0 and len(seen) > count


def test_https_goes_through_a_connect_tunnel(tls_server: tuple[int, str, Path]) -> None:
    port, token, ca = tls_server
    with forwarding_proxy({"vault.test": port}) as (proxy, seen):
        env = {
            "VAULT_ADDR": f"https://vault.test:{port}",
            "VAULT_TOKEN": token,
            "VAULT_CACERT": str(ca),
            "VAULT_TLS_SERVER_NAME": "localhost",
            "HTTPS_PROXY": proxy,
            "SECRET_CONTRACT_VAULT_MOUNT": "secret",
        }
        ran = build(env, strict=True)
    assert ran.returncode == 0, ran.stderr
    assert seen and all(line.startswith(f"CONNECT vault.test:{port}") for line in seen)


# --- answers that are not Vault's ----------------------------------------------------------------

NOT_VAULT = {
    "web page": (200, {"Content-Type": "text/html"}, b"<html><body>Welcome to nginx!</body></html>"),
    "empty object": (200, {"Content-Type": "application/json"}, b"{}"),
    "json list": (200, {"Content-Type": "application/json"}, b"[1, 2]"),
    "proxy error page": (502, {"Content-Type": "text/html"}, b"<h1>Bad Gateway</h1>"),
    "not found page": (404, {"Content-Type": "text/html"}, b"<h1>Not Found</h1>"),
}


@pytest.mark.parametrize("case", sorted(NOT_VAULT))
def test_answers_that_are_not_vaults_are_named_not_crashed_on(stand_in: ModuleType, case: str) -> None:
    with stand_in.answering_server(lambda *_: NOT_VAULT[case]) as addr:
        env = {"VAULT_ADDR": addr, "VAULT_TOKEN": "t", "VAULT_MAX_RETRIES": "0"}
        relaxed = build(env)
        strict = build(env, strict=True)
    assert relaxed.returncode == 0 and "[warning] Vault was not written" in relaxed.stderr and addr in relaxed.stderr
    assert strict.returncode == 1 and "[error] Vault was not written" in strict.stderr and addr in strict.stderr
    clean(relaxed)
    clean(strict)


def test_a_missing_or_unusable_ca_file_names_the_file(tmp_path: Path) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate")
    env = {"VAULT_ADDR": "https://127.0.0.1:9", "VAULT_TOKEN": "t"}
    missing = build_in_process({**env, "VAULT_CACERT": str(tmp_path / "absent.pem")}, strict=True)
    assert missing.returncode == 1 and f"VAULT_CACERT: {tmp_path / 'absent.pem'} does not exist" in missing.stderr
    unusable = build_in_process({**env, "VAULT_CACERT": str(garbage)}, strict=True)
    assert unusable.returncode == 1 and f"VAULT_CACERT: cannot use {garbage}" in unusable.stderr
    # Not strict: Vault cannot be reached safely, like an unreachable one: rendered, with a warning.
    lenient = build_in_process({**env, "VAULT_CACERT": str(garbage)})
    assert lenient.returncode == 0 and f"[warning] Vault was not written: VAULT_CACERT: cannot use {garbage}" in (
        lenient.stderr
    )
    for ran in (missing, unusable, lenient):
        clean(ran)


# --- time and memory bounds ----------------------------------------------------------------------


def test_a_dripping_answer_is_cut_at_the_whole_request_deadline(stand_in: ModuleType) -> None:
    with stand_in.raw_server(stand_in.drip) as addr:
        start = time.monotonic()
        ran = build({"VAULT_ADDR": addr, "VAULT_TOKEN": "t", "VAULT_CLIENT_TIMEOUT": "2"}, strict=True)
        elapsed = time.monotonic() - start
    assert ran.returncode == 1 and "no complete answer within 2s (VAULT_CLIENT_TIMEOUT)" in ran.stderr
    assert elapsed < 8
    clean(ran)


def test_a_huge_answer_is_refused_within_bounded_memory(stand_in: ModuleType) -> None:
    with stand_in.raw_server(lambda conn: stand_in.flood(conn, 300)) as addr:
        env = {**os.environ, "VAULT_ADDR": addr, "VAULT_TOKEN": "t", "SECRET_CONTRACT_STRICT": "true"}
        ran = run_measured([sys.executable, "-m", "secret_contract"], generator_input(DEMO), env, timeout=120)
    assert ran.returncode == 1 and "byte limit" in ran.stderr, ran.stderr
    assert ran.peak_mb < 150, f"peak memory {ran.peak_mb:.0f} MB"


# --- never a credential or a value in a message ----------------------------------------------------


def test_a_token_file_with_a_second_line_is_refused_without_printing_it(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s.tokensentinel123\n# rotated on Monday\n")
    env = {"VAULT_ADDR": "http://127.0.0.1:9", "SECRET_CONTRACT_TOKEN_FILE": str(token_file)}
    ran = build_in_process(env)
    assert ran.returncode == 1 and "cannot be used: it has more than one line" in ran.stderr
    inline = build_in_process({"VAULT_ADDR": "http://127.0.0.1:9", "VAULT_TOKEN": "s.token\r\nX-Injected: sentinel456"})
    assert inline.returncode == 1 and "cannot be used" in inline.stderr
    assert_no_leak([ran.text, inline.text], ["tokensentinel123", "rotated on Monday", "sentinel456"])
    clean(ran)


def _kv_v2_preflight(method: str, path: str, body: bytes) -> Answer | None:
    """What a server must answer like Vault for a build to reach its writes: a KV v2 mount,
    nothing stored yet, every capability."""
    if path.startswith("/v1/sys/internal/ui/mounts/"):
        info = {"data": {"type": "kv", "path": "secret/", "options": {"version": "2"}}}
        return 200, {"Content-Type": "application/json"}, json.dumps(info).encode()
    if method == "GET":
        return 404, {"Content-Type": "application/json"}, b'{"errors": []}'
    if path == "/v1/sys/capabilities-self":
        return 200, {"Content-Type": "application/json"}, json.dumps({"data": _all(body)}).encode()
    return None


def test_a_server_that_echoes_the_request_never_puts_a_value_in_a_message(stand_in: ModuleType) -> None:
    sent: list[bytes] = []

    def echo(method: str, path: str, body: bytes) -> Answer:
        known = _kv_v2_preflight(method, path, body)
        if known:
            return known
        sent.append(body)
        errors = [f"invalid request: {body.decode()}"]
        return 400, {"Content-Type": "application/json"}, json.dumps({"errors": errors}).encode()

    with stand_in.answering_server(echo) as addr:
        ran = build({"VAULT_ADDR": addr, "VAULT_TOKEN": "s.echotokensentinel"}, strict=True)
    assert ran.returncode == 1 and "invalid request" in ran.stderr
    assert "Vault was not written" in ran.stderr and "none of the 1 secret to write was written" in ran.stderr
    values = [v for body in sent for v in json.loads(body).get("data", {}).values()]
    assert values and all(len(v) >= 8 for v in values if v != "admin")
    assert_no_leak([ran.text], [*values, "s.echotokensentinel"])


def _all(body: bytes) -> dict[str, list[str]]:
    return {p: ["create", "update", "patch"] for p in json.loads(body)["paths"]}


def test_user_info_in_vault_addr_is_never_printed() -> None:
    env = {"VAULT_ADDR": "http://operator:pw-sentinel-789@127.0.0.1:9", "VAULT_TOKEN": "t", "VAULT_MAX_RETRIES": "0"}
    ran = build_in_process(env)
    assert ran.returncode == 0 and "http://***@127.0.0.1:9: cannot connect to Vault" in ran.stderr
    assert "pw-sentinel-789" not in ran.text and "operator" not in ran.text


def test_an_error_from_the_host_a_redirect_led_to_names_that_host(vault: Vault) -> None:
    """The token follows a 307 to another host, as Vault's client sends it; what that host
    answers is its own answer, not Vault refusing the token."""
    denied = (403, {"Content-Type": "application/json"}, b'{"errors":["denied"]}')
    with (
        answering_server(lambda *_: denied) as other,
        answering_server(lambda _m, p, _b: (307, {"Location": f"{other}{p}"}, b"")) as front,
    ):
        ran = build({**vault.env, "VAULT_ADDR": front}, strict=True)
    assert ran.returncode == 1
    assert f"redirected to {other}" in ran.stderr and "refused" not in ran.stderr, ran.stderr
    assert_no_leak([ran.text], [vault.server.token])
    clean(ran)


def test_a_content_length_of_thousands_of_digits_is_refused_as_too_large(stand_in: ModuleType) -> None:
    def answer(conn: Any) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + b"9" * 5000
        conn.sendall(head + b"\r\n\r\n{}")

    with stand_in.raw_server(answer) as addr:
        ran = build({"VAULT_ADDR": addr, "VAULT_TOKEN": "t"}, strict=True)
    assert ran.returncode == 1 and "5000-digit" in ran.stderr and "limit" in ran.stderr
    clean(ran)


def test_a_server_that_echoes_request_headers_never_prints_basic_credentials(stand_in: ModuleType) -> None:
    """User info in VAULT_ADDR travels as an Authorization header; a server that echoes the
    request's headers in its errors must not put them, or the token, on the terminal."""

    def echo(method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        known = _kv_v2_preflight(method, path, body)
        if known:
            return known
        lines = [f"{k}: {v}" for k, v in headers.items()] + [f"{k}={v}" for k, v in headers.items()]
        return 400, {"Content-Type": "application/json"}, json.dumps({"errors": lines}).encode()

    with stand_in.header_answering_server(echo) as addr:
        with_user = addr.replace("http://", "http://operator:pw-sentinel-789@")
        ran = build({"VAULT_ADDR": with_user, "VAULT_TOKEN": "s.echotokensentinel"}, strict=True)
    assert ran.returncode == 1 and "Vault was not written" in ran.stderr, ran.stderr
    pair = base64.b64encode(b"operator:pw-sentinel-789").decode()
    assert_no_leak([ran.text], ["pw-sentinel-789", "operator", pair, "s.echotokensentinel"])
    clean(ran)


def test_no_proxy_cidrs_are_honoured_for_ip_addresses_only(vault: Vault) -> None:
    """As Go's client (and so the Vault CLI) reads NO_PROXY: a CIDR matches a literal IP
    address in it, never a host name."""
    port = int(vault.server.addr.rsplit(":", 1)[1])
    with forwarding_proxy({"vault.test": port}) as (proxy, seen):
        base = {**vault.env, "HTTP_PROXY": proxy, "VAULT_CLIENT_TIMEOUT": "2", "VAULT_MAX_RETRIES": "0"}
        by_ip = {**base, "VAULT_ADDR": f"http://192.0.2.1:{port}"}  # TEST-NET-1: reachable only through the proxy
        assert build(by_ip, strict=True).returncode == 0 and seen
        count = len(seen)
        direct = build({**by_ip, "NO_PROXY": "example.com, 192.0.2.0/24"}, strict=True)
        assert direct.returncode == 1 and len(seen) == count, direct.stderr
        assert "http://192.0.2.1" in direct.stderr
        by_name = build({**base, "VAULT_ADDR": f"http://vault.test:{port}", "NO_PROXY": "192.0.2.0/24"}, strict=True)
        assert by_name.returncode == 0 and len(seen) > count, by_name.stderr


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "proxied"),
    [
        ("10.0.0.0/8", "10.1.2.3", 8200, False),
        ("10.0.0.0/8", "11.1.2.3", 8200, True),
        ("2001:db8::/32", "2001:db8::1", 8200, False),
        ("10.1.2.3", "10.1.2.3", 8200, False),
        ("10.1.2.3:8201", "10.1.2.3", 8200, True),
        ("vault.example.com", "vault.example.com", 8200, False),
        ("example.com", "vault.example.com", 8200, False),
        (".example.com", "example.com", 8200, True),
        ("*.example.com", "vault.example.com", 8200, False),
        ("example.com:8200", "vault.example.com", 8200, False),
        ("example.com:443", "vault.example.com", 8200, True),
        ("*", "anything", 8200, False),
        ("notexample.com", "example.com", 8200, True),
    ],
)
def test_no_proxy_matches_as_go_does(no_proxy: str, host: str, port: int, proxied: bool) -> None:
    from secret_contract.vault_http import Proxies

    proxies = Proxies.from_env({"HTTPS_PROXY": "http://proxy.test:3128", "NO_PROXY": no_proxy})
    assert (proxies.for_url("https", host, port) is not None) is proxied
