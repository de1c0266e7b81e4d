"""Every way users run builds, as the examples under kustomize-examples/ ship them: a
multi-stack platform with overlays, a kpt package, the CI workflow's commands, the Flux and
Argo CD routes (the parts that run without those controllers), and the Makefile drop-in."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from builders import commit_tree
from conftest import BIN, EXAMPLES, ROOT, Ran, Vault, assert_no_leak, run, secret_contract
from oci_artifact import pull
from secret_contract import vault_auth, yaml_codec

PLATFORM = EXAMPLES / "platform"


def kustomize(kubectl: str, path: Path, plugin_home: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    ran = run(
        [kubectl, "kustomize", "--enable-alpha-plugins", str(path)],
        env={**env, "KUSTOMIZE_PLUGIN_HOME": str(plugin_home)},
    )
    assert ran.returncode == 0, ran.stderr
    return yaml_codec.load_all(ran.stdout)


def externalsecrets(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{d['metadata']['namespace']}/{d['metadata']['name']}": d for d in docs if d["kind"] == "ExternalSecret"}


def test_platform_overlays_give_each_environment_its_store_and_interval(
    kubectl: str, plugin_home: Path, vault: Vault
) -> None:
    dev = kustomize(kubectl, PLATFORM / "overlays" / "dev", plugin_home, vault.env)
    prod = kustomize(kubectl, PLATFORM / "overlays" / "prod", plugin_home, vault.env)
    for docs, store, interval, env in ((dev, "vault-dev", "15m", "dev"), (prod, "vault-prod", "1h", "prod")):
        found = externalsecrets(docs)
        assert set(found) == {
            "sample-app/postgres-credentials",
            "sample-app/redis-credentials",
            "airflow/airflow-secrets",
            "airflow/airflow-postgres",
        }
        for es in found.values():
            assert es["spec"]["secretStoreRef"]["name"] == store and es["spec"]["refreshInterval"] == interval
            assert es["metadata"]["labels"]["platform.example.com/environment"] == env
        assert found["airflow/airflow-postgres"]["spec"]["target"]["template"]["type"] == "kubernetes.io/basic-auth"
        assert sum(d["kind"] == "Namespace" for d in docs) == 2
    # The nested stack's secrets live under their namespace, and both environments built from one Vault state.
    fernet = vault.read("airflow/airflow-secrets")
    assert fernet is not None and len(fernet["fernet-key"]) == 44
    assert vault.metadata("airflow/airflow-secrets")["custom_metadata"]["secret-contract-owner"] == (
        "foundation/airflow"
    )
    assert set(len(vault.metadata(p)["versions"]) for p in vault.paths()) == {1}
    again = kustomize(kubectl, PLATFORM / "overlays" / "dev", plugin_home, vault.env)
    assert again == dev


def test_kpt_package_example_renders_and_rerenders_unchanged(kpt: str, tmp_path: Path, vault: Vault) -> None:
    pkg = tmp_path / "kpt-package"
    shutil.copytree(EXAMPLES / "kpt-package", pkg)
    first = run([kpt, "fn", "render", "--allow-exec", str(pkg)], env=vault.env)
    assert first.returncode == 0, first.text
    generated = (pkg / "external-secrets.generated.yaml").read_text()
    assert generated.count("kind: ExternalSecret") == 2
    files = {p.name: p.read_text() for p in pkg.iterdir()}
    second = run([kpt, "fn", "render", "--allow-exec", str(pkg)], env=vault.env)
    assert second.returncode == 0 and {p.name: p.read_text() for p in pkg.iterdir()} == files
    assert vault.read("sample-app/postgres-credentials") is not None


WORKFLOW = EXAMPLES / "ci" / "github-workflow.yaml"
# Steps that only exist on GitHub's runners: installing the released package (the tests run
# this checkout) and fetching the job's OIDC token (Vault's token stands in for the login).
RUNNER_ONLY = ("Install secret-contract", "Fetch the job's OIDC token")


def workflow_steps(job: str) -> dict[str, str]:
    doc = yaml_codec.load(WORKFLOW.read_text())
    steps = doc["jobs"][job]["steps"]
    return {s["name"]: s["run"] for s in steps if "run" in s and s["name"] not in RUNNER_ONLY}


def run_step(script: str, env: dict[str, str], cwd: Path) -> Ran:
    """A `run:` step as the runner runs it, with this checkout's commands first on PATH."""
    return run(["bash", "-euo", "pipefail", "-c", script], env=env, cwd=cwd)


def user_repository(tmp_path: Path) -> Path:
    """A repository shaped as the workflow expects: the platform example at platform/."""
    repo = tmp_path / "repo"
    shutil.copytree(PLATFORM, repo / "platform")
    commit_tree(repo, "platform")
    return repo


