"""`secret-contract publish`: a kustomization built with the function (Vault written, strictly)
and pushed to a real OCI registry (Debian's docker-registry) as a Flux artifact, pulled back
and checked: media types, annotations, a reproducible layer, a plain-kustomize build of what
Flux would get, and no SecretContract or value inside."""

from __future__ import annotations

import base64
import gzip
import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from builders import commit_tree, git
from conftest import EXAMPLES, Ran, Vault, assert_no_leak, run, serving_registry
from faults import Answer, header_answering_server
from oci_artifact import MANIFEST, build_layer, get, pull
from secret_contract import publish


@pytest.fixture
def repository(tmp_path: Path, kubectl: str) -> Path:
    """The sample app in a git repository with one commit (what is published from it is built
    with kustomize: kubectl's)."""
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES / "sample-app", repo / "app")
    commit_tree(repo, "app")
    git(repo, "remote", "add", "origin", "https://token:s3cret@git.example.com/platform/apps.git")
    return repo


def publish_cli(repo: Path, target: str, env: dict[str, str], *extra: str) -> Ran:
    return run([sys.executable, "-m", "secret_contract", "publish", str(repo / "app"), target, *extra], env=env)


def test_publish_pushes_a_flux_artifact_that_plain_kustomize_builds(
    repository: Path, registry: str, vault: Vault, kubectl: str, tmp_path: Path
) -> None:
    target = f"oci://{registry}/platform/sample-app:v1"
    ran = publish_cli(repository, target, vault.env, "--insecure", "--tag", "latest")
    assert ran.returncode == 0, ran.stderr
    assert vault.read("sample-app/postgres-credentials") is not None  # Vault written as a build writes it
    manifest, config, layer = pull(registry, "platform/sample-app", "v1")
    assert manifest["mediaType"] == MANIFEST
    assert manifest["config"]["mediaType"] == "application/vnd.cncf.flux.config.v1+json" and json.loads(config) == {}
    assert [entry["mediaType"] for entry in manifest["layers"]] == ["application/vnd.cncf.flux.content.v1.tar+gzip"]
    notes = manifest["annotations"]
    assert notes["org.opencontainers.image.revision"] == f"main@sha1:{git(repository, 'rev-parse', 'HEAD')}"
    assert notes["org.opencontainers.image.source"] == "https://git.example.com/platform/apps.git"  # no credentials
    assert notes["org.opencontainers.image.created"].endswith("Z")
    assert pull(registry, "platform/sample-app", "latest")[0] == manifest

    kinds = [d["kind"] for d in build_layer(layer, kubectl, tmp_path / "extracted")]
    assert kinds.count("ExternalSecret") == 2 and "SecretContract" not in kinds
    assert_no_leak([ran.text, layer.decode("latin-1"), gzip.decompress(layer).decode()], vault.values(), ("postgres",))


def test_publishing_the_same_commit_twice_gives_the_same_digests(repository: Path, registry: str, vault: Vault) -> None:
    first = publish_cli(repository, f"oci://{registry}/platform/again:one", vault.env, "--insecure")
    second = publish_cli(repository, f"oci://{registry}/platform/again:two", vault.env, "--insecure")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    one, _, layer_one = pull(registry, "platform/again", "one")
    two, _, layer_two = pull(registry, "platform/again", "two")
    assert one["layers"][0]["digest"] == two["layers"][0]["digest"] and layer_one == layer_two
    assert first.stdout.split("@")[1] == second.stdout.split("@")[1]  # the manifest digest too


def test_dry_run_writes_the_layer_and_pushes_nothing(
    repository: Path, registry: str, vault: Vault, tmp_path: Path
) -> None:
    output = tmp_path / "artifact.tar.gz"
    ran = publish_cli(
        repository, f"oci://{registry}/platform/dry:x", vault.env, "--dry-run", "--layer-file", str(output)
    )
    assert ran.returncode == 0, ran.stderr
    preview = json.loads(ran.stdout)
    assert preview["layers"][0]["digest"] == publish.layer_digest(publish.Artifact(output.read_bytes()))
    with pytest.raises(urllib.error.HTTPError):
        get(registry, "platform/dry/manifests/x")


def test_a_build_that_cannot_write_vault_publishes_nothing(repository: Path, registry: str) -> None:
    ran = publish_cli(
        repository,
        f"oci://{registry}/platform/broken:x",
        {"VAULT_ADDR": "http://127.0.0.1:9", "VAULT_TOKEN": "t"},
        "--insecure",
    )
    assert ran.returncode == 1 and "building" in ran.stderr and "Vault was not written" in ran.stderr
    with pytest.raises(urllib.error.HTTPError):
        get(registry, "platform/broken/manifests/x")


