"""Authentication methods and connection options, each against the real OpenBao server."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
from pathlib import Path

import hvac
import pytest

from builders import DEMO, DEMO_PATH, generator_input
from conftest import Vault, assert_no_leak, secret_contract
from faults import fault_proxy, silent_server
from openbao_server import free_port
from secret_contract import vault_auth
from secret_contract.vault import VaultStore
from secret_contract.vault_config import VaultConfig

PATH = DEMO_PATH
CONTRACT = DEMO


def policy_for(vault: Vault, name: str) -> str:
    vault.client.sys.create_or_update_policy(
        name,
        f'path "{vault.mount}/data/*" {{ capabilities = ["create", "read", "update"] }}\n'
        f'path "{vault.mount}/metadata/*" {{ capabilities = ["read", "update", "patch", "list"] }}\n',
    )
    return name


def base_env(vault: Vault) -> dict[str, str]:
    """Address and mount, no token: the login must provide it."""
    return {"VAULT_ADDR": vault.server.addr, "SECRET_CONTRACT_VAULT_MOUNT": vault.mount, "SECRET_CONTRACT_STRICT": "1"}


def login_env(vault: Vault, method: str, mount: str, **credentials: str) -> dict[str, str]:
    """base_env plus a login: `role_id="..."` becomes SECRET_CONTRACT_AUTH_ROLE_ID, and so on."""
    named = {f"SECRET_CONTRACT_AUTH_{key.upper()}": value for key, value in credentials.items()}
    return {**base_env(vault), "SECRET_CONTRACT_AUTH_METHOD": method, "SECRET_CONTRACT_AUTH_MOUNT": mount, **named}


def build(env: dict[str, str]) -> tuple[int, str]:
    ran = secret_contract(stdin=generator_input(CONTRACT), env=env)
    return ran.returncode, ran.stdout + ran.stderr


@pytest.fixture
def approle(vault: Vault) -> tuple[str, str, str]:
    mount = "ci-approle-" + vault.mount
    vault.client.sys.enable_auth_method("approle", path=mount)
    vault.client.auth.approle.create_or_update_approle(
        "builder", token_policies=[policy_for(vault, "writer-" + vault.mount)], mount_point=mount
    )
    role_id = vault.client.auth.approle.read_role_id("builder", mount_point=mount)["data"]["role_id"]
    secret_id = vault.client.auth.approle.generate_secret_id("builder", mount_point=mount)["data"]["secret_id"]
    return mount, role_id, secret_id


def test_approle_from_env_and_from_files(vault: Vault, approle: tuple[str, str, str], tmp_path: Path) -> None:
    mount, role_id, secret_id = approle
    env = login_env(vault, "approle", mount, role_id=role_id, secret_id=secret_id)
    rc, out = build(env)
    assert rc == 0, out
    assert vault.read(PATH) is not None
    (tmp_path / "role-id").write_text(role_id)
    (tmp_path / "secret-id").write_text(secret_id + "\n")
    files = {k: v for k, v in env.items() if not k.endswith(("_ROLE_ID", "_SECRET_ID"))}
    files |= {
        "SECRET_CONTRACT_AUTH_ROLE_ID_FILE": str(tmp_path / "role-id"),
        "SECRET_CONTRACT_AUTH_SECRET_ID_FILE": str(tmp_path / "secret-id"),
    }
    rc, out2 = build(files)
    assert rc == 0, out2
    assert_no_leak([out, out2], [secret_id, *vault.values()], ("demo",))


def test_half_given_or_contradictory_login_is_a_clear_error(vault: Vault, tmp_path: Path) -> None:
    env = {**base_env(vault), "SECRET_CONTRACT_AUTH_METHOD": "approle", "SECRET_CONTRACT_AUTH_ROLE_ID": "r"}
    rc, out = build(env)
    assert (
        rc == 1 and "approle login needs SECRET_CONTRACT_AUTH_SECRET_ID (or SECRET_CONTRACT_AUTH_SECRET_ID_FILE)" in out
    )
    both = {**env, "SECRET_CONTRACT_AUTH_SECRET_ID": "s", "SECRET_CONTRACT_AUTH_SECRET_ID_FILE": str(tmp_path / "x")}
    assert "set either SECRET_CONTRACT_AUTH_SECRET_ID or SECRET_CONTRACT_AUTH_SECRET_ID_FILE" in build(both)[1]
    rc, out = build({**base_env(vault), "SECRET_CONTRACT_AUTH_METHOD": "ldap"})
    assert rc == 1 and "SECRET_CONTRACT_AUTH_METHOD must be one of" in out
    missing = {**base_env(vault), "SECRET_CONTRACT_TOKEN_FILE": str(tmp_path / "absent")}
    rc, out = build(missing)
    assert rc == 1 and "SECRET_CONTRACT_TOKEN_FILE: cannot read" in out
    # Misconfiguration is an error even when Vault problems would only warn.
    rc, out = build({**env, "SECRET_CONTRACT_STRICT": "false"})
    assert rc == 1 and "Vault configuration" in out
    assert vault.paths() == []


def test_wrong_secret_id_and_wrong_mount_say_so(vault: Vault, approle: tuple[str, str, str]) -> None:
    mount, role_id, _ = approle
    env = login_env(vault, "approle", mount, role_id=role_id, secret_id="00000000-0000-0000-0000-000000000000")
    rc, out = build(env)
    assert rc == 1 and f"approle login at auth/{mount}" in out
    rc, out = build({**env, "SECRET_CONTRACT_AUTH_MOUNT": "nowhere"})
    assert rc == 1 and "approle login at auth/nowhere was refused" in out


def sign_jwt(key: Path, claims: dict[str, object]) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    signature = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", str(key)], input=head.encode(), capture_output=True, check=True
    ).stdout
    return head + "." + b64(signature)


def test_jwt_login_with_a_ci_id_token(vault: Vault, tmp_path: Path) -> None:
    if not shutil.which("openssl"):
        pytest.fail("openssl is needed to make the test's key pair")
    key, pub = tmp_path / "key.pem", tmp_path / "pub.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(pub)], check=True, capture_output=True)
    mount = "ci-jwt-" + vault.mount
    vault.client.sys.enable_auth_method("jwt", path=mount)
    vault.client.auth.jwt.configure(jwt_validation_pubkeys=[pub.read_text()], path=mount)
    vault.client.auth.jwt.create_role(
        "pipeline",
        role_type="jwt",
        bound_audiences=["secret-contract"],
        user_claim="sub",
        token_policies=[policy_for(vault, "jwt-" + vault.mount)],
        allowed_redirect_uris=[],
        path=mount,
    )
    now = int(time.time())
    token = sign_jwt(key, {"sub": "ci-job", "aud": "secret-contract", "iat": now, "nbf": now, "exp": now + 300})
    (tmp_path / "id-token").write_text(token)
    env = login_env(vault, "jwt", mount, role="pipeline", jwt_file=str(tmp_path / "id-token"))
    rc, out = build(env)
    assert rc == 0, out
    assert vault.read(PATH) is not None
    assert token not in out
    forged = sign_jwt(key, {"sub": "x", "aud": "someone-else", "iat": now, "nbf": now, "exp": now + 300})
    rc, out = build({**env, "SECRET_CONTRACT_AUTH_JWT_FILE": "", "SECRET_CONTRACT_AUTH_JWT": forged})
    assert rc == 1 and f"jwt login at auth/{mount}" in out and forged not in out


def test_userpass_login(vault: Vault) -> None:
    mount = "people-" + vault.mount
    vault.client.sys.enable_auth_method("userpass", path=mount)
    vault.client.auth.userpass.create_or_update_user(
        "deployer", "correct-horse-battery", policies=[policy_for(vault, "up-" + vault.mount)], mount_point=mount
    )
    env = login_env(vault, "userpass", mount, username="deployer", password="correct-horse-battery")
    rc, out = build(env)
    assert rc == 0, out
    assert "correct-horse-battery" not in out and vault.read(PATH) is not None


def test_kubernetes_login_request(vault: Vault, tmp_path: Path) -> None:
    """No Kubernetes API here to review tokens: the login reaches OpenBao's kubernetes
    backend with the role and service account token, which fails at the review."""
    creds = vault_auth.from_env(
        {
            "SECRET_CONTRACT_AUTH_METHOD": "kubernetes",
            "SECRET_CONTRACT_AUTH_ROLE": "app",
            "SECRET_CONTRACT_AUTH_JWT": "sa",
        }
    )
    assert creds.login is not None
    assert (creds.login.path, dict(creds.login.body)) == ("/v1/auth/kubernetes/login", {"role": "app", "jwt": "sa"})
    default = vault_auth.from_env({"SECRET_CONTRACT_AUTH_METHOD": "kubernetes", "SECRET_CONTRACT_AUTH_ROLE": "app"})
    assert default.problems and vault_auth.SERVICE_ACCOUNT_TOKEN in default.problems[0]

    mount = "k8s-" + vault.mount
    vault.client.sys.enable_auth_method("kubernetes", path=mount)
    ca_key, ca_cert = tmp_path / "ca.key", tmp_path / "ca.crt"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=kube-ca"),
            *("-keyout", str(ca_key), "-out", str(ca_cert)),
        ],
        check=True,
        capture_output=True,
    )
    vault.client.write(
        f"auth/{mount}/config",
        kubernetes_host=f"https://127.0.0.1:{free_port()}",
        kubernetes_ca_cert=ca_cert.read_text(),
        disable_local_ca_jwt=True,
    )
    vault.client.write(
        f"auth/{mount}/role/app",
        bound_service_account_names=["builder"],
        bound_service_account_namespaces=["ci"],
        token_policies=["default"],
    )
    (tmp_path / "token").write_text("header.payload.signature")
    env = login_env(vault, "kubernetes", mount, role="app", jwt_file=str(tmp_path / "token"))
    rc, out = build(env)
    assert rc == 1 and f"kubernetes login at auth/{mount}" in out


def test_expired_login_token_is_renewed_by_logging_in_again(vault: Vault, approle: tuple[str, str, str]) -> None:
    mount, role_id, secret_id = approle
    env = login_env(vault, "approle", mount, role_id=role_id, secret_id=secret_id)
    config = VaultConfig.from_env(env)
    assert config is not None
    store = VaultStore(config)
    store.check_mount(vault.mount)
    first_token = store._token
    vault.client.auth.token.revoke(first_token)  # as if it expired mid-run
    assert store.read(vault.mount, "nothing/here") is None
    assert store._token != first_token


def test_token_precedence_env_then_named_file_then_home(vault: Vault, tmp_path: Path) -> None:
    named = tmp_path / "mounted-token"
    named.write_text(vault.server.token)
    home = tmp_path / "h"
    home.mkdir()
    (home / ".vault-token").write_text("bad-home-token")
    env = {**base_env(vault), "HOME": str(home)}
    assert build(env)[0] == 1  # ~/.vault-token holds a bad token
    assert build({**env, "SECRET_CONTRACT_TOKEN_FILE": str(named)})[0] == 0
    assert build({**env, "SECRET_CONTRACT_TOKEN_FILE": str(named), "VAULT_TOKEN": "bad-env-token"})[0] == 1


def test_tls_verification_with_the_ca_and_without_it(tls_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port, token, ca = tls_server
    env = {"VAULT_ADDR": f"https://127.0.0.1:{port}", "VAULT_TOKEN": token, "SECRET_CONTRACT_STRICT": "1"}
    rc, out = build({**env, "VAULT_CACERT": str(ca)})
    assert rc == 0, out
    rc, out = build(env)
    assert rc == 1 and "TLS verification failed (unable to get local issuer certificate); set VAULT_CACERT" in out
    rc, out = build({**env, "VAULT_SKIP_VERIFY": "true"})
    assert rc == 0 and "[warning] VAULT_SKIP_VERIFY is set" in out
    capath = tmp_path / "cas"
    capath.mkdir()
    digest = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(ca)], capture_output=True, text=True, check=True
    ).stdout.strip()
    shutil.copy(ca, capath / f"{digest}.0")
    assert build({**env, "VAULT_CAPATH": str(capath)})[0] == 0


def test_tls_server_name(tls_server) -> None:  # type: ignore[no-untyped-def]
    port, token, ca = tls_server
    env = {
        "VAULT_ADDR": f"https://127.0.0.1:{port}",
        "VAULT_TOKEN": token,
        "VAULT_CACERT": str(ca),
        "SECRET_CONTRACT_STRICT": "1",
    }
    assert build({**env, "VAULT_TLS_SERVER_NAME": "localhost"})[0] == 0
    rc, out = build({**env, "VAULT_TLS_SERVER_NAME": "vault.elsewhere.example"})
    assert rc == 1 and "TLS verification failed" in out


def test_vault_namespace(vault: Vault) -> None:
    namespace = "team-" + vault.mount
    vault.client.sys.create_namespace(namespace)
    inside = hvac.Client(url=vault.server.addr, token=vault.server.token, namespace=namespace)
    inside.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
    env = {
        "VAULT_ADDR": vault.server.addr,
        "VAULT_TOKEN": vault.server.token,
        "VAULT_NAMESPACE": namespace,
        "SECRET_CONTRACT_STRICT": "1",
    }
    rc, out = build(env)
    assert rc == 0, out
    stored = inside.secrets.kv.v2.read_secret_version(PATH, mount_point="secret", raise_on_deleted_version=True)
    assert stored["data"]["data"]["user"] == "admin"
    assert vault.paths() == []


def test_path_prefix_places_secrets_and_references(vault: Vault) -> None:
    ran = secret_contract(
        stdin=generator_input(CONTRACT), env={**vault.env, "SECRET_CONTRACT_PATH_PREFIX": "platform/apps"}
    )
    assert ran.returncode == 0
    assert vault.read("platform/apps/demo/db") is not None
    assert "key: platform/apps/demo/db" in ran.stdout


def test_silent_server_times_out_naming_the_address(vault: Vault) -> None:
    with silent_server() as addr:
        start = time.monotonic()
        rc, out = build(
            {"VAULT_ADDR": addr, "VAULT_TOKEN": "t", "VAULT_CLIENT_TIMEOUT": "1", "SECRET_CONTRACT_STRICT": "1"}
        )
        elapsed = time.monotonic() - start
    assert (
        rc == 1
        and f"{addr}: cannot look up the mount secret: no complete answer within 1s (VAULT_CLIENT_TIMEOUT)" in out
    )
    assert elapsed < 10


def test_throttling_and_server_errors_are_retried_then_reported(vault: Vault) -> None:
    # The first two requests are refused with 429 and 502; the retries get through.
    with fault_proxy(vault.server.addr, lambda n, _m, _p: {1: 429, 2: 502}.get(n)) as proxy:
        rc, out = build({**vault.env, "VAULT_ADDR": proxy.addr, "SECRET_CONTRACT_STRICT": "1"})
        assert rc == 0, out
        assert proxy.statuses()[:3] == [429, 502, 0]
    assert vault.read(PATH) is not None
    vault.client.secrets.kv.v2.delete_metadata_and_all_versions(PATH, mount_point=vault.mount)
    # Every write answered 500: retried VAULT_MAX_RETRIES times, then the path and status are named.
    with fault_proxy(vault.server.addr, lambda _n, m, p: 500 if m == "POST" and "/data/" in p else None) as proxy:
        env = {**vault.env, "VAULT_ADDR": proxy.addr, "SECRET_CONTRACT_STRICT": "1", "VAULT_MAX_RETRIES": "3"}
        other = secret_contract(stdin=generator_input({**CONTRACT, "metadata": {"name": "other"}}), env=env)
        assert other.returncode == 1
        assert f"HTTP 500 from Vault on write {vault.mount}/demo/db" in other.stderr
        assert [s for m, p, s in proxy.seen if m == "POST" and "/data/" in p] == [500, 500, 500, 500]
    assert vault.read("demo/db") is None


def test_client_errors_are_not_retried(vault: Vault) -> None:
    with fault_proxy(vault.server.addr, lambda _n, m, p: 400 if m == "POST" and "/data/" in p else None) as proxy:
        rc, out = build({**vault.env, "VAULT_ADDR": proxy.addr, "SECRET_CONTRACT_STRICT": "1"})
        assert rc == 1 and "injected" in out
        assert [m for m, p, _ in proxy.seen if "/data/" in p].count("POST") == 1


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_client_cert(folder: Path) -> tuple[Path, Path, Path]:
    """A client CA and a certificate it signed, made with openssl."""
    ca_key, ca, key, csr, cert = (folder / n for n in ("ca.key", "ca.pem", "client.key", "client.csr", "client.pem"))
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=ci-client-ca",
            "-keyout", str(ca_key), "-out", str(ca))  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=ci-builder", "-keyout", str(key), "-out", str(csr))
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
            "-days", "1", "-out", str(cert))  # fmt: skip
    return ca, cert, key


def test_client_certificate_login(tls_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port, token, server_ca = tls_server
    addr = f"https://127.0.0.1:{port}"
    client_ca, cert, key = make_client_cert(tmp_path)
    root = hvac.Client(url=addr, token=token, verify=str(server_ca))
    mount = "ci-cert"
    if f"{mount}/" not in root.sys.list_auth_methods()["data"]:
        root.sys.enable_auth_method("cert", path=mount)
    root.sys.create_or_update_policy(
        "cert-writer", 'path "secret/*" { capabilities = ["create", "read", "update", "patch"] }'
    )
    root.write(f"auth/{mount}/certs/builder", certificate=client_ca.read_text(), token_policies=["cert-writer"])
    env = {
        "VAULT_ADDR": addr,
        "VAULT_CACERT": str(server_ca),
        "VAULT_CLIENT_CERT": str(cert),
        "VAULT_CLIENT_KEY": str(key),
        "SECRET_CONTRACT_AUTH_METHOD": "cert",
        "SECRET_CONTRACT_AUTH_MOUNT": mount,
        "SECRET_CONTRACT_AUTH_ROLE": "builder",
        "SECRET_CONTRACT_STRICT": "1",
    }
    ran = secret_contract(stdin=generator_input(CONTRACT), env=env)
    assert ran.returncode == 0, ran.stderr
    stored = root.secrets.kv.v2.read_secret_version("demo/db", mount_point="secret", raise_on_deleted_version=True)
    assert stored["data"]["data"]["user"] == "admin"
    without = {k: v for k, v in env.items() if not k.startswith("VAULT_CLIENT_")}
    rc, out = build(without)
    assert rc == 1 and "cert login needs VAULT_CLIENT_CERT and VAULT_CLIENT_KEY" in out
