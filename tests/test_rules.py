"""The rules are documented once, in their docstrings (as yamllint's are): every PASS and FAIL
example there holds, and the README's table of errors says what the docstrings say.

`SECRET_CONTRACT_UPDATE_GOLDEN=1` rewrites the README's rows from the registry (and fails, so
that a rewrite is never mistaken for a pass)."""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any

import pytest

from conftest import ROOT, UPDATE_GOLDEN
from secret_contract import rules, yaml_codec

README = ROOT / "README.md"
DIRECTIVE = re.compile(r"^(PASS|FAIL)(?: at (.+))?::$")


@dataclass(frozen=True)
class Example:
    rule: str
    verdict: str  # PASS or FAIL
    paths: tuple[str, ...]  # the field paths a FAIL example is found at
    text: str

    def obj(self) -> Any:
        return yaml_codec.load(self.text)


def examples(rule: str) -> list[Example]:
    """The examples in a rule's docstring: `PASS::` or `FAIL at <path>, <path>::`, then an
    indented YAML block."""
    lines = inspect.cleandoc(rules.RULES[rule].__doc__ or "").splitlines()
    found: list[Example] = []
    for i, line in enumerate(lines):
        directive = DIRECTIVE.match(line)
        if not directive:
            continue
        block: list[str] = []
        for following in lines[i + 1 :]:
            if following.strip() and not following.startswith("    "):
                break
            block.append(following[4:])
        paths = tuple(p.strip() for p in (directive.group(2) or "").split(", ") if p.strip())
        found.append(Example(rule, directive.group(1), paths, "\n".join(block).strip() + "\n"))
    return found


def summary(rule: str) -> str:
    """A rule's first docstring paragraph, on one line: what the README says of it."""
    doc = inspect.cleandoc(rules.RULES[rule].__doc__ or "")
    return " ".join(doc.split("\n\n", 1)[0].split())


ALL = [e for rule in rules.RULES for e in examples(rule)]


def test_every_rule_shows_a_passing_and_a_failing_example() -> None:
    for rule in rules.RULES:
        verdicts = [e.verdict for e in examples(rule)]
        assert "PASS" in verdicts and "FAIL" in verdicts, rule
        assert all(e.paths for e in examples(rule) if e.verdict == "FAIL"), f"{rule}: a FAIL names no path"


@pytest.mark.parametrize("example", ALL, ids=[f"{e.rule}-{e.verdict}-{ALL.index(e)}" for e in ALL])
def test_every_documented_example_holds(example: Example) -> None:
    """A PASS example draws no finding from its rule; a FAIL example draws one at each path it
    names and nowhere else. Run through the registry, so the finding carries the rule's id."""
    found = sorted(r.path for r in rules.check(example.obj()) if r.rule == example.rule)
    assert found == sorted(example.paths)


def table_rows() -> list[str]:
    return [f"| `{rule}` | {summary(rule)} |" for rule in rules.RULES]


def registry_rows(lines: list[str]) -> list[int]:
    """Where the README's error table speaks of a registered rule."""
    ids = tuple(f"`{rule}`" for rule in rules.RULES)
    return [i for i, line in enumerate(lines) if line.startswith("| ") and line.split(" | ")[0][2:].startswith(ids)]


def test_the_readme_error_table_is_the_registry() -> None:
    lines = README.read_text().splitlines()
    at = registry_rows(lines)
    assert at and at == list(range(at[0], at[-1] + 1)), "the registry's rows must stand together in one table"
    if UPDATE_GOLDEN and lines[at[0] : at[-1] + 1] != table_rows():
        lines[at[0] : at[-1] + 1] = table_rows()
        README.write_text("\n".join(lines) + "\n")
        pytest.fail("rewrote the README's rule rows from the registry: review the change and run again")
    assert lines[at[0] : at[-1] + 1] == table_rows(), "regenerate: SECRET_CONTRACT_UPDATE_GOLDEN=1 pytest " + __file__
