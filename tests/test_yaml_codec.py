"""YAML in and out: what goes out reads back to the same data in every reader (our loader,
PyYAML's YAML 1.1, a YAML 1.2 reader, kubectl's own), and loading types scalars the way
kyaml (go-yaml v3) does, which is what kustomize and kpt run on."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from peak_rss import run_measured
from secret_contract import yaml_codec, yaml_emit

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(
        ["yes", "no", "on", "y", "N", "0755", "1e3", "0o17", "~", "null", "- x", "a: b", "#", "key:", "...", "1_000"]
    ),
    st.sampled_from(["2001-12-14", "1:20", "08", "+12", "0b101", ".5", "<<", "=", "0x1F", "1_000.5", "-.inf"]),
)
keys = st.one_of(
    st.text(max_size=20),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.sampled_from(["yes", "1", "<<", "on", ""]),
)
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
        ("v: 0755", 0o755),
        ("v: 1_000", 1000),
        ("v: 0o600", 384),
        ("v: 08", 8.0),
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
def test_scalars_are_typed_as_kyaml_types_them(text: str, expected: Any) -> None:
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
        ("a: !!int abc\n", "invalid value for tag tag:yaml.org,2002:int"),
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


@pytest.mark.parametrize("value", ["0\n", "line one\nline two", "kept\n\n"])
def test_a_document_that_is_one_multiline_string_reads_back(value: str) -> None:
    text = yaml_codec.dump(value)
    assert yaml_codec.load(text) == value
    assert yaml.safe_load(text) == value


def test_streamed_output_equals_the_dumped_text() -> None:
    import io

    doc = {"items": [{"name": f"n{i}", "data": ["a", {"k": "v\nw\n"}]} for i in range(3000)]}
    stream = io.StringIO()
    yaml_codec.write(doc, stream)
    assert stream.getvalue() == yaml_codec.dump(doc)


def test_a_streamed_multi_document_output_equals_the_dumped_stream() -> None:
    import io

    docs = [{"kind": "ExternalSecret", "metadata": {"name": f"n{i}"}, "data": ["a", "0644"]} for i in range(3000)]
    stream = io.StringIO()
    yaml_codec.write_all(iter(docs), stream)
    assert stream.getvalue() == yaml_codec.dump_all(docs)
    assert yaml_codec.load_all(stream.getvalue()) == docs


def test_merge_keys_and_tags_are_read_not_refused() -> None:
    doc = yaml_codec.load(
        "base: &b {x: 1, y: 2}\n"
        "m:\n  !!merge <<: *b\n  y: 3\n"
        "n:\n  <<: [*b, {z: 0}]\n"
        "ref: !Ref some-resource\n"
        "bin: !!binary aGVsbG8=\n"
        "when: !!timestamp 2001-12-14\n"
        "mapped: !Custom {a: 1}\n"
    )
    assert doc["m"] == {"x": 1, "y": 3} and doc["n"] == {"x": 1, "y": 2, "z": 0}
    for key, tag in (("ref", "!Ref"), ("bin", "tag:yaml.org,2002:binary"), ("mapped", "!Custom")):
        assert isinstance(doc[key], yaml_codec.Tagged) and doc[key].tag == tag
    assert doc["ref"] == "some-resource" and doc["mapped"] == {"a": 1}


def test_any_depth_the_parser_accepts_is_handled() -> None:
    depth = 990  # libyaml refuses nesting past 1,000 levels
    doc = yaml_codec.load("a: " + "[" * depth + "]" * depth + "\n")
    node, levels = doc["a"], 1
    while node:
        node, levels = node[0], levels + 1
    assert levels == depth
    aliased = yaml_codec.load("x: &x " + "[" * depth + "]" * depth + "\ny: *x\n")
    assert aliased["x"] is aliased["y"]


readable = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**53), max_value=2**53),
        st.text(max_size=30),
        st.sampled_from([*sorted(yaml_emit._OLD_BOOLS), "0755", "1_000", "2001-12-14", "1:20", "<<", "=", "~", "0o17"]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(
            st.one_of(st.text(min_size=1, max_size=12), st.sampled_from(["y", "n", "on", "0755"])), children, max_size=3
        ),
    ),
    max_leaves=15,
)


@settings(max_examples=8, deadline=None)
@given(st.lists(readable, min_size=10, max_size=30))
def test_every_reader_reads_what_is_emitted_the_same_way(kubectl: str, docs: list[Any]) -> None:
    """PyYAML (YAML 1.1), ruamel.yaml (YAML 1.2) and kubectl's own reader (go-yaml v2 through
    sigs.k8s.io/yaml, with no cluster: `kubectl annotate --local`) all read the same data."""
    import json
    import subprocess
    import tempfile

    from ruamel.yaml import YAML

    objects = [
        {"apiVersion": "example.test/v1", "kind": "Probe", "metadata": {"name": f"p{i}"}, "spec": {"v": d}}
        for i, d in enumerate(docs)
    ]
    text = yaml_codec.dump_all(objects)
    assert list(yaml.safe_load_all(text)) == objects
    assert list(YAML(typ="safe", pure=True).load_all(text)) == objects
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as handle:
        handle.write(text)
        handle.flush()
        done = subprocess.run(
            [kubectl, "annotate", "--local", "-f", handle.name, "-o", "json", "x=y"], capture_output=True, text=True
        )
    assert done.returncode == 0, done.stderr
    decoder, read, at = json.JSONDecoder(), [], 0
    while done.stdout[at:].strip():
        obj, end = decoder.raw_decode(done.stdout, at)
        read.append(obj)
        at = end + len(done.stdout[end:]) - len(done.stdout[end:].lstrip())
    assert [r["spec"] for r in read] == [o["spec"] for o in objects]


def test_keys_longer_than_an_implicit_key_may_be_are_written_explicitly() -> None:
    doc = {"k" * 2000: {"a": [1, "b"]}, "v": "x" * 3000, "list": [{"q" * 1500: None}]}
    text = yaml_codec.dump(doc)
    assert yaml.safe_load(text) == doc and yaml_codec.load(text) == doc


def _merge_bomb(keys: int, mappings: int, sources: int = 1) -> str:
    """One mapping of `keys` keys, merged (`<<: *a`, or `sources` times in one list) into
    `mappings` mappings: small text, keys x mappings x sources entries once merged."""
    merged = "*a" if sources == 1 else "[" + ", ".join(["*a"] * sources) + "]"
    lines = ["base: &a"] + [f"  k{i}: v" for i in range(keys)]
    lines += [f"m{i}: {{<<: {merged}}}" for i in range(mappings)]
    return "\n".join(lines) + "\n"


MERGE_BOMBS = {
    "8000 keys into 8000 mappings": _merge_bomb(8000, 8000),
    "30000 keys into 30000 mappings": _merge_bomb(30000, 30000),
    "8000 keys merged 100000 times into one mapping": _merge_bomb(8000, 1, 100_000),
}


@pytest.mark.parametrize("case", sorted(MERGE_BOMBS))
def test_a_merge_key_bomb_is_refused_while_parsing_in_bounded_memory(case: str, tmp_path: Path) -> None:
    text = MERGE_BOMBS[case]
    assert len(text) < 1_000_000
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    ran = run_measured([sys.executable, "-m", "secret_contract", "render", str(path)], timeout=120)
    assert ran.returncode == 1, ran.stderr[-2000:]
    assert f"{path}: invalid YAML: " in ran.stderr and "past 1,000,000" in ran.stderr
    assert "Traceback" not in ran.stderr
    assert ran.peak_mb < 200, f"peak memory {ran.peak_mb:.0f} MB"
    assert ran.wall < 30, f"{ran.wall:.1f} s"  # generous: refused while parsing, well under 2 s alone


def test_a_merge_key_bomb_on_stdin_is_a_resource_list_error() -> None:
    bomb = _merge_bomb(8000, 8000).replace("\n", "\n    ")
    item = f"- apiVersion: v1\n  kind: ConfigMap\n  metadata: {{name: x}}\n  data:\n    {bomb}\n"
    stdin = f"apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n{item}"
    ran = run_measured([sys.executable, "-m", "secret_contract"], stdin, timeout=120)
    assert ran.returncode == 1 and "past 1,000,000" in ran.stderr
    assert yaml_codec.load(ran.stdout)["results"][0]["severity"] == "error"
    assert ran.peak_mb < 200, f"peak memory {ran.peak_mb:.0f} MB"


def test_merge_keys_within_the_bound_are_merged() -> None:
    doc = yaml_codec.load(_merge_bomb(100, 50))
    assert doc["m49"] == doc["base"] and len(doc["base"]) == 100
