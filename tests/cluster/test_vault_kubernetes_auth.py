"""OpenBao's `kubernetes` auth method against the real API server: TokenRequest for the
publisher's ServiceAccount with audience `vault`, a login that OpenBao checks with a TokenReview
(through the token reviewer bound to system:auth-delegator), and the refusals: another
ServiceAccount's token, another audience, a token the API server did not sign. Then the
function itself logs in that way (SECRET_CONTRACT_AUTH_METHOD=kubernetes, a JWT file), as the
in-cluster publisher does."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import hvac
import pytest

from builders import commit_tree
from conftest import run as run_cli

from .conftest import ROOT, Cluster

ROLE = "secret-contract-publisher"


def token(cluster: Cluster, sa: str, namespace: str, audience: str) -> str:
    return cluster.kubectl("create", "token", sa, "-n", namespace, f"--audience={audience}").stdout.strip()


def login(cluster: Cluster, jwt: str) -> dict:
    client = hvac.Client(url=cluster.env["VAULT_ADDR"])
    return client.auth.kubernetes.login(ROLE, jwt, mount_point=cluster.env["VAULT_K8S_AUTH_PATH"])


def test_publisher_token_with_audience_vault_logs_in(cluster: Cluster) -> None:
    resp = login(cluster, token(cluster, ROLE, "flux-system", "vault"))
    auth = resp["auth"]
    assert "secret-contract" in auth["policies"]
    assert auth["metadata"]["service_account_name"] == ROLE
    assert auth["metadata"]["service_account_namespace"] == "flux-system"
    # The token works against the KV mount the builds use.
    client = hvac.Client(url=cluster.env["VAULT_ADDR"], token=auth["client_token"])
    assert client.lookup_token()["data"]["policies"]


@pytest.mark.parametrize(
    ("sa", "namespace", "audience"),
    [
        ("someone-else", "flux-system", "vault"),  # another ServiceAccount
        (ROLE, "flux-system", "https://kubernetes.default.svc.cluster.local"),  # another audience
        (ROLE, "flux-system", "not-vault"),
        (ROLE, "other-namespace", "vault"),  # the same name elsewhere
    ],
)
def test_other_service_accounts_and_audiences_are_refused(
    cluster: Cluster, sa: str, namespace: str, audience: str
) -> None:
    cluster.apply(
        f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {namespace}}}\n---\n"
        f"apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {sa}, namespace: {namespace}}}\n"
    )
    jwt = token(cluster, sa, namespace, audience)
    with pytest.raises((hvac.exceptions.Forbidden, hvac.exceptions.InvalidRequest)) as refused:
        login(cluster, jwt)
    assert refused.value is not None


def test_a_token_the_api_server_did_not_sign_is_refused(cluster: Cluster) -> None:
    jwt = token(cluster, ROLE, "flux-system", "vault")
    head, body, sig = jwt.split(".")
    forged = ".".join([head, body, sig[::-1]])
    with pytest.raises((hvac.exceptions.Forbidden, hvac.exceptions.InvalidRequest)):
        login(cluster, forged)


def test_the_publisher_builds_with_kubernetes_auth_from_a_token_file(cluster: Cluster, tmp_path: Path) -> None:
    """What the in-cluster publisher does: a token file with audience `vault`, Kubernetes auth,
    a build that writes Vault under the `secret-contract` policy (publish --dry-run: no push)."""
    jwt_file = tmp_path / "token"
    jwt_file.write_text(token(cluster, ROLE, "flux-system", "vault"))
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "kustomize-examples" / "sample-app", repo / "app")
    commit_tree(repo, "app")
    env = {
        "VAULT_ADDR": cluster.env["VAULT_ADDR"],
        "SECRET_CONTRACT_AUTH_METHOD": "kubernetes",
        "SECRET_CONTRACT_AUTH_ROLE": ROLE,
        "SECRET_CONTRACT_AUTH_JWT_FILE": str(jwt_file),
    }
    ran = run_cli(
        [sys.executable, "-m", "secret_contract", "publish", str(repo / "app"), "oci://127.0.0.1:1/unused:x",
         "--dry-run", "--output", str(tmp_path / "artifact.tar.gz")],
        env=env,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    stored = cluster.vault().secrets.kv.v2.read_secret_version(
        "sample-app/postgres-credentials", mount_point="secret", raise_on_deleted_version=True
    )["data"]["data"]
    assert stored["username"] == "postgres"

    # The same with a token for another audience: the build fails and writes nothing new.
    jwt_file.write_text(token(cluster, ROLE, "flux-system", "not-vault"))
    ran = run_cli(
        [sys.executable, "-m", "secret_contract", "publish", str(repo / "app"), "oci://127.0.0.1:1/unused:x",
         "--dry-run", "--output", str(tmp_path / "again.tar.gz")],
        env=env,
    )  # fmt: skip
    assert ran.returncode != 0, ran.stdout
