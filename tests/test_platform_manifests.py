"""The manifests and workflows under kustomize-examples/, checked by what their platforms
check: actionlint and GitHub's workflow schema, Flux's CRDs of two releases, Kubernetes'
own schemas, and Argo CD's repo-server Deployment, Application CRD and plugin fields."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conftest import BIN, EXAMPLES, ROOT
from kube_schema import UPSTREAM, flux_problems, kubernetes_problems, problems
from secret_contract import vault_auth, yaml_codec

ARGO = UPSTREAM / "argo-cd" / "v3.5.1"
WORKFLOW = EXAMPLES / "ci" / "github-workflow.yaml"
RELEASE_WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"


def kustomize(kubectl: str, path: Path) -> list[dict[str, Any]]:
    done = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return yaml_codec.load_all(done.stdout)


Lint = Callable[[Path], list[dict[str, Any]]]


@pytest.fixture(scope="session")
def actionlint() -> Lint:
    """The findings of actionlint (built from its Go module at a current tag by
    scripts/test-tools.sh) on a workflow file; it runs shellcheck on every `run:` script."""
    binary = ROOT / ".venv" / "go-bin" / "actionlint"
    if not binary.is_file() or not shutil.which("shellcheck"):
        pytest.fail("actionlint or shellcheck is missing: `make tools` installs them (scripts/test-tools.sh)")

    def lint(path: Path) -> list[dict[str, Any]]:
        done = subprocess.run([str(binary), "-format", "{{json .}}", str(path)], capture_output=True, text=True)
        assert done.returncode in (0, 1) and done.stderr == "", done.stderr
        return json.loads(done.stdout)

    return lint


def github_workflow_schema_problems(workflow: Path) -> str:
    """What check-jsonschema finds against GitHub's workflow schema (its built-in copy); ''."""
    ran = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(workflow)],
        capture_output=True,
        text=True,
    )
    return "" if ran.returncode == 0 else (ran.stdout + ran.stderr or f"exit {ran.returncode}")


def test_github_workflow_passes_actionlint_and_the_workflow_schema(actionlint: Lint, tmp_path: Path) -> None:
    assert actionlint(WORKFLOW) == []
    assert github_workflow_schema_problems(WORKFLOW) == ""
    # The linter is live: the runner context in a job's env, which GitHub refuses, is found.
    broken = tmp_path / "workflow.yaml"
    broken.write_text(
        WORKFLOW.read_text().replace(
            "      SECRET_CONTRACT_AUTH_ROLE: secret-contract-ci\n",
            "      SECRET_CONTRACT_AUTH_ROLE: secret-contract-ci\n"
            "      SECRET_CONTRACT_AUTH_JWT_FILE: ${{ runner.temp }}/id-token\n",
        )
    )
    assert any('context "runner" is not allowed here' in f["message"] for f in actionlint(broken))


@pytest.mark.parametrize("workflow", [WORKFLOW, RELEASE_WORKFLOW], ids=["ci", "release"])
def test_workflows_pass_shellcheck(actionlint: Lint, workflow: Path, tmp_path: Path) -> None:
    assert actionlint(workflow) == []
    # shellcheck is live: the unquoted command substitution the workflow once had is found.
    unquoted = tmp_path / "workflow.yaml"
    unquoted.write_text(
        "on: push\njobs:\n  render:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: secret-contract render $(git ls-files '*hostk8s.secrets.yaml')\n"
    )
    assert any("SC2046" in f["message"] for f in actionlint(unquoted))


