"""The containerized function, built from the Dockerfile and run by kustomize through a
real container engine (`docker` on PATH pointing at podman where no Docker daemon runs)."""

from __future__ import annotations

import re
import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from builders import DEMO, generator_input, lock_pins
from conftest import EXAMPLES, ROOT, TEST_BASE_IMAGE, Vault, assert_no_leak, assert_sample_app_built, run
from secret_contract import yaml_codec

CONTRACT = DEMO
# The label `make image` puts on its build stages, unique to each run (Makefile IMAGE_BUILD_ID).
BUILD_LABEL = "io.github.hostk8s.secret-contract.build"


@pytest.fixture
def container_app(tmp_path: Path, image: str) -> Path:
    target = tmp_path / "sample-app-container"
    shutil.copytree(EXAMPLES / "sample-app-container", target)
    contract = target / "hostk8s.secrets.yaml"
    contract.write_text(contract.read_text().replace("image: secret-contract:dev", f"image: {image}"))
    return target


def build(
    kubectl: str, path: Path, engine_path: str, env: dict[str, str], network: bool = True
) -> tuple[int, str, str]:
    args = [kubectl, "kustomize", "--enable-alpha-plugins", *(["--network"] if network else []), str(path)]
    ran = run(args, env={**env, "PATH": engine_path})
    return ran.returncode, ran.stdout, ran.stderr


def test_kustomize_runs_the_image_against_vault(
    kubectl: str, container_app: Path, engine_path: str, vault: Vault, plugin_home: Path
) -> None:
    rc, first, err1 = build(kubectl, container_app, engine_path, vault.env)
    assert rc == 0, err1
    docs = assert_sample_app_built(first, vault)

    before = vault.snapshot()
    rc, second, err2 = build(kubectl, container_app, engine_path, vault.env)
    assert rc == 0 and second == first and vault.snapshot() == before

    # The exec path (legacy plugin) renders the very same bytes from the same contract.
    exec_build = run(
        [kubectl, "kustomize", "--enable-alpha-plugins", str(EXAMPLES / "sample-app")],
        env={**vault.env, "KUSTOMIZE_PLUGIN_HOME": str(plugin_home)},
    )
    assert exec_build.returncode == 0 and exec_build.stdout == first
    names = tuple(d["metadata"]["name"] for d in docs)
    assert_no_leak([first, second, err1, err2], [*vault.values(), vault.server.token], names)


def test_without_network_kustomize_refuses(kubectl: str, container_app: Path, engine_path: str, vault: Vault) -> None:
    rc, _, err = build(kubectl, container_app, engine_path, vault.env, network=False)
    assert rc != 0 and "network required but not enabled with --network" in err
    assert vault.paths() == []


def test_an_unreachable_vault_fails_the_container_build_unless_strictness_is_off_naming_the_address(
    kubectl: str, container_app: Path, engine_path: str
) -> None:
    gone = {"VAULT_ADDR": "http://127.0.0.1:9", "VAULT_TOKEN": "t0ken-never-printed"}
    rc, out, err = build(kubectl, container_app, engine_path, {**gone, "SECRET_CONTRACT_STRICT": "false"})
    assert rc == 0 and out.count("kind: ExternalSecret") == 2
    assert "[warning] Vault was not written: http://127.0.0.1:9: cannot connect" in err
    for strictness in ({}, {"SECRET_CONTRACT_STRICT": "true"}):  # a configured Vault: strict or not
        rc, failed, err = build(kubectl, container_app, engine_path, {**gone, **strictness})
        assert rc != 0 and "[error] Vault was not written: http://127.0.0.1:9" in err
        assert "t0ken-never-printed" not in failed + err
    assert "t0ken-never-printed" not in out + err


def test_container_sees_only_the_env_it_declares(
    kubectl: str, container_app: Path, engine_path: str, vault: Vault
) -> None:
    # SECRET_CONTRACT_STORE_NAME is not in the annotation's envs: the host value must not arrive.
    env = {**vault.env, "SECRET_CONTRACT_STORE_NAME": "from-the-host"}
    rc, out, err = build(kubectl, container_app, engine_path, env)
    assert rc == 0, err
    assert "name: vault-backend" in out and "from-the-host" not in out
    # The declared ones did arrive: the values went to this test's mount.
    assert vault.read("sample-app/redis-credentials") is not None
    assert vault.server.token not in out + err