@pytest.mark.registry  # a registry of its own, asking for a login
def test_registry_credentials_come_from_the_environment_or_the_docker_config(
    repository: Path, vault: Vault, tmp_path: Path
) -> None:
    """A registry that requires a login: refused without one, accepted with either."""
    import bcrypt  # the registry reads bcrypt hashes only

    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"pusher:{bcrypt.hashpw(b'pushpass', bcrypt.gensalt()).decode()}\n")
    with serving_registry(tmp_path, htpasswd) as locked:
        target = f"oci://{locked}/platform/locked:x"
        refused = publish_cli(repository, target, vault.env, "--insecure")
        assert refused.returncode == 1 and f"{locked} asks for credentials" in refused.stderr
        wrong = publish_cli(
            repository, target, {**vault.env, "REGISTRY_USERNAME": "pusher", "REGISTRY_PASSWORD": "nope"}, "--insecure"
        )
        assert wrong.returncode == 1 and "refused the credentials" in wrong.stderr
        by_env = publish_cli(
            repository,
            target,
            {**vault.env, "REGISTRY_USERNAME": "pusher", "REGISTRY_PASSWORD": "pushpass"},
            "--insecure",
        )
        assert by_env.returncode == 0, by_env.stderr
        docker = tmp_path / "docker"
        docker.mkdir()
        auth = base64.b64encode(b"pusher:pushpass").decode()
        (docker / "config.json").write_text(json.dumps({"auths": {locked: {"auth": auth}}}))
        by_config = publish_cli(
            repository, target.replace(":x", ":y"), {**vault.env, "DOCKER_CONFIG": str(docker)}, "--insecure"
        )
        assert by_config.returncode == 0, by_config.stderr
        # Some tools key the entry by URL rather than by host.
        (docker / "config.json").write_text(json.dumps({"auths": {f"https://{locked}": {"auth": auth}}}))
        by_url_key = publish_cli(
            repository, target.replace(":x", ":z"), {**vault.env, "DOCKER_CONFIG": str(docker)}, "--insecure"
        )
        assert by_url_key.returncode == 0, by_url_key.stderr
    assert_no_leak([refused.text, by_env.text, by_config.text, by_url_key.text], ["pushpass", auth])


@pytest.fixture
def bare_repository(repository: Path, tmp_path: Path) -> Path:
    """The sample app's repository as a bare one, with an annotated tag and a symlink that
    points out of the repository."""
    (repository / "escape").symlink_to("/etc")
    for args in (["add", "escape"], ["commit", "-q", "-m", "escape"], ["tag", "-a", "v1", "-m", "release v1"]):
        git(repository, *args)
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repository), str(bare)], check=True)
    return bare


def test_publish_from_a_git_url_builds_the_clone_and_refuses_what_is_unsafe(
    bare_repository: Path, vault: Vault, tmp_path: Path
) -> None:
    url = f"file://{bare_repository}"
    out = tmp_path / "artifact.tar.gz"

    def from_git(*args: str, env: dict[str, str] | None = None) -> Ran:
        return run(
            [sys.executable, "-m", "secret_contract", "publish", "--dry-run", "--layer-file", str(out), *args],
            env={**vault.env, **(env or {})},
        )

    commit = git(bare_repository, "rev-parse", "v1^{commit}")
    tagged = from_git("--git", url, "--ref", "v1", "app", "oci://registry.example.com/a:b")
    assert tagged.returncode == 0, tagged.stderr
    notes = json.loads(tagged.stdout)["annotations"]
    assert notes["org.opencontainers.image.revision"] == f"v1@sha1:{commit}"  # the tag's commit, not the tag
    assert notes["org.opencontainers.image.source"] == url
    assert vault.read("sample-app/postgres-credentials") is not None

    refusals = {
        "a missing ref": (("--git", url, "--ref", "nope", "app"), "cloning"),
        "a path out of the repository": (("--git", url, "--ref", "main", "../app"), "a path inside the repository"),
        "a symlink out of the repository": (("--git", url, "--ref", "main", "escape"), "a path inside the repository"),
        "credentials in the URL": (
            ("--git", "https://bot:t0ken-in-url@git.example.com/x.git", "app"),
            "not in the URL",
        ),
        "plain http without --insecure": (("--git", "http://git.example.com/x.git", "app"), "is not encrypted"),
        "ssh": (("--git", "ssh://git@git.example.com/x.git", "app"), "SSH is not supported"),
    }
    for case, (args, expected) in refusals.items():
        refused = from_git(*args, "oci://registry.example.com/a:b")
        assert refused.returncode == 1 and expected in refused.stderr, case
        assert "Traceback" not in refused.stderr and "t0ken-in-url" not in refused.text, case


