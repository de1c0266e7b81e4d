"""The ExternalArtifact controller's pure parts: its resource's spec, storage by digest, the
source archive's safe unpacking, the artifact server, and which watch events queue a render.
Against a real API server and Flux: tests/cluster/test_external_artifact.py."""

from __future__ import annotations

import hashlib
import io
import tarfile
import urllib.request
from pathlib import Path

import pytest

from secret_contract import publish
from secret_contract.controller import api, source
from secret_contract.controller.main import Index
from secret_contract.controller.server import artifact_server, serve
from secret_contract.controller.storage import Storage


def render(spec: dict[str, object], generation: int = 1) -> dict[str, object]:
    return {"metadata": {"name": "r", "namespace": "flux-system", "uid": "u", "generation": generation}, "spec": spec}


def test_a_render_spec_is_parsed_and_each_mistake_names_its_field() -> None:
    good = api.parse_spec(render({"sourceRef": {"kind": "GitRepository", "name": "platform"}, "path": "a/b"}))
    assert isinstance(good, api.RenderSpec)
    assert (good.source.kind, good.source.namespace, good.path, good.interval) == (
        "GitRepository",
        "flux-system",
        "a/b",
        api.DEFAULT_INTERVAL,
    )
    for spec, field in (
        ({"sourceRef": {"kind": "Bucket", "name": "b"}}, "spec.sourceRef.kind"),
        ({"sourceRef": {"kind": "GitRepository"}}, "spec.sourceRef.name"),
        ({"sourceRef": {"kind": "GitRepository", "name": "p", "namespace": "other"}}, "spec.sourceRef.namespace"),
        ({"sourceRef": {"kind": "GitRepository", "name": "p"}, "path": "../up"}, "spec.path"),
        ({"sourceRef": {"kind": "GitRepository", "name": "p"}, "path": "/abs"}, "spec.path"),
        ({"sourceRef": {"kind": "GitRepository", "name": "p"}, "interval": "soon"}, "spec.interval"),
    ):
        problem = api.parse_spec(render(spec))
        assert isinstance(problem, str) and problem.startswith(field), (spec, problem)


def test_durations_read_as_kubernetes_writes_them() -> None:
    assert api.parse_duration("1h30m") == 5400 and api.parse_duration("45s") == 45 and api.parse_duration("10m") == 600
    assert api.parse_duration("0s") is None and api.parse_duration("1d") is None and api.parse_duration("") is None


def test_conditions_move_their_transition_time_only_when_their_status_changes() -> None:
    first = api.condition([], "Ready", False, "BuildFailed", "vault down", 1)
    first[0]["lastTransitionTime"] = "2000-01-01T00:00:00Z"
    same = api.condition(first, "Ready", False, "BuildFailed", "still down", 1)
    assert same[0]["lastTransitionTime"] == "2000-01-01T00:00:00Z" and same[0]["message"] == "still down"
    flipped = api.condition(same, "Ready", True, "Succeeded", "ok", 2)
    assert flipped[0]["lastTransitionTime"] != "2000-01-01T00:00:00Z" and flipped[0]["observedGeneration"] == 2


def test_storage_names_files_by_digest_verifies_them_and_keeps_what_it_is_told(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path), "127.0.0.1:9090")
    one = storage.store("ns", "r", b"first")
    two = storage.store("ns", "r", b"second")
    assert one == f"externalartifact/ns/r/{hashlib.sha256(b'first').hexdigest()}.tar.gz"
    assert storage.store("ns", "r", b"first") == one  # the same bytes, the same path
    assert storage.verify(one, "sha256:" + hashlib.sha256(b"first").hexdigest())
    Path(storage.absolute(one)).write_bytes(b"tampered")
    assert not storage.verify(one, "sha256:" + hashlib.sha256(b"first").hexdigest())
    assert storage.collect_garbage("ns", "r", {two}) == [one] and storage.renders() == [("ns", "r")]
    assert storage.url(two) == f"http://127.0.0.1:9090/{two}"
    storage.remove("ns", "r")
    assert not Path(storage.absolute(two)).exists()


def _tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def _archive(tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes]], name: str = "a.tar.gz") -> str:
    path = tmp_path / name
    path.write_bytes(_tar(members))
    return str(path)


def test_a_source_archive_cannot_write_outside_its_directory(tmp_path: Path) -> None:
    escape = tarfile.TarInfo("../escaped")
    with pytest.raises(source.SourceFailed):
        source.unpack(_archive(tmp_path, [(escape, b"x")]), str(tmp_path / "a"))
    link = tarfile.TarInfo("link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(source.SourceFailed):
        source.unpack(_archive(tmp_path, [(link, b"")]), str(tmp_path / "b"))
    assert not (tmp_path / "escaped").exists()
    fine = tarfile.TarInfo("app/kustomization.yaml")
    source.unpack(_archive(tmp_path, [(fine, b"resources: []\n")]), str(tmp_path / "c"))
    assert source.inside(str(tmp_path / "c"), "app").endswith("/c/app")
    with pytest.raises(source.SourceFailed):
        source.inside(str(tmp_path / "c"), "../b")


def test_a_fetched_archive_must_match_its_announced_digest(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path), "")
    relative = storage.store("ns", "src", b"archive bytes")
    server = artifact_server(("127.0.0.1", 0), str(tmp_path), lambda: True)
    serve(server, poll_interval=0.01)  # stopped at once at the end
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{relative}"
        good = source.SourceArtifact(url, "main@sha1:abc", "sha256:" + hashlib.sha256(b"archive bytes").hexdigest(), "")
        work = tmp_path / "work"
        work.mkdir()
        assert Path(source.fetch(good, str(work))).read_bytes() == b"archive bytes"
        with pytest.raises(source.SourceFailed, match="does not match its digest"):
            source.fetch(source.SourceArtifact(url, "r", "sha256:" + "0" * 64, ""), str(work))
        with pytest.raises(source.SourceFailed, match="HTTP 404"):
            source.fetch(source.SourceArtifact(url + "x", "r", good.digest, ""), str(work))
        outside = f"http://127.0.0.1:{server.server_address[1]}/../etc/passwd"
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(outside)
    finally:
        server.shutdown()


