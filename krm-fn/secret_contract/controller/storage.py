"""Rendered archives on disk, as Flux's artifact storage lays them out:
`externalartifact/<namespace>/<name>/<sha256 hex>.tar.gz` under one root. A file is named by
its digest, so the same bytes always have the same path and URL; writes are atomic (a
temporary file renamed into place), and what is served is verified against its digest."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass

KIND_DIR = "externalartifact"
SUFFIX = ".tar.gz"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Storage:
    root: str
    advertised: str  # host:port the artifact URLs name

    def folder(self, namespace: str, name: str) -> str:
        """The render's own folder, relative to the root (with the trailing `/`)."""
        return f"{KIND_DIR}/{namespace}/{name}/"

    def relative(self, namespace: str, name: str, hex_digest: str) -> str:
        return f"{self.folder(namespace, name)}{hex_digest}{SUFFIX}"

    def url(self, relative: str) -> str:
        return f"http://{self.advertised}/{relative}"

    def absolute(self, relative: str) -> str:
        return os.path.join(self.root, *relative.split("/"))

    def store(self, namespace: str, name: str, data: bytes) -> str:
        """Write `data` (atomically) and return its path relative to the root."""
        relative = self.relative(namespace, name, sha256_hex(data))
        target = self.absolute(relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, 0o644)
            os.replace(temporary, target)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
        return relative

    def verify(self, relative: str, digest: str) -> bool:
        """Whether the file exists and holds exactly the bytes of `digest` (`sha256:<hex>`)."""
        path = self.absolute(relative)
        algorithm, _, expected = digest.partition(":")
        if algorithm != "sha256" or ".." in relative.split("/") or not os.path.isfile(path):
            return False
        found = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                found.update(chunk)
        return found.hexdigest() == expected

    def collect_garbage(self, namespace: str, name: str, keep: set[str]) -> list[str]:
        """Remove this render's files except `keep` (relative paths); the removed ones."""
        folder = self.absolute(f"{KIND_DIR}/{namespace}/{name}")
        removed = []
        for entry in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            relative = f"{KIND_DIR}/{namespace}/{name}/{entry}"
            if relative not in keep:
                os.unlink(os.path.join(folder, entry))
                removed.append(relative)
        return removed

    def remove(self, namespace: str, name: str) -> None:
        shutil.rmtree(self.absolute(f"{KIND_DIR}/{namespace}/{name}"), ignore_errors=True)

    def renders(self) -> list[tuple[str, str]]:
        """(namespace, name) of every render with files here."""
        base = self.absolute(KIND_DIR)
        found = []
        for namespace in sorted(os.listdir(base)) if os.path.isdir(base) else []:
            for name in sorted(os.listdir(os.path.join(base, namespace))):
                found.append((namespace, name))
        return found
