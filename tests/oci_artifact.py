"""Reading back what `publish` pushed: the manifest, config and layer from the test registry,
and the layer built the way Flux's kustomize-controller builds it (no plugins)."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

from secret_contract import yaml_codec

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def get(registry: str, path: str, accept: str = MANIFEST) -> tuple[bytes, dict[str, str]]:
    request = urllib.request.Request(f"http://{registry}/v2/{path}", headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the test's own registry
        return response.read(), dict(response.headers)


def pull(registry: str, repository: str, tag: str) -> tuple[dict[str, Any], bytes, bytes]:
    """The manifest, the config blob and the one layer."""
    manifest = json.loads(get(registry, f"{repository}/manifests/{tag}")[0])
    config = get(registry, f"{repository}/blobs/{manifest['config']['digest']}", "*/*")[0]
    layer = get(registry, f"{repository}/blobs/{manifest['layers'][0]['digest']}", "*/*")[0]
    return manifest, config, layer


def build_layer(layer: bytes, kubectl: str, into: Path) -> list[dict[str, Any]]:
    """The layer extracted and built with plain kustomize (no --enable-alpha-plugins)."""
    with tarfile.open(fileobj=io.BytesIO(layer), mode="r:gz") as tar:
        # The root directory first, as `flux push artifact` writes it.
        assert tar.getnames() == [".", "kustomization.yaml", "rendered.yaml"]
        tar.extractall(into, filter="data")
    built = subprocess.run([kubectl, "kustomize", str(into)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    return yaml_codec.load_all(built.stdout)
