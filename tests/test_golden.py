"""Golden cases, laid out as the kpt function SDK's testdata: `golden/<case>/resources.yaml` (a
whole ResourceList, or the input items), an optional `fnconfig.yaml` (the functionConfig) and
`expected.yaml`, the ResourceList the function writes, results included. Each runs in-process
through the KRM entry with no Vault configured (writes off), in an empty directory (no project
file), and must give exactly the expected text; it exits 1 exactly when a result is an error.

`SECRET_CONTRACT_UPDATE_GOLDEN=1 pytest tests/test_golden.py` rewrites every expected.yaml
that differs (and fails, so that a rewrite is never mistaken for a pass)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from conftest import UPDATE_GOLDEN
from secret_contract import yaml_codec
from secret_contract.cli.entry import run_krm

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "resources.yaml").is_file())


def function_input(case: Path) -> str:
    """What the orchestrator sends: resources.yaml as it is when it is a ResourceList, else its
    documents as the items, with fnconfig.yaml as the functionConfig."""
    text = (case / "resources.yaml").read_text()
    docs = yaml_codec.load_all(text)
    config = case / "fnconfig.yaml"
    if len(docs) == 1 and isinstance(docs[0], dict) and docs[0].get("kind") == "ResourceList":
        assert not config.exists(), f"{case.name}: a whole ResourceList carries its own functionConfig"
        return text
    doc: dict[str, object] = {"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", "items": docs}
    if config.exists():
        doc["functionConfig"] = yaml_codec.load(config.read_text())
    return yaml_codec.dump(doc)


@pytest.mark.parametrize("name", CASES)
def test_with_writes_on_no_stored_value_reaches_the_output(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same input built with writes on (the in-memory store): what it generates stays in the
    store, so the expected output, written with writes off, holds no value either way."""
    from kv_memory import MemoryKV
    from secret_contract import krm, pipeline, sync

    monkeypatch.setattr(sync, "SETTLE_DELAY", 0.0)  # nothing runs beside it: no owner to wait for
    kv = MemoryKV(("secret",))
    env = {"VAULT_ADDR": "http://memory.invalid", "VAULT_TOKEN": "memory-token"}
    outcome = pipeline.build(
        krm.parse(function_input(GOLDEN / name)), env, pipeline.Options(store_factory=lambda _config: kv)
    )
    out = io.StringIO()
    krm.write(outcome.output, outcome.findings, out)
    generated = [v for path in kv.paths("secret") for v in (kv.data("secret", path) or {}).values()]
    statics = {e.get("value") for e in yaml_codec.load_all((GOLDEN / name / "resources.yaml").read_text())
               for e in _entries(e)}  # fmt: skip
    leaked = [v for v in generated if v not in statics and v in out.getvalue()]
    assert not leaked, f"{len(leaked)} generated value(s) in the output"


def _entries(doc: object) -> list[dict[str, object]]:
    """Every data entry of every contract in a document (a ResourceList's items included)."""
    if not isinstance(doc, dict):
        return []
    if doc.get("kind") == "ResourceList":
        return [e for item in doc.get("items") or [] for e in _entries(item)]
    secrets = (doc.get("spec") or {}).get("secrets") if isinstance(doc.get("spec"), dict) else None
    return [e for s in secrets or [] if isinstance(s, dict) for e in s.get("data") or [] if isinstance(e, dict)]


def test_there_is_a_case_for_every_rule_of_the_registry() -> None:
    from secret_contract import rules

    missing = [rule for rule in rules.RULES if f"rule-{rule}" not in CASES]
    assert not missing, missing


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    case = GOLDEN / name
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    code = run_krm(io.BytesIO(function_input(case).encode()), out, {})
    capsys.readouterr()  # the findings again, for a terminal: the results below hold them
    expected = case / "expected.yaml"
    if UPDATE_GOLDEN and (not expected.exists() or expected.read_text() != out.getvalue()):
        expected.write_text(out.getvalue())
        pytest.fail(f"rewrote {expected.relative_to(GOLDEN.parent.parent)}: review the change and run again")
    assert out.getvalue() == expected.read_text()
    results = yaml_codec.load(out.getvalue()).get("results") or []
    assert code == (1 if any(r.get("severity") == "error" for r in results) else 0)
