"""A Flux source's artifact: fetched from source-controller, checked against the digest its
status announces, and unpacked without letting the archive write outside its directory."""

from __future__ import annotations

import hashlib
import os
import tarfile
from dataclasses import dataclass
from typing import Any

import urllib3

MAX_ARCHIVE = 256 << 20  # bytes fetched at most
MAX_UNPACKED = 512 << 20  # bytes unpacked at most (below the 1 GiB temporary volume of the Deployment)
MAX_ENTRIES = 50_000  # files and folders unpacked at most
FETCH_TIMEOUT = urllib3.Timeout(connect=10, read=60)
_HTTP = urllib3.PoolManager(retries=urllib3.Retry(total=3, backoff_factor=0.5, status_forcelist=(502, 503, 504)))


class SourceFailed(Exception):
    """The source's artifact could not be fetched, verified or unpacked."""


@dataclass(frozen=True)
class SourceArtifact:
    url: str
    revision: str
    digest: str  # sha256:<hex>
    origin: str  # what the artifact came from (a git URL, an OCI reference)

    @classmethod
    def of(cls, source: dict[str, Any]) -> SourceArtifact | None:
        """The artifact a GitRepository or OCIRepository announces, if it has one."""
        artifact = (source.get("status") or {}).get("artifact")
        if not isinstance(artifact, dict) or not artifact.get("url") or not artifact.get("digest"):
            return None
        spec = source.get("spec") or {}
        return cls(
            str(artifact["url"]), str(artifact.get("revision", "")), str(artifact["digest"]), str(spec.get("url", ""))
        )


def fetch(artifact: SourceArtifact, into: str) -> str:
    """The archive written to a file under `into` (streamed, hashed on the way: memory stays
    flat), refused unless it matches the announced digest; the file's path."""
    algorithm, _, expected = artifact.digest.partition(":")
    if algorithm != "sha256":
        raise SourceFailed(f"unsupported digest algorithm in {artifact.digest!r}")
    try:
        resp = _HTTP.request("GET", artifact.url, preload_content=False, timeout=FETCH_TIMEOUT)
    except urllib3.exceptions.HTTPError as exc:
        raise SourceFailed(f"fetching {artifact.url}: {type(exc).__name__}") from None
    path = os.path.join(into, "source.tar.gz")
    found, size = hashlib.sha256(), 0
    try:
        if resp.status != 200:
            raise SourceFailed(f"fetching {artifact.url}: HTTP {resp.status}")
        with open(path, "wb") as out:
            for chunk in resp.stream(1 << 16):
                size += len(chunk)
                if size > MAX_ARCHIVE:
                    raise SourceFailed(f"fetching {artifact.url}: larger than {MAX_ARCHIVE} bytes")
                found.update(chunk)
                out.write(chunk)
    except urllib3.exceptions.HTTPError as exc:
        raise SourceFailed(f"fetching {artifact.url}: {type(exc).__name__}") from None
    finally:
        resp.release_conn()
    if found.hexdigest() != expected:
        raise SourceFailed(f"the archive at {artifact.url} does not match its digest {artifact.digest}")
    return path


def unpack(archive: str, directory: str) -> None:
    """Unpack a tar.gz file into `directory`: Python's `data` filter refuses absolute paths,
    `..`, devices and links leaving the directory; the number of entries and the unpacked size
    are bounded as they are read, so a small archive of very many files cannot exhaust memory,
    inodes or the temporary volume."""
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            total = 0
            for count, member in enumerate(tar, 1):
                total += member.size
                if count > MAX_ENTRIES:
                    raise SourceFailed(f"the archive holds more than {MAX_ENTRIES} entries")
                if total > MAX_UNPACKED:
                    raise SourceFailed(f"the archive unpacks to more than {MAX_UNPACKED} bytes")
                tar.extract(member, directory, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise SourceFailed(f"unpacking the source archive: {exc}") from None


def inside(root: str, relative: str) -> str:
    """`relative` resolved under `root`, refused if it leaves it (through `..` or a link)."""
    top = os.path.realpath(root)
    target = os.path.realpath(os.path.join(top, relative))
    if os.path.commonpath([top, target]) != top:
        raise SourceFailed(f"path {relative!r} leaves the source")
    if not os.path.isdir(target):
        raise SourceFailed(f"path {relative!r} is not a directory in the source")
    return target