@pytest.mark.usefixtures("kubectl")  # its steps run kubectl kustomize
def test_ci_render_job_passes_without_credentials_and_fails_on_a_bad_contract(tmp_path: Path) -> None:
    steps = list(workflow_steps("render").values())
    # GitHub sets CI=true: builds are strict there unless a step says otherwise.
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "CI": "true"}
    repo = user_repository(tmp_path)
    for script in steps:
        done = run_step(script, env, repo)
        assert done.returncode == 0, done.stderr
    # The same job fails on an invalid contract, naming file and field, in every step.
    bad = repo / "platform" / "stacks" / "sample-app" / "hostk8s.secrets.yaml"
    bad.write_text(bad.read_text().replace("length: 24", "length: 4"))
    for script in steps:
        failed = run_step(script, env, repo)
        assert failed.returncode == 1
        assert "platform/stacks/sample-app/hostk8s.secrets.yaml" in failed.stderr
        assert "SecretContract/sample-app: spec.secrets[0].data[1].length" in failed.stderr


@pytest.mark.usefixtures("kubectl")  # publish builds with kustomize
def test_ci_vault_job_writes_verifies_and_publishes(tmp_path: Path, vault: Vault, registry: str) -> None:
    steps = workflow_steps("vault")
    repo = user_repository(tmp_path)
    env = {**vault.env, "CI": "true", "REGISTRY": f"{registry}/ci", "GITHUB_SHA": "0123456789abcdef0123"}
    repo_names = " ".join(str(p.relative_to(repo)) for p in repo.rglob("*"))
    for name, script in steps.items():
        if name == "Publish the prod overlay for Flux":
            script = script.rstrip() + " --insecure"  # the test registry speaks plain HTTP on loopback
        done = run_step(script, env, repo)
        assert done.returncode == 0, f"{name}: {done.stderr}"
        # Static usernames (`airflow`, `postgres`) are part of the file and Vault paths printed.
        printed = [done.stdout, done.stderr]
        assert_no_leak(printed, [vault.server.token, *vault.values()], names=(repo_names, *vault.paths()))
    assert vault.read("airflow/airflow-postgres") is not None
    assert vault.read("sample-app/redis-credentials") is not None
    for tag in ("0123456789ab", "latest"):
        manifest, _, _ = pull(registry, "ci/platform-prod", tag)
        assert manifest["config"]["mediaType"] == "application/vnd.cncf.flux.config.v1+json"


