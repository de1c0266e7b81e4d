"""kpt running the function as an exec function: `fn eval --exec` and `fn render --allow-exec`."""

from __future__ import annotations

import filecmp
import shutil
import sys
from pathlib import Path

import pytest

from conftest import BIN, EXAMPLES, Vault, assert_no_leak, run
from secret_contract import yaml_codec

FUNCTION = str(BIN / "secret-contract")


def make_package(root: Path) -> Path:
    pkg = root / "pkg"
    pkg.mkdir()
    shutil.copy(EXAMPLES / "sample-app" / "hostk8s.secrets.yaml", pkg)
    shutil.copy(EXAMPLES / "sample-app" / "namespace.yaml", pkg)
    (pkg / "Kptfile").write_text(
        "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: pkg\n  annotations:\n"
        '    config.kubernetes.io/local-config: "true"\n'
        f"pipeline:\n  mutators:\n    - exec: {FUNCTION}\n"
    )
    return pkg


def same_tree(a: Path, b: Path) -> bool:
    cmp = filecmp.dircmp(a, b)
    return not (cmp.left_only or cmp.right_only or cmp.diff_files or cmp.funny_files)


def test_render_writes_externalsecrets_beside_the_contract_and_rerenders_unchanged(
    kpt: str, tmp_path: Path, vault: Vault
) -> None:
    pkg = make_package(tmp_path)
    contract_before = (pkg / "hostk8s.secrets.yaml").read_text()
    first = run([kpt, "fn", "render", "--allow-exec", str(pkg)], env=vault.env)
    assert first.returncode == 0, first.text
    generated = pkg / "external-secrets.generated.yaml"
    docs = yaml_codec.load_all(generated.read_text())
    assert [d["metadata"]["name"] for d in docs] == ["postgres-credentials", "redis-credentials"]
    assert (pkg / "hostk8s.secrets.yaml").read_text() == contract_before
    assert vault.read("sample-app/redis-credentials") is not None

    snapshot = tmp_path / "after-first"
    shutil.copytree(pkg, snapshot)
    before = vault.snapshot()
    second = run([kpt, "fn", "render", "--allow-exec", str(pkg)], env=vault.env)
    assert second.returncode == 0, second.text
    assert same_tree(pkg, snapshot)
    assert vault.snapshot() == before
    assert_no_leak(
        [first.text, second.text, generated.read_text()],
        [*vault.values(), vault.server.token],
        ("postgres-credentials",),
    )


def test_eval_exec_matches_render_and_fails_on_invalid_contracts(kpt: str, tmp_path: Path, vault: Vault) -> None:
    pkg = make_package(tmp_path)
    ran = run([kpt, "fn", "eval", str(pkg), "--exec", FUNCTION], env=vault.env)
    assert ran.returncode == 0, ran.text
    assert (pkg / "external-secrets.generated.yaml").exists()
    contract = pkg / "hostk8s.secrets.yaml"
    contract.write_text(contract.read_text().replace("length: 24", "length: 3"))
    before_files = {p.name: p.read_text() for p in pkg.iterdir()}
    failed = run([kpt, "fn", "eval", str(pkg), "--exec", FUNCTION], env=vault.env)
    assert failed.returncode != 0
    assert "spec.secrets[0].data[1].length" in failed.text
    assert {p.name: p.read_text() for p in pkg.iterdir()} == before_files


def test_function_config_configmap_sets_defaults(kpt: str, tmp_path: Path) -> None:
    pkg = make_package(tmp_path)
    ran = run(
        [
            kpt,
            "fn",
            "eval",
            str(pkg),
            "--exec",
            f"{sys.executable} -m secret_contract",
            "--",
            "storeName=corp-vault",
            "refreshInterval=10m",
        ]
    )
    assert ran.returncode == 0, ran.text
    es = yaml_codec.load_all((pkg / "external-secrets.generated.yaml").read_text())[0]
    assert es["spec"]["secretStoreRef"]["name"] == "corp-vault" and es["spec"]["refreshInterval"] == "10m"


def test_a_function_config_of_another_kind_is_ignored_with_a_warning_naming_it(kpt: str, tmp_path: Path) -> None:
    pkg = make_package(tmp_path)
    config = tmp_path / "setters.yaml"
    config.write_text(
        "apiVersion: fn.kpt.dev/v1alpha1\nkind: ApplySetters\nmetadata:\n  name: s\nsetters:\n  storeName: x\n"
    )
    ran = run([kpt, "fn", "eval", str(pkg), "--exec", FUNCTION, "--fn-config", str(config)])
    assert ran.returncode == 0, ran.text
    assert "functionConfig of kind ApplySetters is ignored" in ran.text, ran.text
    es = yaml_codec.load_all((pkg / "external-secrets.generated.yaml").read_text())[0]
    assert es["spec"]["secretStoreRef"]["name"] == "vault-backend"  # the default: the config was not read


