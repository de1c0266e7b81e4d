"""A kustomization built with the function, published as a Flux OCI artifact.

Flux's kustomize-controller runs no kustomize plugin, so what reaches it must already be
built. `publish` builds the kustomization exactly as a user's build does (kustomize with the
legacy plugin: Vault is written, strictly) and pushes the result:

- one layer, `application/vnd.cncf.flux.content.v1.tar+gzip`, holding `rendered.yaml` (the
  built output: ExternalSecrets, no SecretContract) and a `kustomization.yaml` listing it, so
  that plain kustomize builds it. The built output rather than a plugin-free copy of the tree:
  it is exactly what the build produced, overlays and patches applied, and self-contained even
  when the kustomization reaches bases outside its directory;
- the config `application/vnd.cncf.flux.config.v1+json`: `{}`. `flux push artifact` writes an
  image-style config there (`created`, `rootfs.diff_ids`, `history`: go-containerregistry's
  empty image made into an artifact); Flux's controllers never read it, and `{}` keeps the
  manifest a function of the layer and annotations alone;
- the annotations Flux reads: `org.opencontainers.image.source`, `.revision` (`branch@sha1:…`
  from git) and `.created` (the commit's time, so that publishing one commit twice gives the
  same manifest and Flux sees no new revision).

The layer is reproducible: fixed file order, modes, owners and times, and a gzip header
without a time, so the same build gives the same digest.

With `--git URL --ref BRANCH` the tree is cloned first (git_source), so a publisher in a
cluster needs no checkout: the artifact's source and revision are then the clone's.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from secret_contract import git_source, plugin, redact, yaml_codec
from secret_contract.errors import InvalidInput, SecretContractError

CONFIG_MEDIA_TYPE = "application/vnd.cncf.flux.config.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.cncf.flux.content.v1.tar+gzip"
RENDERED = "rendered.yaml"
BUILD_TIMEOUT = 900  # seconds
KUSTOMIZATION_FILE = plugin.KUSTOMIZATION_FILES[0]
KUSTOMIZATION = plugin.kustomization("resources", RENDERED)
# Credentials for the push and the clone: the build (kustomize, the function) never sees them.
PUBLISH_ONLY_ENV = frozenset({"REGISTRY_USERNAME", "REGISTRY_PASSWORD", *git_source.CREDENTIAL_ENVS})


class PublishFailed(SecretContractError):
    """The build or the push did not succeed."""


@dataclass(frozen=True)
class Reference:
    """`oci://registry/repository:tag`."""

    registry: str
    repository: str
    tag: str

    @classmethod
    def parse(cls, text: str) -> Reference:
        if not text.startswith("oci://"):
            raise InvalidInput(f"{text}: expected oci://REGISTRY/REPOSITORY:TAG")
        rest = text.removeprefix("oci://")
        registry, slash, path = rest.partition("/")
        repository, colon, tag = path.rpartition(":")
        if not slash or not registry or not colon or not repository or not tag or "/" in tag:
            raise InvalidInput(f"{text}: expected oci://REGISTRY/REPOSITORY:TAG")
        return cls(registry, repository, tag)

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.registry, self.repository, tag)

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}:{self.tag}"


@dataclass(frozen=True)
class Artifact:
    layer: bytes  # the reproducible tar.gz
    annotations: Mapping[str, str] = field(default_factory=dict)
    documents: int = 0


def build(directory: str, env: Mapping[str, str], allow_remote: bool = True, timeout: float = BUILD_TIMEOUT) -> str:
    """The kustomization built with the function as its legacy plugin, strictly. Every plugin
    config it can reach is checked first (`plugin_guard`); with `allow_remote` False, remote
    bases and plugin configs are refused as well."""
    from secret_contract import plugin_guard

    if not os.path.isdir(directory):
        raise InvalidInput(f"{directory}: no such directory")
    unsafe = plugin_guard.problems(directory, allow_remote)
    if unsafe:
        raise PublishFailed(f"not building {directory}:\n" + "\n".join(unsafe))
    command = _kustomize()
    with tempfile.TemporaryDirectory(prefix="secret-contract-plugins-") as plugins:
        plugin.install(plugins)
        # A published artifact whose values are not in Vault would deliver broken Secrets.
        run_env = {**env, "KUSTOMIZE_PLUGIN_HOME": plugins, "SECRET_CONTRACT_STRICT": "true"}
        try:
            done = subprocess.run(
                [*command, "--enable-alpha-plugins", "--network", directory],
                env=run_env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise PublishFailed(f"building {directory} took longer than {timeout:.0f} s") from None
    if done.returncode != 0:
        raise PublishFailed(f"building {directory} failed:\n{done.stderr.strip()}")
    return done.stdout


def _kustomize() -> list[str]:
    """Standalone kustomize when there is one, else the one inside kubectl."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    raise InvalidInput("publish builds with kustomize: put kustomize or kubectl on PATH")


