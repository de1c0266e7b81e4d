#!/usr/bin/env python3
"""Build the main packages of an upstream Go module at a pinned release, through a wrapper module.

Modules such as k8s.io/kubernetes, ESO and the Flux controllers cannot be `go install`ed: their
go.mod replaces in-repo submodules with local paths (`./staging/...`, `./api`, `./providers/...`).
This script writes a throwaway wrapper module that requires the upstream module at its release,
turns each local replace into a requirement (plus a pinning replace) of that submodule at a version
served by the Go module proxy, copies the upstream go.mod's other (non-local) replaces, and builds
the named main packages from it.  Nothing upstream is vendored or committed: the wrapper lives in
the cache and is regenerated from the pin every time the pin or this recipe changes.

Version of a submodule replaced locally (first rule that gives one):
  1. --local-version MODULE=VERSION given explicitly for that module;
  2. the version the upstream go.mod requires, unless it is a placeholder (v0.0.0);
  3. --local-default VERSION (e.g. v0.34.4 for k8s.io/kubernetes v1.34.4's staging modules,
     or a pseudo-version of the release commit for submodules that carry no tags).

Binaries land in CACHE/bin/NAME-VERSION-HASH/, HASH covering the generated go.mod (so the pin
and the version rules), the packages, tags, ldflags and the Go version; an existing directory
holding all the binaries is reused.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path


def cache_root() -> Path:
    base = os.environ.get("SECRET_CONTRACT_CACHE") or str(Path.home() / ".cache" / "secret-contract")
    return Path(base) / "cluster"


def go_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GOMODCACHE=str(root / "gomod"),
        GOCACHE=str(root / "gocache"),
        GOFLAGS="-mod=mod",
        GOTOOLCHAIN="local",
        CGO_ENABLED="0",
        GOWORK="off",
    )
    # The proxy only, never `direct`: this machine reaches no VCS host, and a fallback to git would
    # turn "the proxy does not serve this version" into a confusing git error.
    env["GOPROXY"] = os.environ.get("CLUSTER_GOPROXY", "https://proxy.golang.org")
    return env


def run(cmd: list[str], env: dict[str, str], cwd: Path | None = None, capture: bool = False) -> str:
    if not capture:
        print("+", " ".join(cmd), file=sys.stderr, flush=True)
    res = subprocess.run(cmd, env=env, cwd=cwd, text=True, stdout=subprocess.PIPE if capture else None)
    if res.returncode != 0:
        sys.exit(f"build.py: command failed ({res.returncode}): {' '.join(cmd)}")
    return res.stdout if capture else ""


def upstream_gomod(module: str, version: str, env: dict[str, str], work: Path) -> dict:
    info = json.loads(run(["go", "mod", "download", "-json", f"{module}@{version}"], env, cwd=work, capture=True))
    if info.get("Error"):
        sys.exit(f"build.py: go mod download {module}@{version}: {info['Error']}")
    copy = work / "upstream.mod"
    shutil.copyfile(info["GoMod"], copy)
    return json.loads(run(["go", "mod", "edit", "-json", str(copy)], env, cwd=work, capture=True))


def is_local(path: str) -> bool:
    return path.startswith("./") or path.startswith("../") or path.startswith("/")


def served(mods: dict[str, str], env: dict[str, str], work: Path) -> dict[str, str]:
    """Which MODULE@VERSION the proxy serves: {module: error} for those it does not."""
    if not mods:
        return {}
    res = subprocess.run(
        ["go", "mod", "download", "-json", *(f"{m}@{v}" for m, v in mods.items())],
        env=env,
        cwd=work,
        text=True,
        capture_output=True,
    )
    errors = {}
    for chunk in re.split(r"(?m)^(?=\{)", res.stdout):
        if chunk.strip():
            info = json.loads(chunk)
            if info.get("Error"):
                errors[info["Path"]] = info["Error"]
    return errors


def wrapper_gomod(
    name: str,
    module: str,
    version: str,
    up: dict,
    explicit: dict[str, str],
    default: str | None,
    env: dict[str, str],
    work: Path,
) -> tuple[str, list[str]]:
    required = {r["Path"]: r["Version"] for r in up.get("Require") or []}
    lines = [
        f"module secret-contract.local/build/{name}",
        "",
        f"go {up.get('Go') or '1.24'}",
        "",
        "require (",
        f"\t{module} {version}",
    ]
    replaces: list[str] = []
    notes: list[str] = []
    local: dict[str, tuple[str, str]] = {}
    for rep in up.get("Replace") or []:
        old, new = rep["Old"], rep["New"]
        if is_local(new["Path"]):
            mod = old["Path"]
            ver = explicit.get(mod)
            how = "explicit"
            if not ver:
                if mod not in required:
                    notes.append(f"{mod} => {new['Path']} not required by upstream, left out")
                    continue
                ver = required[mod]
                how = "required by upstream"
                if ver == "v0.0.0" or ver.startswith("v0.0.0-00010101000000-"):
                    ver, how = default, "local default"
            if not ver:
                sys.exit(
                    f"build.py: no version for locally replaced submodule {mod} ({new['Path']}); "
                    "give --local-default or --local-version"
                )
            local[mod] = (ver, how)
        else:
            lhs = old["Path"] + (f" {old['Version']}" if old.get("Version") else "")
            rhs = new["Path"] + (f" {new['Version']}" if new.get("Version") else "")
            replaces.append(f"\t{lhs} => {rhs}")
            notes.append(f"{lhs} => {rhs} (copied)")
    # A submodule version the proxy does not serve (e.g. k8s.io/sample-cli-plugin v0.34.4) is left
    # out: the build fails later, naming it, only if a package it builds imports it.
    missing = served({m: v for m, (v, _) in local.items()}, env, work)
    for mod, (ver, how) in local.items():
        if mod in missing:
            notes.append(f"{mod} {ver} not served, left out: {missing[mod].strip()}")
            continue
        lines.append(f"\t{mod} {ver}")
        replaces.append(f"\t{mod} => {mod} {ver}")
        notes.append(f"{mod} => {ver} ({how})")
    lines.append(")")
    if replaces:
        lines += ["", "replace (", *replaces, ")"]
    return "\n".join(lines) + "\n", notes


def binary_name(pkg: str) -> str:
    """The name `go build -o DIR/` gives a main package: its last element, less a /vN suffix."""
    parts = pkg.rstrip("/").split("/")
    if len(parts) > 1 and re.fullmatch(r"v[0-9]+", parts[-1]):
        parts.pop()
    return parts[-1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True, help="short name of the component (cache key prefix)")
    p.add_argument("--module", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--pkg", action="append", required=True, help="main package to build (repeatable)")
    p.add_argument("--tags", default="")
    p.add_argument("--ldflags", default="", help="extra -ldflags (appended to -s -w)")
    p.add_argument("--local-default")
    p.add_argument("--local-version", action="append", default=[], help="MODULE=VERSION")
    p.add_argument("--print-dir", action="store_true", help="only print the binary directory, build nothing")
    a = p.parse_args()

    root = cache_root()
    env = go_env(root)
    goversion = subprocess.run(["go", "env", "GOVERSION"], env=env, text=True, capture_output=True).stdout.strip()
    ldflags = "-s -w" + (f" {a.ldflags}" if a.ldflags else "")
    build_args = ["-trimpath", f"-ldflags={ldflags}"] + ([f"-tags={a.tags}"] if a.tags else [])

    # The wrapper's go.mod is derived from the pin (the upstream go.mod, the version rules): the
    # cache key covers it, the build flags, the packages and the Go version, so a changed pin or
    # recipe gives a new directory and a rebuild.
    started = time.monotonic()
    scratch = root / "work" / f"{a.name}-{a.version}.{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    up = upstream_gomod(a.module, a.version, env, scratch)
    explicit = dict(kv.split("=", 1) for kv in a.local_version)
    gomod, notes = wrapper_gomod(a.name, a.module, a.version, up, explicit, a.local_default, env, scratch)
    key = hashlib.sha256(json.dumps([gomod, build_args, a.pkg, goversion]).encode()).hexdigest()[:12]
    out = root / "bin" / f"{a.name}-{a.version}-{key}"
    work = root / "work" / out.name
    shutil.rmtree(work, ignore_errors=True)
    scratch.rename(work)
    bins = [out / binary_name(pkg) for pkg in a.pkg]
    if a.print_dir:
        print(out)
        return 0
    # One build of a directory at a time (make and the tests may ask at once): wait for the other.
    out.parent.mkdir(parents=True, exist_ok=True)
    lock = (out.parent / f".{out.name}.lock").open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    if all(b.is_file() for b in bins):
        print(f"build.py: {a.name} {a.version}: cached in {out}", file=sys.stderr)
        print(out)
        return 0
    (work / "go.mod").write_text(gomod)
    for n in notes:
        print(f"build.py: {a.name}: replace {n}", file=sys.stderr)

    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        run(["nice", "go", "build", *build_args, "-o", str(tmp) + "/", *a.pkg], env, cwd=work)
    except SystemExit:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    shutil.copyfile(work / "go.mod", out / "wrapper.go.mod")
    if (work / "go.sum").exists():
        shutil.copyfile(work / "go.sum", out / "wrapper.go.sum")
    secs = time.monotonic() - started
    (out / "BUILD-INFO").write_text(
        json.dumps(
            {
                "module": a.module,
                "version": a.version,
                "packages": a.pkg,
                "tags": a.tags,
                "go": goversion,
                "seconds": round(secs),
                "replaces": notes,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"build.py: {a.name} {a.version}: built in {secs:.0f}s into {out}", file=sys.stderr)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
