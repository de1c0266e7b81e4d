"""`secret-contract check` against what `kubectl kustomize --enable-alpha-plugins` really does:
each wiring mistake is first shown to go wrong in a real build (a raw contract in the output,
an empty build, kustomize's own message), then `check` must name the file, the resource and the
field path of it, with the rule, and exit 1 on an error. `render` and `plan` on the directory
stop on the same finding."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from builders import in_process
from conftest import EXAMPLES, Vault, assert_no_leak, run, secret_contract
from secret_contract import yaml_codec

CONTRACT = "hostk8s.secrets.yaml"
STATIC_VALUE = "voting-db-rw.sample-app.svc.cluster.local"  # a static value of the sample contract


def wired(generators: str = f"generators:\n  - {CONTRACT}\n", resources: str = "  - namespace.yaml\n") -> str:
    return f"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n{resources}{generators}"


def annotate_exec(text: str, marker: Path) -> str:
    script = marker.parent / "fn.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\ncat\n")
    script.chmod(0o755)
    annotation = f"  annotations:\n    config.kubernetes.io/function: |\n      exec:\n        path: {script}\n"
    return text.replace("  name: sample-app\n", "  name: sample-app\n" + annotation, 1)


@dataclass(frozen=True)
class Mistake:
    kustomization: str
    contract: Callable[[str, Path], str]  # the sample contract's text -> the case's
    built: Callable[[int, str, str], bool]  # what kustomize does with it: (exit code, stdout, stderr)
    where: str  # `file: Kind/name: field.path` as check prints it, the file relative to the stack
    rule: str
    severity: str = "error"


def same(text: str, _: Path) -> str:
    return text


MISTAKES = {
    "contract-under-resources": Mistake(
        wired(generators="", resources=f"  - namespace.yaml\n  - {CONTRACT}\n"),
        same,
        lambda rc, out, _: rc == 0 and "kind: SecretContract" in out and STATIC_VALUE in out,
        "kustomization.yaml: Kustomization/stack: resources[1]",
        "contract-in-resources",
    ),
    "contract-listed-nowhere": Mistake(
        wired(generators=""),
        same,
        lambda rc, out, _: rc == 0 and "ExternalSecret" not in out and "SecretContract" not in out,
        f"{CONTRACT}: SecretContract/sample-app",
        "contract-not-listed",
    ),
    "exec-function": Mistake(
        wired(),
        lambda text, tmp: annotate_exec(text, tmp / "ran"),
        lambda rc, out, _: rc == 0 and "ExternalSecret" not in out,
        f"{CONTRACT}: SecretContract/sample-app: metadata.annotations.config.kubernetes.io/function",
        "exec-function",
        "warning",
    ),
    "wrong-api-version": Mistake(
        wired(),
        lambda text, _: text.replace("apiVersion: hostk8s.io/v1", "apiVersion: hostk8s.io/v2"),
        lambda rc, _, err: rc != 0 and "hostk8s.io/v2/secretcontract/SecretContract.so" in err,
        f"{CONTRACT}: SecretContract/sample-app: apiVersion",
        "plugin-kind",
    ),
    "wrong-kind-case": Mistake(
        wired(),
        lambda text, _: text.replace("kind: SecretContract", "kind: Secretcontract"),
        lambda rc, _, err: rc != 0 and "Secretcontract.so" in err,
        f"{CONTRACT}: Secretcontract/sample-app: kind",
        "plugin-kind",
    ),
    "another-document-in-the-contract-file": Mistake(
        wired(),
        lambda text, _: text + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n",
        lambda rc, _, err: rc != 0 and "v1/configmap/ConfigMap.so" in err,
        f"{CONTRACT}[1]: ConfigMap/settings",
        "plugin-config",
    ),
    "contract-under-validators": Mistake(
        wired(generators=f"validators:\n  - {CONTRACT}\n"),
        same,
        lambda rc, _, err: rc != 0 and "validator shouldn't modify the resource map" in err,
        "kustomization.yaml: Kustomization/stack: validators[0]",
        "contract-in-validators",
    ),
    "contract-under-components": Mistake(
        wired(generators=f"components:\n  - {CONTRACT}\n"),
        same,
        lambda rc, _, err: rc != 0 and "file is not directory" in err,
        "kustomization.yaml: Kustomization/stack: components[0]",
        "contract-in-components",
    ),
}


def stack_with(tmp_path: Path, kustomization: str, contract: Callable[[str, Path], str]) -> Path:
    stack = tmp_path / "stack"
    stack.mkdir(parents=True)
    shutil.copy(EXAMPLES / "sample-app" / "namespace.yaml", stack)
    (stack / CONTRACT).write_text(contract((EXAMPLES / "sample-app" / CONTRACT).read_text(), tmp_path))
    (stack / "kustomization.yaml").write_text(kustomization)
    return stack


def kustomize(kubectl: str, stack: Path, plugin_home: Path, env: dict[str, str]) -> tuple[int, str, str]:
    ran = run(
        [kubectl, "kustomize", "--enable-alpha-plugins", str(stack)],
        env={**env, "KUSTOMIZE_PLUGIN_HOME": str(plugin_home)},
    )
    return ran.returncode, ran.stdout, ran.stderr


@pytest.mark.parametrize("case", list(MISTAKES))
def test_check_finds_each_wiring_mistake_a_real_build_gets_wrong(
    case: str, tmp_path: Path, kubectl: str, plugin_home: Path, vault: Vault
) -> None:
    mistake = MISTAKES[case]
    stack = stack_with(tmp_path, mistake.kustomization, mistake.contract)
    rc, out, err = kustomize(kubectl, stack, plugin_home, vault.env)
    assert mistake.built(rc, out, err), f"kustomize exit {rc}\n{out}\n{err}"
    assert not (tmp_path / "ran").exists()  # an exec function is skipped, never run

    found = secret_contract("check", str(tmp_path), env={"KUSTOMIZE_PLUGIN_HOME": str(plugin_home)})
    lines = [line for line in found.stderr.splitlines() if f"({mistake.rule})" in line]
    assert len(lines) == 1, found.stderr
    assert lines[0].startswith(f"secret-contract: {stack}/{mistake.where}: [{mistake.severity}] ")
    assert found.returncode == (1 if mistake.severity == "error" else 0), found.stderr
    assert found.stdout == ""
    assert_no_leak([found.stderr], [STATIC_VALUE])


def test_a_stack_wired_right_builds_and_check_finds_nothing(
    tmp_path: Path, kubectl: str, plugin_home: Path, vault: Vault
) -> None:
    stack = stack_with(tmp_path, wired(), same)
    rc, out, err = kustomize(kubectl, stack, plugin_home, vault.env)
    assert rc == 0, err
    assert [d["kind"] for d in yaml_codec.load_all(out)] == ["Namespace", "ExternalSecret", "ExternalSecret"]
    found = secret_contract("check", str(tmp_path), env={"KUSTOMIZE_PLUGIN_HOME": str(plugin_home)})
    assert found.returncode == 0, found.stderr
    assert found.stderr == "secret-contract: [info] checked 1 kustomization and 1 contract: no wiring mistakes\n"


def test_check_says_when_the_legacy_plugin_is_not_installed(tmp_path: Path, kubectl: str, vault: Vault) -> None:
    stack = stack_with(tmp_path, wired(), same)
    empty = tmp_path / "plugins"
    empty.mkdir()
    rc, _, err = kustomize(kubectl, stack, empty, vault.env)
    assert rc != 0 and "hostk8s.io/v1/secretcontract/SecretContract.so" in err
    found = secret_contract("check", str(stack), env={"KUSTOMIZE_PLUGIN_HOME": str(empty)})
    assert found.returncode == 0  # a warning: the machine that builds may have it
    assert f"{stack}/kustomization.yaml: Kustomization/stack: generators[0]: [warning] no legacy plugin" in found.stderr
    assert "secret-contract install-plugin" in found.stderr and "(plugin-missing)" in found.stderr


def test_check_walks_a_tree_and_defaults_to_the_current_directory(tmp_path: Path, plugin_home: Path) -> None:
    good = stack_with(tmp_path / "a", wired(), same)
    bad = stack_with(tmp_path / "b" / "deeper", wired(generators=""), same)
    found = in_process("check", env={"KUSTOMIZE_PLUGIN_HOME": str(plugin_home)}, cwd=tmp_path)
    assert found.returncode == 1
    assert found.stderr.splitlines() == [
        f"secret-contract: {bad.relative_to(tmp_path)}/{CONTRACT}: SecretContract/sample-app: [error] not listed in "
        f"{bad.relative_to(tmp_path)}/kustomization.yaml: its build makes no ExternalSecret for this contract and "
        f"writes nothing to Vault, without a word. List it under `generators:` (`secret-contract init "
        f"{bad.relative_to(tmp_path)}` adds it) (contract-not-listed)"
    ]
    assert good.exists()


def test_render_and_plan_on_a_directory_stop_on_a_wiring_error(tmp_path: Path, vault: Vault) -> None:
    stack = stack_with(tmp_path, MISTAKES["contract-under-resources"].kustomization, same)
    for verb in ("render", "plan"):
        ran = secret_contract(verb, str(stack), env=vault.env)
        assert ran.returncode == 1 and ran.stdout == "", ran.stderr
        assert f"{stack}/kustomization.yaml: Kustomization/stack: resources[1]: [error]" in ran.stderr
    assert vault.paths() == []
    (stack / "kustomization.yaml").write_text(wired())
    rendered = secret_contract("render", str(stack))
    assert rendered.returncode == 0 and rendered.stderr == "", rendered.stderr
    assert [d["kind"] for d in yaml_codec.load_all(rendered.stdout)] == ["ExternalSecret", "ExternalSecret"]


def test_a_contract_whose_metadata_is_not_a_mapping_is_named_not_a_traceback(tmp_path: Path) -> None:
    stack = stack_with(
        tmp_path, wired(), lambda text, _: text.replace("metadata:\n  name: sample-app\n", "metadata: oops\n", 1)
    )
    env = {"VAULT_ADDR": "http://127.0.0.1:1", "VAULT_TOKEN": "unused"}
    checked = in_process("check", str(stack), env=env)
    assert checked.returncode in (0, 1) and "Traceback" not in checked.stderr, checked.stderr
    for verb in ("render", "plan"):
        ran = in_process(verb, str(stack), env=env)
        assert ran.returncode == 1 and "Traceback" not in ran.stderr, ran.stderr
        assert f"{stack}/{CONTRACT}: document 0: metadata: not a mapping" in ran.stderr


def test_check_names_a_folder_it_cannot_list() -> None:
    """A kustomization folder that may be entered but not listed (mode 311): its kustomization
    is read, the folder is named, and the check goes on. Run as an unprivileged user, since
    root lists any folder (in a folder that user may enter)."""
    as_user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
    if as_user and shutil.which("setpriv") is None:
        pytest.skip("needs setpriv to drop root")
    with tempfile.TemporaryDirectory() as where:
        root = Path(where)
        root.chmod(0o755)
        stack = stack_with(root, wired(), same)
        stack.chmod(0o311)
        ran = run([*as_user, sys.executable, "-m", "secret_contract", "check", str(stack)], cwd=root)
        walked = run([*as_user, sys.executable, "-m", "secret_contract", "check", str(root)], cwd=root)
        stack.chmod(0o755)
    assert f"{stack}: cannot list this folder (Permission denied): kustomizations and contracts" in walked.stderr
    assert "Traceback" not in walked.stderr and "no wiring mistakes" not in walked.stderr
    assert "Traceback" not in ran.stderr, ran.stderr
    assert f"{stack}: cannot list this folder (Permission denied)" in ran.stderr and "(folder-unreadable)" in ran.stderr


def test_a_contract_listed_only_by_overlays_renders_and_plans_on_its_base(
    tmp_path: Path, kubectl: str, plugin_home: Path, vault: Vault
) -> None:
    """The base lists the contract nowhere; each overlay lists it under `generators:` (a build
    with `--load-restrictor LoadRestrictionsNone`). Only the whole tree says whether it is
    listed: `render` and `plan` of the base alone do not call it unlisted, `check` of the tree
    still finds a contract nobody lists."""
    base = stack_with(tmp_path, wired(generators=""), same)
    for env in ("dev", "prod"):
        overlay = tmp_path / "overlays" / env
        overlay.mkdir(parents=True)
        (overlay / "kustomization.yaml").write_text(
            wired(generators=f"generators:\n  - ../../stack/{CONTRACT}\n", resources="  - ../../stack\n")
        )
    built = run(
        [kubectl, "kustomize", "--enable-alpha-plugins", "--load-restrictor", "LoadRestrictionsNone", str(overlay)],
        env={**vault.env, "KUSTOMIZE_PLUGIN_HOME": str(plugin_home)},
    )
    assert built.returncode == 0, built.stderr
    assert [d["kind"] for d in yaml_codec.load_all(built.stdout)] == ["Namespace", "ExternalSecret", "ExternalSecret"]

    for verb in ("render", "plan"):
        ran = in_process(verb, str(base), env=vault.env)
        assert ran.returncode in (0, 2) and "contract-not-listed" not in ran.stderr, ran.stderr
        assert "[error]" not in ran.stderr, ran.stderr
    tree = in_process("check", str(tmp_path), env={"KUSTOMIZE_PLUGIN_HOME": str(plugin_home)})
    assert tree.returncode == 0, tree.stderr
    # A build with kustomize's default load restrictor refuses it: said, as a warning.
    outside = [line for line in tree.stderr.splitlines() if "(contract-outside-root)" in line]
    assert len(outside) == 2 and all("[warning]" in line for line in outside), tree.stderr

    stray = base / "stray.yaml"
    stray.write_text((base / CONTRACT).read_text().replace("name: sample-app\n", "name: stray\n", 1))
    tree = in_process("check", str(tmp_path), env={"KUSTOMIZE_PLUGIN_HOME": str(plugin_home)})
    assert tree.returncode == 1
    assert f"{stray}: SecretContract/stray: [error] not listed in" in tree.stderr, tree.stderr


def test_check_says_when_a_tree_holds_more_kustomizations_than_it_reads(
    tmp_path: Path, plugin_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from secret_contract import wiring_check

    monkeypatch.setattr(wiring_check, "MAX_KUSTOMIZATIONS", 2)
    for name in ("a", "b", "c"):
        stack_with(tmp_path / name, wired(), same)
    found = in_process("check", str(tmp_path), env={"KUSTOMIZE_PLUGIN_HOME": str(plugin_home)})
    assert found.returncode == 0, found.stderr
    assert (
        f"secret-contract: [warning] {tmp_path}: more than 2 kustomizations: only the first 2 are checked"
        in found.stderr
    ), found.stderr
    assert "(too-many-kustomizations)" in found.stderr


def test_a_contract_outside_the_kustomization_folder_is_refused_by_kustomize_and_check_says_why(
    tmp_path: Path, kubectl: str, plugin_home: Path, vault: Vault
) -> None:
    stack_with(tmp_path, wired(generators=""), same)
    overlay = tmp_path / "overlays" / "dev"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text(
        wired(generators=f"generators:\n  - ../../stack/{CONTRACT}\n", resources="")
    )
    rc, _, err = kustomize(kubectl, overlay, plugin_home, vault.env)
    assert rc != 0 and "is not in or below" in err, err
    assert vault.paths() == []

    found = in_process("check", str(tmp_path), env={"KUSTOMIZE_PLUGIN_HOME": str(plugin_home)})
    lines = [line for line in found.stderr.splitlines() if "(contract-outside-root)" in line]
    assert len(lines) == 1, found.stderr
    assert lines[0].startswith(
        f"secret-contract: {overlay}/kustomization.yaml: Kustomization/dev: generators[0]: [warning] "
        f"SecretContract/sample-app (../../stack/{CONTRACT}) is outside {overlay}"
    )
    assert "--load-restrictor LoadRestrictionsNone" in lines[0] and "under `resources:`" in lines[0]
    assert "contract-not-listed" not in found.stderr  # it is listed, only from too far
