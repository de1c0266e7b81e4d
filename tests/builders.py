"""Builders the tests share: contracts, the ResourceLists orchestrators send, and running the
function in-process the way an orchestrator runs it."""

from __future__ import annotations

import contextlib
import copy
import io
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from secret_contract import cli, krm, yaml_codec

Entry = dict[str, Any]


def static(key: str, value: str) -> Entry:
    return {"key": key, "value": value}


def generated(key: str, generator: str = "password", length: int | None = None) -> Entry:
    entry: Entry = {"key": key, "generate": generator}
    if length is not None:
        entry["length"] = length
    return entry


def secret(name: str, namespace: str, *data: Entry, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "data": list(data), **extra}


def contract(
    stack: str = "demo", *secrets: dict[str, Any], count: int = 0, namespace: str = "ns", **spec: Any
) -> dict[str, Any]:
    """A SecretContract: the given secrets, or `count` secrets s0..sN in `namespace`, each
    with a static user (a sentinel value), a generated password and a generated token."""
    listed = list(secrets) or [
        secret(
            f"s{i}",
            namespace,
            static("user", f"static-sentinel-{stack.replace('/', '-')}-{i}"),
            generated("password"),
            generated("token", "token"),
        )
        for i in range(count)
    ]
    return {
        "apiVersion": "hostk8s.io/v1",
        "kind": "SecretContract",
        "metadata": {"name": stack},
        "spec": {"secrets": listed, **spec},
    }


# The contract most tests start from: one secret, a static and a generated key.
DEMO = contract("demo", secret("db", "demo", static("user", "admin"), generated("pass")))
DEMO_PATH = "demo/db"


def generator_input(obj: dict[str, Any]) -> str:
    """What kustomize sends a `generators:` function: the config as functionConfig and only item."""
    item = copy.deepcopy(obj)
    item["metadata"]["annotations"] = {
        "config.kubernetes.io/local-config": "true",
        "config.kubernetes.io/index": "0",
        "internal.config.kubernetes.io/index": "0",
        "internal.config.kubernetes.io/id": "1",
        "config.k8s.io/id": "1",
    }
    config = copy.deepcopy(obj)
    config["metadata"]["annotations"] = {"config.kubernetes.io/local-config": "true"}
    return yaml_codec.dump(
        {"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", "items": [item], "functionConfig": config}
    )


def package_input(*items: dict[str, Any], config: dict[str, Any] | None = None) -> str:
    doc: dict[str, Any] = {"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", "items": list(items)}
    if config is not None:
        doc["functionConfig"] = config
    return yaml_codec.dump(doc)


def with_path(item: dict[str, Any], path: str, index: int = 0) -> dict[str, Any]:
    item = copy.deepcopy(item)
    notes = item.setdefault("metadata", {}).setdefault("annotations", {})
    for key in ("internal.config.kubernetes.io/path", "config.kubernetes.io/path"):
        notes[key] = path
    for key in ("internal.config.kubernetes.io/index", "config.kubernetes.io/index"):
        notes[key] = str(index)
    return item


def resource_list(*objs: dict[str, Any]) -> krm.ResourceList:
    """A generator call for one contract, or a package of several, parsed."""
    text = generator_input(objs[0]) if len(objs) == 1 else package_input(*objs)
    return krm.parse(text)


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout + self.stderr

    def output(self) -> dict[str, Any]:
        return yaml_codec.load(self.stdout)


def in_process(
    *args: str, env: dict[str, str] | None = None, stdin: str | bytes | None = None, cwd: Path | None = None
) -> Ran:
    """`python -m secret_contract` in this process: a command (`cli.command` with a `Context`),
    or, without arguments, the KRM function reading `stdin`. Anything printed to the process's
    streams besides the command's own lands in its output too, as it would in a process."""
    out, err = io.StringIO(), io.StringIO()
    data = stdin.encode() if isinstance(stdin, str) else (stdin or b"")
    with contextlib.chdir(cwd or Path.cwd()), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        if args:
            ctx = cli.Context(dict(env or {}), str(Path.cwd()), io.StringIO(data.decode()), out, err)
            code = cli.command(list(args), ctx)
        else:
            code = cli.run_krm(io.BytesIO(data), out, dict(env or {}))
    return Ran(code, out.getvalue(), err.getvalue())


def lock_pins(lock: Path, python_version: str | None = None) -> dict[str, str]:
    """A requirements lock's pins (canonical name: version), every one checked to carry a
    hash; with `python_version`, only those whose markers hold for it."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {}
    for line in lock.read_text().replace("\\\n", " ").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pinned = Requirement(line.split(" --hash")[0].strip())
        assert "--hash=sha256:" in line, f"{lock.name}: {pinned.name} has no hash"
        environment = {"python_full_version": python_version or "", "python_version": ""}
        if python_version:
            environment["python_version"] = python_version.rsplit(".", 1)[0]
        if python_version is None or pinned.marker is None or pinned.marker.evaluate(environment):
            pins[canonicalize_name(pinned.name)] = str(pinned.specifier).removeprefix("==")
    return pins


def git(repo: Path, *args: str) -> str:
    """git in `repo`, committing as a fixed author: its output."""
    command = ["git", "-C", str(repo), "-c", "user.name=ci", "-c", "user.email=ci@example.com", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def commit_tree(repo: Path, message: str) -> str:
    """The files in `repo` as a git repository with one commit on `main`: the commit's id."""
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", message]):
        git(repo, *args)
    return git(repo, "rev-parse", "HEAD")