def test_image_runs_as_nobody_on_a_read_only_root(engine_path: str, image: str) -> None:
    ran = run(
        ["docker", "run", "--rm", "-i", "--read-only", "--user", "nobody", "--network", "none", image],
        env={"PATH": engine_path},
        stdin=generator_input(CONTRACT),
    )
    assert ran.returncode == 0, ran.stderr
    assert [i["kind"] for i in yaml_codec.load(ran.stdout)["items"]] == ["ExternalSecret"]
    user = run(["docker", "run", "--rm", "--entrypoint", "id", image, "-u"], env={"PATH": engine_path})
    assert user.stdout.strip() == "65534"
    leftovers = run(
        ["docker", "run", "--rm", "--entrypoint", "sh", image, "-c", "ls /opt/secret-contract/bin; ls /wheels 2>&1"],
        env={"PATH": engine_path},
    )
    assert "pip" not in leftovers.stdout.split() and "No such file" in leftovers.stdout


def test_a_token_file_the_container_cannot_read_says_by_whom(
    kubectl: str, container_app: Path, engine_path: str, vault: Vault
) -> None:
    token = container_app / "vault-token"
    token.write_text(vault.server.token)
    token.chmod(0o600)  # owned by this user; the function runs as nobody
    contract = container_app / "hostk8s.secrets.yaml"
    text = contract.read_text().replace(
        "        envs:\n",
        "        mounts: [{type: bind, src: ./vault-token, dst: /run/vault-token}]\n"
        "        envs:\n          - SECRET_CONTRACT_TOKEN_FILE=/run/vault-token\n",
    )
    contract.write_text(text.replace("          - VAULT_TOKEN\n", ""))
    rc, _, err = build(kubectl, container_app, engine_path, {**vault.env, "SECRET_CONTRACT_STRICT": "true"})
    assert rc != 0 and "/run/vault-token exists but cannot be read by uid 65534" in err
    assert vault.server.token not in err


def untagged(engine_path: str, label: str) -> list[str]:
    listed = run(
        ["docker", "images", "-q", "--no-trunc", "--filter", "dangling=true", "--filter", f"label={label}"],
        env={"PATH": engine_path},
    )
    return listed.stdout.split()


def test_building_the_image_again_prunes_its_own_stages_and_nothing_else(
    engine_path: str, image: str, tmp_path: Path
) -> None:
    # Untagged images of other builds alongside (another checkout, another run of make): one
    # with the title every image carries, one with another run's build label. Both must stay.
    (tmp_path / "Dockerfile").write_text(
        f"FROM {TEST_BASE_IMAGE}\nLABEL org.opencontainers.image.title=secret-contract\n"
        f"LABEL {BUILD_LABEL}=another-run\n"
    )
    decoy = run(["docker", "build", "-q", str(tmp_path)], env={"PATH": engine_path})
    assert decoy.returncode == 0, decoy.stderr
    try:
        build_id = f"test-{secrets.token_hex(4)}"
        built = run(
            [
                "make",
                "-C",
                str(ROOT),
                "image",
                f"BASE_IMAGE={TEST_BASE_IMAGE}",
                f"IMAGE={image}",
                f"IMAGE_BUILD_ID={build_id}",
            ],
            env={"PATH": engine_path},
        )
        assert built.returncode == 0, built.stderr[-2000:]
        assert untagged(engine_path, f"{BUILD_LABEL}={build_id}") == []
        assert untagged(engine_path, f"{BUILD_LABEL}=another-run") != []
    finally:
        run(
            ["docker", "image", "prune", "-f", "--filter", f"label={BUILD_LABEL}=another-run"],
            env={"PATH": engine_path},
        )