def test_the_artifact_server_is_ready_only_while_leading(tmp_path: Path) -> None:
    leading = [False]
    server = artifact_server(("127.0.0.1", 0), str(tmp_path), lambda: leading[0])
    serve(server, poll_interval=0.01)  # stopped at once at the end
    url = f"http://127.0.0.1:{server.server_address[1]}/readyz"
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url)
        assert refused.value.code == 503
        leading[0] = True
        with urllib.request.urlopen(url) as resp:
            assert resp.status == 200
    finally:
        server.shutdown()


def test_a_status_update_does_not_queue_a_render_but_a_new_generation_or_source_revision_does() -> None:
    index = Index()
    obj = render({"sourceRef": {"kind": "GitRepository", "name": "platform"}})
    assert index.render_changed("ADDED", obj)
    assert not index.render_changed("MODIFIED", {**obj, "status": {"conditions": []}})
    assert index.render_changed("MODIFIED", render(obj["spec"], generation=2))  # type: ignore[arg-type]
    repo = {"metadata": {"name": "platform", "namespace": "flux-system"}, "status": {"artifact": {"revision": "a"}}}
    assert index.renders_of("GitRepository", repo) == [("flux-system", "r")]
    assert index.renders_of("GitRepository", repo) == []  # the same revision again
    # New bytes under the same revision (a changed ignore rule): rendered again.
    rebuilt = {**repo, "status": {"artifact": {"revision": "a", "digest": "sha256:other"}}}
    assert index.renders_of("GitRepository", rebuilt) == [("flux-system", "r")]
    other = {**repo, "metadata": {"name": "other", "namespace": "flux-system"}}
    assert index.renders_of("GitRepository", other) == []


def test_the_controller_stores_what_publish_would_push() -> None:
    """The archive is `publish.pack`'s: one build's output packs to the same bytes every time."""
    rendered = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"
    assert publish.pack(rendered, {}).layer == publish.pack(rendered, {"a": "b"}).layer


def test_an_archive_of_very_many_small_files_is_refused_as_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(source, "MAX_ENTRIES", 100)
    many = [(tarfile.TarInfo(f"f{i}"), b"") for i in range(150)]
    with pytest.raises(source.SourceFailed, match="more than 100 entries"):
        source.unpack(_archive(tmp_path, many), str(tmp_path / "out"))
    assert len(list((tmp_path / "out").iterdir())) <= 100


def test_a_plugin_config_that_climbs_out_of_the_plugin_directory_is_refused_before_kustomize_runs(
    tmp_path: Path,
) -> None:
    """kustomize joins apiVersion and kind into a path without refusing `..`: such a generator
    would make it run any program with its config as the script."""
    from secret_contract import plugin_guard
    from secret_contract.publish import PublishFailed

    app = tmp_path / "app"
    base = tmp_path / "base"
    app.mkdir()
    base.mkdir()
    (base / "kustomization.yaml").write_text("generators:\n  - g.yaml\n")
    marker = tmp_path / "ran"
    (base / "g.yaml").write_text(
        "apiVersion: ../../../../../../../../v1\nkind: ../../../../../../../../bin/sh\nmetadata: {name: e}\n"
        f"x;touch${{IFS}}{marker};x: 1\n"
    )
    (app / "kustomization.yaml").write_text("resources:\n  - ../base\n  - https://example.com/remote.yaml\n")
    found = plugin_guard.problems(str(app))
    assert len(found) == 1 and "names no plugin by plain names" in found[0] and "g.yaml" in found[0]
    assert any("remote" in p for p in plugin_guard.problems(str(app), allow_remote=False))
    with pytest.raises(PublishFailed, match="not building"):
        publish.build(str(app), {})
    assert not marker.exists()
    (base / "g.yaml").write_text("apiVersion: hostk8s.io/v1\nkind: SecretContract\nmetadata: {name: ok}\n")
    assert plugin_guard.problems(str(app)) == []


def test_an_externalartifact_is_the_renders_only_when_its_owner_reference_names_the_render() -> None:
    ours = render({"sourceRef": {"kind": "GitRepository", "name": "p"}})
    built = api.external_artifact(ours)
    assert api.owned_by(built, ours)
    assert not api.owned_by({"metadata": {"labels": {"owner": "someone-else"}}}, ours)
    other = render({"sourceRef": {"kind": "GitRepository", "name": "p"}})
    other["metadata"]["uid"] = "another"  # type: ignore[index]
    assert not api.owned_by(built, other)