def test_the_release_workflow_passes_the_same_checks_and_publishes_what_a_release_promises(actionlint: Lint) -> None:
    assert actionlint(RELEASE_WORKFLOW) == []
    assert github_workflow_schema_problems(RELEASE_WORKFLOW) == ""
    flow = yaml_codec.load(RELEASE_WORKFLOW.read_text())
    assert flow["on"] == {"push": {"tags": ["v*"]}}
    assert flow["permissions"] == {"contents": "read"}  # each job asks for what it needs
    jobs = flow["jobs"]

    def step(job: str, action: str) -> dict[str, Any]:
        return next(s for s in jobs[job]["steps"] if s.get("uses", "").startswith(action + "@"))

    # Every action pinned by a full commit SHA (a tag can be moved), its release tag beside it.
    uses = re.findall(r"^\s*(?:- )?uses: (.*)$", RELEASE_WORKFLOW.read_text(), re.MULTILINE)
    assert len(uses) == sum(1 for job in jobs.values() for s in job["steps"] if "uses" in s) > 0
    for line in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+", line), line
    # Nothing irreversible before everything else is built: PyPI only after the images, the
    # GitHub release only after both.
    assert jobs["images"]["needs"] in ("dist", ["dist"])
    assert {"dist", "images"} <= set(jobs["pypi"]["needs"])
    assert {"dist", "pypi", "images"} <= set(jobs["github-release"]["needs"])

    # Trusted publishing: an OIDC token in a protected environment, no stored password.
    assert jobs["pypi"]["permissions"] == {"id-token": "write"}
    assert jobs["pypi"]["environment"]["name"] == "pypi"
    assert "with" not in step("pypi", "pypa/gh-action-pypi-publish")
    assert any("python -m build" in s.get("run", "") for s in jobs["dist"]["steps"])
    # Both targets of the Dockerfile, under the version, with an SBOM and provenance.
    targets = set(re.findall(r"^FROM \S+ AS (\w+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE))
    matrix = {m["target"] for m in jobs["images"]["strategy"]["matrix"]["include"]}
    assert matrix == {"function", "publisher"} <= targets
    build = step("images", "docker/build-push-action")["with"]
    assert build["target"] == "${{ matrix.target }}" and build["tags"].endswith(":${{ env.VERSION }}")
    assert build["sbom"] is True and build["provenance"] == "mode=max"
    assert "push=true" in build["outputs"] and jobs["images"]["permissions"]["packages"] == "write"
    # The release carries the man page and every shell's completion script, made from the wheel.
    release = "\n".join(s.get("run", "") for s in jobs["github-release"]["steps"])
    assert "scripts/man-page.sh extras" in release and "for shell in bash zsh fish" in release
    # ... the page `make man` writes: both run scripts/man-page.sh.
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(
        r"^\tSOURCE_DATE_EPOCH=\$\(SOURCE_DATE_EPOCH\) .*scripts/man-page\.sh \$\(MAN_DIR\)$", makefile, re.M
    )
    assert "SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) scripts/man-page.sh extras" in release
    assert re.search(r"gh release create .* dist/\* extras/\*", release)


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
    return spec["template"]["spec"]


def token_mount(pod: dict[str, Any], container: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(the file the function reads its Vault login token from, the projected token source)."""
    env = {e["name"]: e.get("value") for e in container["env"]}
    token_file = env["SECRET_CONTRACT_AUTH_JWT_FILE"]
    mount = next(m for m in container["volumeMounts"] if token_file.startswith(m["mountPath"] + "/"))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    source = volume["projected"]["sources"][0]["serviceAccountToken"]
    assert token_file == f"{mount['mountPath']}/{source['path']}"
    return token_file, source


def test_flux_manifests_are_valid_for_flux_2_6_and_2_7(kubectl: str) -> None:
    route_ci = yaml_codec.load_all((EXAMPLES / "flux" / "clusters" / "prod" / "platform.yaml").read_text())
    in_cluster = kustomize(kubectl, EXAMPLES / "flux" / "in-cluster")
    for doc in [*route_ci, *in_cluster]:
        if doc["apiVersion"].endswith(".fluxcd.io/v1"):
            assert flux_problems(doc) == {"v2.6": [], "v2.7": []}, doc["kind"]
        else:
            assert kubernetes_problems(doc) == [], doc["kind"]
    for docs in (route_ci, in_cluster):
        source = next(d for d in docs if d["kind"] == "OCIRepository")
        apply = next(d for d in docs if d["kind"] == "Kustomization")
        assert apply["spec"]["sourceRef"] == {"kind": "OCIRepository", "name": source["metadata"]["name"]}

    kinds = {d["kind"]: d for d in in_cluster}
    cron, job, account = kinds["CronJob"], kinds["Job"], kinds["ServiceAccount"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert job["spec"]["template"] == cron["spec"]["jobTemplate"]["spec"]["template"]  # one pod, two triggers
    pod = pod_spec(cron)
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert pod["automountServiceAccountToken"] is False and account["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    _, token = token_mount(pod, container)
    assert token["audience"] == "vault"
    # The artifact the CronJob pushes is the one Flux pulls.
    env = {e["name"]: e.get("value", "") for e in container["env"]}
    pushed = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], container["args"][-1])
    assert pushed == f"{kinds['OCIRepository']['spec']['url']}:{kinds['OCIRepository']['spec']['ref']['tag']}"
    auth = {e["name"]: e.get("value") for e in container["env"] if e["name"].startswith("SECRET_CONTRACT_AUTH")}
    assert set(auth) == {vault_auth.METHOD_ENV, vault_auth.ROLE_ENV, f"{vault_auth.JWT_ENV}_FILE"}
    assert auth[vault_auth.METHOD_ENV] == "kubernetes"


def test_external_artifact_route_manifests_are_valid_for_flux_2_7_and_kubernetes(kubectl: str) -> None:
    route = kustomize(kubectl, EXAMPLES / "flux" / "external-artifact")
    crd = next(d for d in route if d["kind"] == "CustomResourceDefinition")
    crd_file = EXAMPLES / "flux" / "external-artifact" / "crd.yaml"
    for doc in route:
        if doc["apiVersion"].endswith(".fluxcd.io/v1"):
            # ExternalArtifact is a source kind from Flux 2.7 on; 2.6 refuses it.
            found = flux_problems(doc)
            assert found["v2.7"] == [], doc["kind"]
            assert any("ExternalArtifact" in p for p in found["v2.6"]), found
        elif doc["apiVersion"] == "hostk8s.io/v1alpha1":
            assert problems(doc, crd_file) == [], doc["kind"]
        else:
            assert kubernetes_problems(doc) == [], doc["kind"]
    kinds = {d["kind"]: d for d in route}
    render, apply = kinds["SecretContractRender"], kinds["Kustomization"]
    assert apply["spec"]["sourceRef"] == {"kind": "ExternalArtifact", "name": render["metadata"]["name"]}
    assert crd["spec"]["names"]["kind"] == "SecretContractRender"
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["serviceAccountName"] == kinds["ServiceAccount"]["metadata"]["name"]
    _, token = token_mount(pod, container)
    assert token["audience"] == "vault"
    assert (
        kinds["Deployment"]["spec"]["replicas"] == 1 and kinds["Deployment"]["spec"]["strategy"]["type"] == "Recreate"
    )
    assert container["readinessProbe"]["httpGet"]["port"] == "http"  # the artifact port: only the leader is ready
    rules = kinds["ClusterRole"]["rules"]
    assert not any("secrets" in r["resources"] for r in rules)  # Vault is reached with the projected token


def argocd_install(tmp_path: Path) -> Path:
    """The example's kustomization over the stored upstream manifests instead of the remote
    install.yaml (no network in tests)."""
    folder = tmp_path / "argocd"
    shutil.copytree(EXAMPLES / "argocd", folder)
    shutil.copy(ARGO / "argocd-repo-server-deployment.yaml", folder)
    shutil.copy(ARGO / "argocd-cmd-params-cm.yaml", folder / "upstream-argocd-cmd-params-cm.yaml")
    kustomization = (folder / "kustomization.yaml").read_text()
    remote = "  - https://raw.githubusercontent.com/argoproj/argo-cd/v3.5.1/manifests/install.yaml\n"
    assert remote in kustomization
    local = "  - argocd-repo-server-deployment.yaml\n  - upstream-argocd-cmd-params-cm.yaml\n"
    (folder / "kustomization.yaml").write_text(kustomization.replace(remote, local))
    return folder


def test_argocd_plugin_sidecar_patches_the_upstream_repo_server(tmp_path: Path, kubectl: str) -> None:
    docs = {d["kind"] + "/" + d["metadata"]["name"]: d for d in kustomize(kubectl, argocd_install(tmp_path))}
    for doc in docs.values():
        assert kubernetes_problems(doc) == [], doc["metadata"]["name"]
    deployment = docs["Deployment/argocd-repo-server"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False  # upstream's choice stands
    containers = {c["name"]: c for c in pod["containers"]}
    sidecar, server = containers["secret-contract"], containers["argocd-repo-server"]
    # What Argo CD's cmp-server needs: its binary from the shared volume, the plugin sockets'
    # folder, plugin.yaml at its fixed path, and the argocd user (999).
    assert sidecar["command"] == ["/var/run/argocd/argocd-cmp-server"]
    assert sidecar["securityContext"]["runAsUser"] == 999
    mounts = {m["mountPath"]: m["name"] for m in sidecar["volumeMounts"]}
    assert mounts["/var/run/argocd"] == "var-files" and mounts["/home/argocd/cmp-server/plugins"] == "plugins"
    assert "/home/argocd/cmp-server/config/plugin.yaml" in mounts
    upstream = {
        v["name"]
        for v in yaml_codec.load((ARGO / "argocd-repo-server-deployment.yaml").read_text())["spec"]["template"]["spec"][
            "volumes"
        ]
    }
    assert {"var-files", "plugins"} <= upstream
    _, token = token_mount(pod, sidecar)
    assert token["audience"] == "vault"
    token_volumes = {v["name"] for v in pod["volumes"] if "projected" in v}
    assert not [m for m in server.get("volumeMounts", []) if m["name"] in token_volumes]  # the sidecar's alone

    # plugin.yaml reaches the sidecar from the generated ConfigMap (hashed name, references updated).
    mount = next(m for m in sidecar["volumeMounts"] if m["mountPath"] == "/home/argocd/cmp-server/config/plugin.yaml")
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    config_map = docs[f"ConfigMap/{volume['configMap']['name']}"]
    plugin = yaml_codec.load(config_map["data"][mount["subPath"]])
    jsonschema.Draft202012Validator(json.loads((ARGO / "configmanagementplugin.schema.json").read_text())).validate(
        plugin
    )
    assert "discover" not in plugin["spec"] and "version" not in plugin["spec"]
    application = yaml_codec.load((EXAMPLES / "argocd" / "application.yaml").read_text())
    assert problems(application, ARGO / "application-crd.stripped.yaml") == []
    assert application["spec"]["source"]["plugin"]["name"] == plugin["metadata"]["name"]

    # The v3.5.1 cmp-server runs `generate` on the callers' gRPC deadline (less 100 ms) and reads
    # no ARGOCD_EXEC_TIMEOUT: the callers' repo-server timeouts are the build's whole budget, well
    # over their 60 s default, and the same for both so that neither abandons a build the other waits for.
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    assert "ARGOCD_EXEC_TIMEOUT" not in env
    params = docs["ConfigMap/argocd-cmd-params-cm"]
    waits = {int(params["data"][f"{who}.repo.server.timeout.seconds"]) for who in ("server", "controller")}
    assert len(waits) == 1 and min(waits) >= 180, waits
    assert params["metadata"]["labels"]["app.kubernetes.io/part-of"] == "argocd"  # merged into upstream's