EVERYDAY_FILES = {
    "deployment.yaml": """\
# The application, as its authors wrote it.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app   # trailing comment
  labels: {app: app, tier: "web"}
spec:
  replicas: 1_000
  template:
    spec:
      volumes:
        - name: config
          secret:
            secretName: app
            defaultMode: 0644
        - name: other
          secret: {secretName: other, defaultMode: 0o600}
      containers: [{name: app, image: 'example/app:1'}]
""",
    "anchors.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: anchors
data:
  base: &base "shared"
  copy: *base
---
apiVersion: example.test/v1
kind: Template
metadata:
  name: merged
defaults: &defaults
  size: small
  region: eu
spec:
  !!merge <<: *defaults
  size: large
  ref: !Ref some-bucket
  blob: !!binary aGVsbG8=
  when: !!timestamp 2001-12-14
""",
}


def test_items_it_does_not_own_come_out_as_cat_would_give_them(kpt: str, tmp_path: Path, vault: Vault) -> None:
    """The control is kpt itself: the same package rendered through `exec: cat`."""
    results = {}
    for name, exec_path in (("cat", "cat"), ("function", FUNCTION)):
        pkg = tmp_path / name / "pkg"
        pkg.parent.mkdir()
        pkg = make_package(pkg.parent)
        kptfile = (pkg / "Kptfile").read_text().replace(f"exec: {FUNCTION}", f"exec: {exec_path}")
        (pkg / "Kptfile").write_text(kptfile)
        for file, text in EVERYDAY_FILES.items():
            (pkg / file).write_text(text)
        ran = run([kpt, "fn", "render", "--allow-exec", str(pkg)], env=vault.env)
        assert ran.returncode == 0, ran.text
        results[name] = {p.name: p.read_text() for p in pkg.iterdir()}
    generated = results["function"].pop("external-secrets.generated.yaml")
    assert "kind: ExternalSecret" in generated
    kptfile = "Kptfile"
    assert {k: v for k, v in results["function"].items() if k != kptfile} == {
        k: v for k, v in results["cat"].items() if k != kptfile
    }
    assert results["function"][kptfile].replace(FUNCTION, "cat") == results["cat"][kptfile]
    assert "defaultMode: 0644" in results["function"]["deployment.yaml"]


OTHER_STACK = """\
apiVersion: hostk8s.io/v1
kind: SecretContract
metadata:
  name: other
spec:
  secrets:
    - name: cache
      namespace: other
      data:
        - key: token
          generate: token
"""


@pytest.mark.parametrize("how", ["render", "eval"])
def test_output_it_did_not_place_survives_render_and_eval(kpt: str, tmp_path: Path, vault: Vault, how: str) -> None:
    """Another stack's committed `render` output (vendored/) and an old generated file beside no
    contract stay as they are; only the function's own generated file is rewritten."""
    other = tmp_path / "other.yaml"
    other.write_text(OTHER_STACK)
    rendered = run([sys.executable, "-m", "secret_contract", "render", str(other)])
    assert rendered.returncode == 0 and "kind: ExternalSecret" in rendered.stdout, rendered.text
    pkg = make_package(tmp_path)
    (pkg / "vendored").mkdir()
    (pkg / "vendored" / "other-stack.yaml").write_text(rendered.stdout)
    (pkg / "gone").mkdir()
    orphan = rendered.stdout.replace("name: cache\n", "name: orphan\n", 1)
    (pkg / "gone" / "external-secrets.generated.yaml").write_text(orphan)
    command = (
        [kpt, "fn", "render", "--allow-exec", str(pkg)]
        if how == "render"
        else [kpt, "fn", "eval", str(pkg), "--exec", FUNCTION]
    )
    ran = run(command, env=vault.env)
    assert ran.returncode == 0, ran.text
    assert (pkg / "vendored" / "other-stack.yaml").read_text() == rendered.stdout
    assert (pkg / "gone" / "external-secrets.generated.yaml").read_text() == orphan
    assert "looks stale" in ran.text and "orphan" in ran.text
    generated = yaml_codec.load_all((pkg / "external-secrets.generated.yaml").read_text())
    assert [d["metadata"]["name"] for d in generated] == ["postgres-credentials", "redis-credentials"]
    assert vault.read("other/cache") is None  # committed output is not a contract
    assert_no_leak([ran.text], [*vault.values(), vault.server.token], ("postgres-credentials",))
