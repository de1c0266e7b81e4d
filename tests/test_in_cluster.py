"""The images as clusters run them: the Flux in-cluster publisher's pod (the CronJob's
container, its env, args and volumes as the manifest declares them) and the Argo CD plugin
sidecar's `generate` command, run in the publisher image with podman against the session's
OpenBao, a real registry and a git repository served by `git daemon`.

What stands in for the cluster: the projected service-account token is a JWT signed here
with the claims Kubernetes puts in one (issuer, subject, audience `vault`), and OpenBao's
JWT auth method, mounted where Kubernetes auth would be (`auth/kubernetes`), checks it
against the signing key instead of asking an API server (TokenReview). The login request is
the same one: `{role, jwt}` to `auth/kubernetes/login`.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hvac
import pytest

from builders import commit_tree
from conftest import EXAMPLES, Vault, assert_no_leak, free_port, run
from oci_artifact import build_layer, get, pull
from secret_contract import yaml_codec

ISSUER = "https://kubernetes.default.svc.cluster.local"
NAMESPACE = "flux-system"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(key: Path, claims: dict[str, Any]) -> str:
    """An RS256 JWT, signed with openssl (as the API server signs service-account tokens)."""
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    signing_input = f"{header}.{b64url(json.dumps(claims).encode())}"
    signed = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", str(key)], input=signing_input.encode(), capture_output=True, check=True
    )
    return f"{signing_input}.{b64url(signed.stdout)}"


@pytest.fixture
def service_account_token(tmp_path: Path, vault: Vault) -> tuple[Path, str]:
    """(a folder holding `token`, as the projected volume does; the token) for the publisher's
    service account, accepted by OpenBao under the role serviceaccount.yaml documents."""
    key, public = tmp_path / "sa.key", tmp_path / "sa.pub"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(public)], check=True, capture_output=True)
    client: hvac.Client = vault.server.client()
    if "kubernetes/" not in client.sys.list_auth_methods():
        client.sys.enable_auth_method("jwt", path="kubernetes")
    client.write("auth/kubernetes/config", jwt_validation_pubkeys=[public.read_text()], bound_issuer=ISSUER)
    # The policy the examples document, on this test's mount.
    policy = (EXAMPLES / "vault" / "secret-contract.hcl").read_text().replace('path "secret/', f'path "{vault.mount}/')
    client.sys.create_or_update_policy("secret-contract-publisher", policy)
    account = yaml_codec.load((EXAMPLES / "flux" / "in-cluster" / "serviceaccount.yaml").read_text())
    subject = f"system:serviceaccount:{NAMESPACE}:{account['metadata']['name']}"
    client.write(
        "auth/kubernetes/role/secret-contract-publisher",
        role_type="jwt",
        bound_audiences=["vault"],
        bound_subject=subject,
        user_claim="sub",
        token_policies=["secret-contract-publisher"],
        token_ttl="10m",
    )
    now = int(time.time())
    token = sign(key, {"iss": ISSUER, "sub": subject, "aud": ["vault"], "iat": now, "nbf": now, "exp": now + 600})
    folder = tmp_path / "projected"
    folder.mkdir()
    (folder / "token").write_text(token)
    return folder, token


@pytest.fixture
def git_remote(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(git:// URL, commit) of a bare repository holding the platform example at platform/,
    served by `git daemon` on a free loopback port."""
    work, served = tmp_path / "work", tmp_path / "served"
    shutil.copytree(EXAMPLES / "platform", work / "platform")
    commit = commit_tree(work, "platform")
    served.mkdir()
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(served / "platform.git")], check=True)
    port = free_port()
    daemon = subprocess.Popen(
        ["git", "daemon", "--export-all", "--reuseaddr", f"--base-path={served}", "--listen=127.0.0.1",
         f"--port={port}", str(served)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 15
    url = f"git://127.0.0.1:{port}/platform.git"
    while subprocess.run(["git", "ls-remote", url], capture_output=True).returncode != 0:
        assert time.monotonic() < deadline, "git daemon did not start"
        time.sleep(0.2)
    yield url, commit
    daemon.terminate()
    daemon.wait(timeout=10)


def in_cluster() -> dict[str, dict[str, Any]]:
    docs = yaml_codec.load_all((EXAMPLES / "flux" / "in-cluster" / "cronjob.yaml").read_text())
    docs += yaml_codec.load_all((EXAMPLES / "flux" / "in-cluster" / "platform.yaml").read_text())
    return {d["kind"]: d for d in docs}


def run_pod(
    engine_path: str,
    image: str,
    pod: dict[str, Any],
    values: dict[str, str | None],
    secrets: dict[str, dict[str, str]],
    volumes: dict[str, Path],
    extra_args: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """The pod's one container under podman: its env (`values` overrides what only a cluster
    has, None drops it), `secretKeyRef`s from `secrets`, $(VAR) in args expanded as the kubelet
    does, each volume mounted from a folder, as its user, with a read-only root."""
    (container,) = pod["containers"]
    env: dict[str, str] = {}
    for entry in container["env"]:
        name = entry["name"]
        if "valueFrom" in entry:
            ref = entry["valueFrom"]["secretKeyRef"]
            env[name] = secrets[ref["name"]][ref["key"]]
        else:
            env[name] = entry["value"]
        if name in values:
            if values[name] is None:
                del env[name]
            else:
                env[name] = values[name]  # type: ignore[assignment]
    env |= {k: v for k, v in values.items() if v is not None and k not in env}
    args = [re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), a) for a in container["args"]]
    user = pod["securityContext"]
    command = ["docker", "run", "--rm", "--network", "host", "--user", f"{user['runAsUser']}:{user['runAsGroup']}"]
    if container["securityContext"]["readOnlyRootFilesystem"]:
        command.append("--read-only")
    for mount in container["volumeMounts"]:
        if mount["mountPath"] == "/tmp":
            command += ["--tmpfs", "/tmp"]
        elif mount["name"] in volumes:
            command += ["-v", f"{volumes[mount['name']]}:{mount['mountPath']}:ro"]
    for name, value in env.items():
        command += ["-e", f"{name}={value}"]
    return run([*command, image, *args, *extra_args], env={"PATH": engine_path})


def secret_folder(root: Path, files: dict[str, str]) -> Path:
    """A Secret or projected volume as the kubelet mounts it: files readable by the pod's user."""
    root.mkdir(parents=True)
    root.chmod(0o755)
    for name, text in files.items():
        (root / name).write_text(text)
        (root / name).chmod(0o644)
    return root


def test_the_cronjob_pod_publishes_what_flux_pulls(
    tmp_path: Path,
    engine_path: str,
    publisher_image: str,
    vault: Vault,
    registry: str,
    kubectl: str,
    git_remote: tuple[str, str],
    service_account_token: tuple[Path, str],
) -> None:
    url, commit = git_remote
    token_folder, token = service_account_token
    token_folder.chmod(0o755)
    (token_folder / "token").chmod(0o644)
    kinds = in_cluster()
    pod = kinds["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    secrets = {"platform-git": {"username": "publisher", "password": "git-t0ken-never-printed"}}
    auth = base64.b64encode(b"publisher:registry-password").decode()
    docker_config = json.dumps({"auths": {registry: {"auth": auth}}})
    volumes = {
        "vault-token": token_folder,
        "git": secret_folder(tmp_path / "git", {"password": secrets["platform-git"]["password"]}),
        "registry": secret_folder(tmp_path / "registry", {"config.json": docker_config}),
    }
    values: dict[str, str | None] = {
        "GIT_URL": url,
        "REGISTRY": f"{registry}/platform",
        "VAULT_ADDR": vault.server.addr,  # the session's OpenBao, plain HTTP on loopback
        "VAULT_CACERT": None,
        "SECRET_CONTRACT_VAULT_MOUNT": vault.mount,
    }
    # The test registry speaks plain HTTP on loopback; a cluster's registry speaks HTTPS.
    first = run_pod(engine_path, publisher_image, pod, values, secrets, volumes, ("--insecure",))
    assert first.returncode == 0, first.stderr
    manifest, _, layer = pull(registry, "platform/platform-prod", "latest")
    notes = manifest["annotations"]
    assert notes["org.opencontainers.image.source"] == url
    assert notes["org.opencontainers.image.revision"] == f"main@sha1:{commit}"
    docs = build_layer(layer, kubectl, tmp_path / "extracted")
    kinds_built = [d["kind"] for d in docs]
    assert kinds_built.count("ExternalSecret") == 4 and "SecretContract" not in kinds_built
    fernet = vault.read("airflow/airflow-secrets")
    assert fernet is not None and len(fernet["fernet-key"]) == 44  # written through the Kubernetes-auth login

    # The next scheduled run of an unchanged commit: the same artifact, no new revision for Flux.
    before = vault.snapshot()
    again = run_pod(engine_path, publisher_image, pod, values, secrets, volumes, ("--insecure",))
    assert again.returncode == 0, again.stderr
    assert pull(registry, "platform/platform-prod", "latest")[0] == manifest and vault.snapshot() == before
    printed = [first.stdout, first.stderr, again.stdout, again.stderr, gzip.decompress(layer).decode()]
    paths = " ".join(vault.paths())
    secret_values = [vault.server.token, token, "git-t0ken-never-printed", "registry-password", *vault.values()]
    assert_no_leak(printed, secret_values, names=(paths, str(EXAMPLES)))

    # A token Vault does not accept: the pod fails, names the login, and pushes nothing new.
    (token_folder / "token").write_text(token[:-8] + "AAAAAAAA")
    elsewhere = {**values, "REGISTRY": f"{registry}/refused"}
    refused = run_pod(engine_path, publisher_image, pod, elsewhere, secrets, volumes, ("--insecure",))
    assert refused.returncode != 0 and "kubernetes login at auth/kubernetes" in refused.stderr
    assert "platform/refused" not in json.loads(get(registry, "_catalog")[0])["repositories"]


def test_the_argocd_sidecar_generates_an_application_in_the_publisher_image(
    tmp_path: Path, engine_path: str, publisher_image: str, vault: Vault
) -> None:
    plugin = yaml_codec.load((EXAMPLES / "argocd" / "plugin.yaml").read_text())
    patch = yaml_codec.load((EXAMPLES / "argocd" / "repo-server-patch.yaml").read_text())
    (sidecar,) = patch["spec"]["template"]["spec"]["containers"]
    app = tmp_path / "app"
    shutil.copytree(EXAMPLES / "platform", app, copy_function=shutil.copy)
    for path in [app, *app.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    env = {e["name"]: e["value"] for e in sidecar["env"]}
    env |= {"VAULT_ADDR": vault.server.addr, "SECRET_CONTRACT_AUTH_METHOD": "token", "VAULT_TOKEN": vault.server.token}
    env |= {"SECRET_CONTRACT_VAULT_MOUNT": vault.mount}
    # Kubernetes auth is the CronJob test's; here a token stands in for it.
    for dropped in ("VAULT_CACERT", "SECRET_CONTRACT_AUTH_ROLE", "SECRET_CONTRACT_AUTH_JWT_FILE"):
        env.pop(dropped)
    command = ["docker", "run", "--rm", "--network", "host", "--read-only", "--tmpfs", "/tmp"]
    command += ["--user", str(sidecar["securityContext"]["runAsUser"]), "-v", f"{app}:/app:ro"]
    command += ["-w", "/app/overlays/prod"]  # Argo CD runs `generate` in the Application's path
    command += [arg for name, value in env.items() for arg in ("-e", f"{name}={value}")]
    generate = plugin["spec"]["generate"]
    done = run(
        [*command, "--entrypoint", generate["command"][0], publisher_image, *generate["command"][1:],
         *generate.get("args", [])],
        env={"PATH": engine_path},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    kinds = [d["kind"] for d in yaml_codec.load_all(done.stdout)]
    assert kinds.count("ExternalSecret") == 4 and "SecretContract" not in kinds
    assert vault.read("sample-app/postgres-credentials") is not None
    assert vault.server.token not in done.stdout + done.stderr