def pack(rendered: str, annotations: Mapping[str, str]) -> Artifact:
    """The layer: rendered.yaml and its kustomization.yaml, reproducibly packed."""
    documents = yaml_codec.load_all(rendered)
    if any(isinstance(d, dict) and d.get("kind") == "SecretContract" for d in documents):
        raise PublishFailed("the build still holds a SecretContract: is it listed under resources, not generators?")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        # The root directory first, as `flux push artifact` writes it (fluxcd/pkg tar.Tar walks
        # the directory from itself: an entry named `.`).
        root = tarfile.TarInfo(".")
        root.type, root.mode, root.mtime = tarfile.DIRTYPE, 0o755, 0
        root.uid = root.gid = 0
        root.uname = root.gname = ""
        tar.addfile(root)
        for name, text in ((KUSTOMIZATION_FILE, KUSTOMIZATION), (RENDERED, rendered)):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0, compresslevel=9) as zipped:
        zipped.write(raw.getvalue())
    return Artifact(packed.getvalue(), dict(annotations), len(documents))


@dataclass(frozen=True)
class Origin:
    """Where the built tree came from: what Flux shows as the artifact's source and revision."""

    source: str = ""
    revision: str = ""
    committed: int | None = None  # the commit's time, seconds since the epoch


DIRTY = "-dirty"  # what marks the revision of a build from a working tree with uncommitted changes


def local_origin(directory: str, allow_dirty: bool = False) -> Origin:
    """The checkout holding `directory`, read with git (empty when it is not in one). A working
    tree with uncommitted changes or untracked files is refused: HEAD's revision would be
    stamped on content it does not hold. With `allow_dirty`, the revision says so (`-dirty`)."""
    commit = _git(directory, "rev-parse", "HEAD")
    if not commit:
        return Origin()
    branch = _git(directory, "rev-parse", "--abbrev-ref", "HEAD")
    revision = f"{branch}@sha1:{commit}" if branch and branch != "HEAD" else f"sha1:{commit}"
    changed = _uncommitted(directory)
    if changed and not allow_dirty:
        shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        raise InvalidInput(
            f"{directory}: the git working tree has uncommitted changes ({shown}): the artifact would carry "
            f"the revision {revision} on other content. Commit them, or pass --allow-dirty to publish anyway "
            f"with the revision marked {revision}{DIRTY}"
        )
    if changed:
        revision += DIRTY
    committed = _git(directory, "log", "-1", "--format=%ct")
    return Origin(
        _git(directory, "remote", "get-url", "origin") or "",
        revision,
        int(committed) if committed and committed.isdigit() else None,
    )


def annotations(origin: Origin, env: Mapping[str, str]) -> dict[str, str]:
    """What Flux reads from the manifest. `created` is the commit's time, else
    SOURCE_DATE_EPOCH, else now: a fixed input gives a fixed manifest."""
    epoch = env.get("SOURCE_DATE_EPOCH", "")
    # At most 11 digits (up to the year 5138): longer is no time, and int() refuses thousands.
    given = int(epoch) if epoch.isdigit() and len(epoch) <= 11 else None
    when = origin.committed if origin.committed is not None else given if given is not None else int(time.time())
    found = {
        "org.opencontainers.image.source": _without_userinfo(origin.source),
        "org.opencontainers.image.revision": origin.revision,
        "org.opencontainers.image.created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when)),
    }
    return {k: v for k, v in found.items() if v}


