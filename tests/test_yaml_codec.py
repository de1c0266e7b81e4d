"""YAML in and out: what goes out reads back to the same data, in PyYAML and in our loader,
and loading follows the YAML 1.2 core schema that kustomize and kpt use."""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from secret_contract import yaml_codec

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(["yes", "no", "on", "0755", "1e3", "0o17", "~", "null", "- x", "a: b", "#", "key:", "..."]),
)
keys = st.one_of(st.text(max_size=20), st.integers(), st.sampled_from(["yes", "1", "<<", "on", ""]))
documents = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_dump_reads_back_identically(doc: Any) -> None:
    text = yaml_codec.dump(doc)
    assert yaml_codec.load(text) == doc
    assert yaml.safe_load(text) == doc  # a YAML 1.1 reader agrees too


words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_ ", min_size=1, max_size=12).filter(
    lambda w: w.strip() == w and yaml.safe_load(w) == w and w.lower() not in ("y", "n")
)
plain_docs = st.recursive(
    st.one_of(words, st.integers(min_value=0, max_value=10**6), st.booleans()),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(words, children, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(plain_docs)
def test_loader_reads_pyyaml_block_output_the_same(doc: Any) -> None:
    # Where YAML 1.1 and 1.2 agree (no 1.1-only booleans or numbers), both loaders agree.
    text = yaml.safe_dump(doc, default_flow_style=False)
    assert yaml_codec.load(text) == doc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v: yes", "yes"),
        ("v: on", "on"),
        ("v: 0755", 755),
        ("v: 0o17", 15),
        ("v: 0x1f", 31),
        ("v: 1e3", 1000.0),
        ("v: true", True),
        ("v: ~", None),
        ("v:", None),
        ("v: 2024-01-01", "2024-01-01"),
        ('v: "5432"', "5432"),
        ("v: !!str 12", "12"),
        ("v: |\n  a\n  b\n", "a\nb\n"),
    ],
)
def test_scalars_follow_the_yaml_1_2_core_schema(text: str, expected: Any) -> None:
    assert yaml_codec.load(text)["v"] == expected


def test_special_floats() -> None:
    assert yaml_codec.load("v: .inf")["v"] == math.inf
    assert math.isnan(yaml_codec.load("v: .nan")["v"])


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a: 1\na: 2\n", "found duplicate key 'a'"),
        ("a: [\n", "did not find expected node content"),
        ("? [1]\n: 2\n", "found unhashable key"),
        ("a: !custom x\n", "unsupported tag !custom"),
        ("a: *nowhere\n", "found undefined alias nowhere"),
    ],
)
def test_bad_input_is_a_yaml_error_with_a_position(text: str, problem: str) -> None:
    with pytest.raises(yaml.YAMLError) as caught:
        yaml_codec.load(text)
    described = yaml_codec.describe_error(caught.value)
    assert problem in described and "line" in described


def test_error_description_never_quotes_the_document() -> None:
    with pytest.raises(yaml.YAMLError) as caught:
        yaml_codec.load("password: s3cr3t-value\n  bad: [\n")
    assert "s3cr3t" not in yaml_codec.describe_error(caught.value)


def test_aliases_refer_to_the_anchored_value() -> None:
    doc = yaml_codec.load("a: &x {k: v}\nb: *x\n")
    assert doc["a"] == doc["b"] == {"k": "v"}


def test_streams_and_single_documents() -> None:
    assert yaml_codec.load_all("a: 1\n---\n---\nb: 2\n") == [{"a": 1}, {"b": 2}]
    with pytest.raises(yaml.YAMLError):
        yaml_codec.load("a: 1\n---\nb: 2\n")


def test_multiline_strings_stay_literal_blocks() -> None:
    text = yaml_codec.dump({"script": "line one\nline two\n", "kept": "a\n\n", "stripped": "x\ny"})
    assert "script: |\n  line one\n  line two\n" in text
    assert "kept: |+\n" in text and "stripped: |-\n" in text


def test_streamed_output_equals_the_dumped_text() -> None:
    import io

    doc = {"items": [{"name": f"n{i}", "data": ["a", {"k": "v\nw\n"}]} for i in range(3000)]}
    stream = io.StringIO()
    yaml_codec.write(doc, stream)
    assert stream.getvalue() == yaml_codec.dump(doc)