@pytest.mark.usefixtures("kubectl")  # the target runs kubectl kustomize
def test_make_render_check_is_the_ci_render_job() -> None:
    done = subprocess.run(["make", "-C", str(ROOT), "render-check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "rendered kustomize-examples/platform/overlays/prod" in done.stdout


@pytest.mark.usefixtures("kubectl")  # `secret-contract build` runs kustomize
def test_argocd_plugin_generate_command_builds_a_stack(tmp_path: Path, plugin_home: Path, vault: Vault) -> None:
    """The plugin's command, run where the sidecar runs it: in the Application's directory,
    with the legacy plugin installed (test_in_cluster runs it inside the publisher image)."""
    plugin = yaml_codec.load((EXAMPLES / "argocd" / "plugin.yaml").read_text())
    app = tmp_path / "app"
    shutil.copytree(PLATFORM / "stacks" / "sample-app", app)
    command = plugin["spec"]["generate"]["command"] + plugin["spec"]["generate"].get("args", [])
    env = {**os.environ, **vault.env, "KUSTOMIZE_PLUGIN_HOME": str(plugin_home)}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(command, cwd=app, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert set(externalsecrets(yaml_codec.load_all(done.stdout))) == {
        "sample-app/postgres-credentials",
        "sample-app/redis-credentials",
    }
    assert vault.read("sample-app/postgres-credentials") is not None


def test_example_environments_only_name_settings_the_function_reads() -> None:
    """Every SECRET_CONTRACT_*/VAULT_* variable an example sets is one the function reads."""
    known = set(Path(ROOT / "krm-fn" / "secret_contract").glob("*.py"))
    source = "\n".join(p.read_text() for p in known)
    patch = yaml_codec.load((EXAMPLES / "argocd" / "repo-server-patch.yaml").read_text())
    container = patch["spec"]["template"]["spec"]["containers"][0]
    names = {e["name"] for e in container["env"] if e["name"].startswith(("VAULT_", "SECRET_CONTRACT_"))}
    workflow = yaml_codec.load((EXAMPLES / "ci" / "github-workflow.yaml").read_text())
    names |= {n for n in workflow["jobs"]["vault"]["env"] if n.startswith(("VAULT_", "SECRET_CONTRACT_"))}
    cronjob = yaml_codec.load((EXAMPLES / "flux" / "in-cluster" / "cronjob.yaml").read_text())
    publisher = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    names |= {e["name"] for e in publisher["env"] if e["name"].startswith(("VAULT_", "SECRET_CONTRACT_"))}
    annotation = yaml_codec.load((EXAMPLES / "sample-app-container" / "hostk8s.secrets.yaml").read_text())
    names |= set(
        yaml_codec.load(annotation["metadata"]["annotations"]["config.kubernetes.io/function"])["container"]["envs"]
    )
    # NAME_FILE variables are read through NAME (vault_auth.secret_input).
    missing = sorted(n for n in names if f'"{n}"' not in source and f'"{n.removesuffix("_FILE")}"' not in source)
    assert not missing, missing
    method = next(e["value"] for e in container["env"] if e["name"] == "SECRET_CONTRACT_AUTH_METHOD")
    assert method in vault_auth.METHODS


def test_makefile_dropin_up_list_check_down(tmp_path: Path, vault: Vault) -> None:
    make = ["make", "--no-print-directory", "-f", str(EXAMPLES / "makefile-dropin" / "Makefile")]
    env = {
        **vault.env,
        "SECRET_CONTRACT": f"{sys.executable} -m secret_contract",
        "SECRET_CONTRACT_STACKS_ROOT": str(PLATFORM / "stacks"),
    }
    up = run([*make, "up", "foundation/airflow"], env=env)
    assert up.returncode == 0, up.stderr
    assert up.stdout.strip() == ""  # nothing secret, nothing at all
    listed = run([*make, "secrets", "foundation/airflow"], env=env)
    assert f"{vault.mount}/airflow/airflow-secrets" in listed.stdout
    assert run([*make, "secrets-check", "foundation/airflow"], env=env).returncode == 0
    assert run([*make, "secrets-plan", "foundation/airflow"], env=env).returncode == 0
    before = vault.snapshot()
    down = run([*make, "down", "foundation/airflow"], env=env)
    assert down.returncode == 0, down.stderr
    assert "released" in down.stderr and vault.snapshot() == before  # every value and version kept
    again = run([*make, "up", "foundation/airflow"], env=env)
    assert again.returncode == 0, again.stderr
    assert vault.snapshot() == before  # the same credentials: no new value, no new version
    removed = run([*make, "secrets-remove", "foundation/airflow"], env=env)
    assert removed.returncode == 0 and vault.paths() == []
    assert_no_leak([up.text, listed.text, down.text, again.text, removed.text], [vault.server.token])


def test_init_wires_a_stack_keeping_comments(tmp_path: Path, kubectl: str, plugin_home: Path, vault: Vault) -> None:
    stack = tmp_path / "stack"
    stack.mkdir()
    contract = (EXAMPLES / "sample-app" / "hostk8s.secrets.yaml").read_text()
    (stack / "hostk8s.secrets.yaml").write_text(contract)
    (stack / "namespace.yaml").write_text((EXAMPLES / "sample-app" / "namespace.yaml").read_text())
    kustomization = (
        "# the stack\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources:\n  - namespace.yaml  # keep me\n"
    )
    (stack / "kustomization.yaml").write_text(kustomization)

    done = secret_contract("init", str(stack))
    assert done.returncode == 0, done.stderr
    wired = (stack / "kustomization.yaml").read_text()
    assert wired.startswith("# the stack\n") and "  - namespace.yaml  # keep me\n" in wired
    assert "generators:\n  - hostk8s.secrets.yaml\n" in wired
    assert (stack / "hostk8s.secrets.yaml").read_text() == contract  # legacy: contract untouched
    docs = kustomize(kubectl, stack, plugin_home, vault.env)
    assert len(externalsecrets(docs)) == 2

    before = {p.name: p.read_text() for p in stack.iterdir()}
    assert secret_contract("init", str(stack)).returncode == 0
    assert {p.name: p.read_text() for p in stack.iterdir()} == before  # idempotent
    assert secret_contract("init", "--runtime", "container", "--image", "reg.example/sc:1", str(stack)).returncode == 0
    annotated = (stack / "hostk8s.secrets.yaml").read_text()
    assert annotated.startswith(contract.split("apiVersion")[0])  # the leading comments stay
    assert 'value: "5432"' in annotated
    spec = yaml_codec.load(yaml_codec.load(annotated)["metadata"]["annotations"]["config.kubernetes.io/function"])
    assert spec["container"]["image"] == "reg.example/sc:1" and spec["container"]["network"] is True
    assert secret_contract("init", "--runtime", "legacy", str(stack)).returncode == 0
    assert (stack / "hostk8s.secrets.yaml").read_text() == contract