@pytest.mark.parametrize("target", ["function", "publisher"])
def test_two_builds_of_one_source_tree_give_the_same_image_digest(
    engine_path: str, tmp_path: Path, target: str
) -> None:
    """The source tree copied once (so that nothing changes it in between), then built twice as
    `make image` builds (afresh): same wheel, same files, same times, so the same digest."""
    tree = tmp_path / "tree"
    listed = run(["git", "-C", str(ROOT), "ls-files", "-z", "-co", "--exclude-standard"])
    for name in filter(None, listed.stdout.split("\0")):
        if (ROOT / name).is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tree / name)
    epoch = run(["git", "-C", str(ROOT), "log", "-1", "--format=%ct"]).stdout.strip()
    name = f"localhost/secret-contract-{target}-reproducible-{secrets.token_hex(4)}"
    digests = []
    try:
        for tag in ("first", "second"):
            built = run(
                # The shared virtualenv is never reinstalled from the copy (-o: its stamp is old enough).
                ["make", "-C", str(tree), "-o", str(ROOT / ".venv" / ".installed"), "image",
                 f"VENV={ROOT / '.venv'}", f"BASE_IMAGE={TEST_BASE_IMAGE}", f"TARGET={target}", f"IMAGE={name}:{tag}",
                 f"SOURCE_DATE_EPOCH={epoch}"],
                env={"PATH": engine_path},
            )  # fmt: skip
            assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
            inspected = run(
                ["docker", "image", "inspect", "--format", "{{.Id}} {{.Created}}", f"{name}:{tag}"],
                env={"PATH": engine_path},
            )
            digests.append(inspected.stdout.split()[0])
        assert digests[0] == digests[1]
        # The image's creation time is the commit's, not the build's.
        assert f"{datetime.fromtimestamp(int(epoch), UTC):%Y-%m-%d %H:%M:%S}" in inspected.stdout
    finally:
        run(["docker", "rmi", f"{name}:first", f"{name}:second"], env={"PATH": engine_path})


def test_images_carry_exactly_the_locked_packages(engine_path: str, image: str, publisher_image: str) -> None:
    from packaging.utils import canonicalize_name

    for name, lock in ((image, "function.lock"), (publisher_image, "publisher.lock")):
        version = run(
            [
                "docker",
                "run",
                "--rm",
                "--entrypoint",
                "python3",
                name,
                "-c",
                "import platform; print(platform.python_version())",
            ],
            env={"PATH": engine_path},
        ).stdout.strip()
        listed = run(["make", "-s", "-C", str(ROOT), "image-packages", f"IMAGE={name}"], env={"PATH": engine_path})
        assert listed.returncode == 0, listed.stderr
        packages = dict(line.split("==") for line in listed.stdout.split())
        found = {canonicalize_name(k): v for k, v in packages.items()}
        assert found.pop("secret-contract") == __import__("secret_contract").__version__
        assert found == lock_pins(ROOT / "requirements" / lock, version), name


def test_a_lock_that_does_not_hold_what_is_installed_fails_the_build(
    tmp_path: Path, engine_path: str, image: str
) -> None:
    """A wheel whose hash differs from the lock's, or a dependency the lock lacks: no image."""
    wheelhouse = ROOT / "build" / "wheelhouse"
    if not any(wheelhouse.glob("PyYAML-*.whl")) and not any(wheelhouse.glob("pyyaml-*.whl")):
        pytest.fail("no wheelhouse: run `make image` (make test does) first")
    context = tmp_path / "context"
    for part in ("Dockerfile", ".dockerignore", "build/wheelhouse", "requirements", "scripts/image-venv.sh"):
        source, target = ROOT / part, context / part
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
    lock = context / "requirements" / "function.lock"
    text = lock.read_text()

    def entry(name: str) -> tuple[int, int]:
        start = text.index(f"\n{name}==") + 1
        return start, text.index("\n", text.rindex("--hash=sha256:", start, text.index("# via", start)))

    start, end = entry("pyyaml")
    tampered = text[:start] + re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, text[start:end]) + text[end:]
    start, end = entry("attrs")
    lacking = text[:start] + text[end + 1 :]
    for lock_text, expected in ((tampered, "DO NOT MATCH THE HASHES"), (lacking, "which is not installed")):
        lock.write_text(lock_text)
        built = run(
            ["docker", "build", "--target", "function-venv", "--build-arg", f"BASE_IMAGE={TEST_BASE_IMAGE}",
             str(context)],
            env={"PATH": engine_path},
        )  # fmt: skip
        assert built.returncode != 0 and expected in built.stdout + built.stderr, expected
    run(["docker", "image", "prune", "-f", "--filter", "label=org.opencontainers.image.title=secret-contract"],
        env={"PATH": engine_path})  # fmt: skip


def test_the_publisher_image_runs_the_controller_as_its_deployment_does(engine_path: str, publisher_image: str) -> None:
    """kustomize-examples/flux/external-artifact/deployment.yaml runs this command as uid 65534
    on a read-only root filesystem."""
    ran = run(
        [
            "docker",
            "run",
            "--rm",
            "--user",
            "65534:65534",
            "--read-only",
            "--entrypoint",
            "/opt/secret-contract/bin/secret-contract-controller",
            publisher_image,
            "--help",
        ],
        env={"PATH": engine_path},
    )
    assert ran.returncode == 0, ran.stderr
    assert "--storage-adv-addr" in ran.stdout and "--leader-election-id" in ran.stdout