def test_a_registry_that_echoes_request_headers_never_prints_the_credentials(repository: Path, vault: Vault) -> None:
    """The push carries the registry login as an Authorization header; a registry (or a proxy
    in front of it) that echoes the request's headers in its error must not print them."""

    def registry(method: str, path: str, headers: dict[str, str], _body: bytes) -> Answer:
        if "Authorization" not in headers:
            return 401, {"WWW-Authenticate": 'Basic realm="echo"', "Content-Type": "application/json"}, b"{}"
        if path == "/v2/" or method == "HEAD":
            return (200 if path == "/v2/" else 404), {"Content-Type": "application/json"}, b"{}"
        first = sorted(headers.items(), key=lambda kv: kv[0] != "Authorization")  # before any cut
        echoed = {"errors": [{"code": "DENIED", "message": "; ".join(f"{k}: {v}" for k, v in first)}]}
        return 400, {"Content-Type": "application/json"}, json.dumps(echoed).encode()

    env = {**vault.env, "REGISTRY_USERNAME": "pusher-sentinel", "REGISTRY_PASSWORD": "pushpass-sentinel"}
    with header_answering_server(registry) as addr:
        ran = publish_cli(repository, f"oci://{addr.removeprefix('http://')}/platform/echo:x", env, "--insecure")
    assert ran.returncode == 1 and "pushing" in ran.stderr and "Authorization" in ran.stderr, ran.stderr
    pair = base64.b64encode(b"pusher-sentinel:pushpass-sentinel").decode()
    assert_no_leak([ran.text], ["pushpass-sentinel", "pusher-sentinel", pair, pair[:16]])


def test_dry_run_into_a_missing_folder_fails_before_the_build(repository: Path, vault: Vault, tmp_path: Path) -> None:
    output = tmp_path / "missing" / "dir" / "artifact.tar.gz"
    # --output, the former name of --layer-file, still works and says so.
    ran = publish_cli(repository, "oci://127.0.0.1:9/platform/dry:x", vault.env, "--dry-run", "--output", str(output))
    assert ran.returncode == 1 and "Traceback" not in ran.stderr, ran.stderr
    assert "[warning] publish --output is deprecated: use --layer-file" in ran.stderr
    assert f"--layer-file {output}" in ran.stderr and "no such directory" in ran.stderr
    assert vault.paths() == []  # checked before the build wrote Vault


def test_a_source_date_epoch_of_thousands_of_digits_is_not_a_time() -> None:
    notes = publish.annotations(publish.Origin(), {"SOURCE_DATE_EPOCH": "9" * 5000})
    assert notes["org.opencontainers.image.created"].endswith("Z")


def test_a_working_tree_with_uncommitted_changes_is_refused_unless_allowed_and_then_marked(
    repository: Path, registry: str, vault: Vault
) -> None:
    commit = git(repository, "rev-parse", "HEAD")
    kustomization = repository / "app" / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text() + "commonLabels: {edited: locally}\n")
    target = f"oci://{registry}/platform/dirty:x"
    refused = publish_cli(repository, target, vault.env, "--insecure")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert "uncommitted changes (app/kustomization.yaml)" in refused.stderr and "--allow-dirty" in refused.stderr
    assert vault.paths() == []  # refused before the build wrote Vault
    with pytest.raises(urllib.error.HTTPError):
        get(registry, "platform/dirty/manifests/x")

    (repository / "app" / "notes.txt").write_text("untracked\n")
    git(repository, "checkout", "--", "app/kustomization.yaml")
    untracked = publish_cli(repository, target, vault.env, "--insecure")
    assert untracked.returncode == 1 and "app/notes.txt" in untracked.stderr, untracked.stderr

    kustomization.write_text(kustomization.read_text() + "commonLabels: {edited: locally}\n")
    allowed = publish_cli(repository, target, vault.env, "--insecure", "--allow-dirty")
    assert allowed.returncode == 0, allowed.stderr
    manifest, _, _ = pull(registry, "platform/dirty", "x")
    assert manifest["annotations"]["org.opencontainers.image.revision"] == f"main@sha1:{commit}-dirty"


def test_a_git_status_that_fails_is_not_taken_for_a_tree_without_uncommitted_changes(
    repository: Path, registry: str, vault: Vault
) -> None:
    # A damaged index: HEAD still reads, `git status` does not.
    (repository / ".git" / "index").write_bytes(b"not an index")
    said = subprocess.run(["git", "-C", str(repository), "status"], capture_output=True, text=True)
    assert said.returncode != 0 and git(repository, "rev-parse", "HEAD")
    ran = publish_cli(repository, f"oci://{registry}/platform/unknown:x", vault.env, "--insecure", "--allow-dirty")
    assert ran.returncode == 1 and "Traceback" not in ran.stderr, ran.stderr
    assert f"{repository / 'app'}: cannot tell whether the git working tree is clean: git status: " in ran.stderr
    assert said.stderr.strip().splitlines()[0] in ran.stderr
    assert vault.paths() == []
    with pytest.raises(urllib.error.HTTPError):
        get(registry, "platform/unknown/manifests/x")


def test_a_plain_http_registry_without_insecure_is_named_with_the_fix(
    repository: Path, registry: str, vault: Vault
) -> None:
    ran = publish_cli(repository, f"oci://{registry}/platform/tls:x", vault.env)
    assert ran.returncode == 1 and "Traceback" not in ran.stderr, ran.stderr
    assert "answers plain HTTP, not TLS: pass --insecure" in ran.stderr