def _uncommitted(directory: str) -> list[str]:
    """The paths `git status` reports in the whole working tree (a build may reach bases outside
    `directory`): changed, staged, deleted or untracked, ignored files left out. A `git status`
    that fails is an error, not a clean tree: what it could not see may be uncommitted."""
    try:
        done = subprocess.run(
            ["git", "-C", directory, "status", "--porcelain=v1", "-z", "--untracked-files=all"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InvalidInput(f"{directory}: cannot tell whether the git working tree is clean: {exc}") from None
    if done.returncode != 0:
        said = done.stderr.strip() or f"exit code {done.returncode}"
        raise InvalidInput(f"{directory}: cannot tell whether the git working tree is clean: git status: {said}")
    # Each entry is `XY path`; a rename adds its source as the next entry, which is skipped.
    entries = done.stdout.split("\0")
    found: list[str] = []
    rest = iter(entries)
    for entry in rest:
        if len(entry) > 3:
            found.append(entry[3:])
            if entry[0] in "RC":
                next(rest, None)
    return found


def _git(directory: str, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", directory, *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" in parts.netloc and parts.scheme:
        return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()
    return url


@dataclass(frozen=True)
class Request:
    """One `publish`: what to build, from where, and where it goes."""

    directory: str  # the kustomization; with `git`, a path inside the repository
    references: list[Reference]
    git: str | None = None  # clone this repository at `ref` first (no local checkout needed)
    ref: str = "main"
    source: str | None = None  # overrides of what the origin says
    revision: str | None = None
    insecure: bool = False
    output: str | None = None  # a dry run: write the layer here, push nothing
    allow_dirty: bool = False  # publish a working tree with uncommitted changes (revision marked -dirty)


@dataclass(frozen=True)
class Published:
    artifact: Artifact
    digests: list[str]  # one per reference; empty for a dry run


def publish(request: Request, env: Mapping[str, str]) -> Published:
    """Build the kustomization (writing Vault, strictly) and push or write the artifact."""
    from secret_contract import project

    if request.output is not None:
        _check_output(request.output)  # before the build: the build writes Vault
    with tempfile.TemporaryDirectory(prefix="secret-contract-source-") as work:
        directory, origin = _source(request, work, env)
        here = project.find(directory, env)
        if here.problems:
            raise InvalidInput("; ".join(here.problems))
        build_env = here.environment(env)
        rendered = build(directory, {k: v for k, v in build_env.items() if k not in PUBLISH_ONLY_ENV})
    found = Origin(
        request.source if request.source is not None else origin.source,
        request.revision if request.revision is not None else origin.revision,
        origin.committed,
    )
    artifact = pack(rendered, annotations(found, env))
    if request.output is not None:
        try:
            with open(request.output, "wb") as handle:
                handle.write(artifact.layer)
        except OSError as exc:
            raise PublishFailed(f"--layer-file {request.output}: cannot write: {exc.strerror}") from None
        return Published(artifact, [])
    return Published(artifact, push(artifact, request.references, build_env, request.insecure))


def _check_output(path: str) -> None:
    """Refuse an output file that cannot be written, naming why."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InvalidInput(f"--layer-file {path}: no such directory {folder}")
    if os.path.isdir(path):
        raise InvalidInput(f"--layer-file {path}: is a directory")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise InvalidInput(f"--layer-file {path}: not writable")


def _source(request: Request, work: str, env: Mapping[str, str]) -> tuple[str, Origin]:
    """The directory to build and its origin: the local checkout, or a fresh clone."""
    if request.git is None:
        # A dry run pushes nothing: its preview is marked -dirty rather than refused.
        return request.directory, local_origin(request.directory, request.allow_dirty or request.output is not None)
    outside = InvalidInput(f"{request.directory}: with --git, DIR is a path inside the repository")
    inside = os.path.normpath(request.directory)
    if os.path.isabs(inside) or inside == os.pardir or inside.startswith(os.pardir + os.sep):
        raise outside
    checkout = git_source.clone(request.git, request.ref, os.path.join(work, "repository"), env, request.insecure)
    root = os.path.realpath(checkout.directory)
    directory = os.path.realpath(os.path.join(root, inside))
    if os.path.commonpath([root, directory]) != root:  # a symlink in the repository pointing out of it
        raise outside
    return directory, Origin(checkout.source, checkout.revision, checkout.committed)


def push(artifact: Artifact, references: list[Reference], env: Mapping[str, str], insecure: bool) -> list[str]:
    """Push the artifact under every reference; the manifest digests, in order."""
    import oras.client  # only publish needs the OCI client (and requests under it)

    digests = []
    with tempfile.TemporaryDirectory(prefix="secret-contract-publish-") as work:
        layer = os.path.join(work, "artifact.tar.gz")
        config = os.path.join(work, "config.json")
        with open(layer, "wb") as handle:
            handle.write(artifact.layer)
        with open(config, "w", encoding="utf-8") as handle:
            handle.write("{}")
        for reference in references:
            credentials = _credentials(reference.registry, env)
            backend = _auth_backend(reference.registry, insecure, credentials)
            client = oras.client.OrasClient(hostname=reference.registry, insecure=insecure, auth_backend=backend)
            if credentials:
                client.auth.set_basic_auth(*credentials)
            try:
                response = client.push(
                    target=str(reference),
                    files=[f"{layer}:{LAYER_MEDIA_TYPE}"],
                    manifest_config=f"{config}:{CONFIG_MEDIA_TYPE}",
                    manifest_annotations=dict(artifact.annotations),
                    disable_path_validation=True,
                    quiet=True,
                )
            except Exception as exc:  # oras and requests raise many kinds; the message is what matters
                held = redact.basic_forms(*credentials) if credentials else []
                raise PublishFailed(f"pushing {reference} failed: {redact.reason(exc, held)}") from None
            digests.append(response.headers.get("Docker-Content-Digest", ""))
    return digests


def _credentials(registry: str, env: Mapping[str, str]) -> tuple[str, str] | None:
    """REGISTRY_USERNAME and REGISTRY_PASSWORD, else the Docker config's entry for the registry."""
    user, password = env.get("REGISTRY_USERNAME"), env.get("REGISTRY_PASSWORD")
    if user and password:
        return user, password
    config = _docker_config(env)
    if config is None:
        return None
    try:
        with open(config, encoding="utf-8") as handle:
            auths = json.load(handle).get("auths") or {}
        # `docker login` writes the bare host; older clients and some tools write a URL.
        keys = (registry, f"https://{registry}", f"http://{registry}", f"https://{registry}/v1/")
        entry = next((auths[k] for k in keys if isinstance(auths.get(k), dict)), {})
        pair = base64.b64decode(entry.get("auth", "")).decode()
    except (OSError, ValueError, AttributeError):
        return None
    name, colon, secret = pair.partition(":")
    return (name, secret) if colon and name else None


def _auth_backend(registry: str, insecure: bool, credentials: tuple[str, str] | None) -> str:
    """How the registry wants credentials, by its challenge: `basic` (htpasswd: many
    self-hosted registries), checked here so that a refusal is reported at once, or `token` (a
    bearer token from an auth service: GHCR, Docker Hub, Harbor), left to the OCI client."""
    import urllib.error
    import urllib.request

    url = f"{'http' if insecure else 'https'}://{registry}/v2/"
    try:
        with urllib.request.urlopen(url, timeout=15):  # noqa: S310 - the registry the user named
            return "token"
    except urllib.error.HTTPError as exc:
        challenge = (exc.headers.get("WWW-Authenticate") or "").strip().lower()
        if not challenge.startswith("basic"):
            return "token"
    except OSError as exc:
        hint = ""
        if not insecure and _plain_http(exc):
            hint = "; it answers plain HTTP, not TLS: pass --insecure for a registry on this machine or in the cluster"
        raise PublishFailed(f"cannot reach the registry {registry}: {redact.reason(exc)}{hint}") from None
    if credentials is None:
        raise PublishFailed(f"{registry} asks for credentials: set REGISTRY_USERNAME and REGISTRY_PASSWORD, or log in")
    token = base64.b64encode(":".join(credentials).encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})  # noqa: S310 - https or http only
    try:
        with urllib.request.urlopen(request, timeout=15):  # noqa: S310 - the registry the user named
            return "basic"
    except urllib.error.HTTPError:
        raise PublishFailed(f"{registry} refused the credentials (REGISTRY_USERNAME, or the Docker config)") from None


def _plain_http(exc: OSError) -> bool:
    """Whether a TLS handshake failed because the server spoke plain HTTP (OpenSSL's words)."""
    import ssl

    from secret_contract.vault_http import answered_in_plain_http

    cause = getattr(exc, "reason", exc)
    return isinstance(cause, ssl.SSLError) and answered_in_plain_http(f"{getattr(cause, 'reason', '')} {cause}")


def _docker_config(env: Mapping[str, str]) -> str | None:
    folder = env.get("DOCKER_CONFIG") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".docker")
    path = os.path.join(folder, "config.json")
    return path if os.path.isfile(path) else None


def layer_digest(artifact: Artifact) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(artifact.layer).hexdigest()


def manifest_preview(artifact: Artifact) -> str:
    return json.dumps(
        {
            "config": {"mediaType": CONFIG_MEDIA_TYPE},
            "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": layer_digest(artifact), "size": len(artifact.layer)}],
            "annotations": dict(artifact.annotations),
        },
        indent=2,
    )
