"""Where kustomize looks for a legacy exec plugin, and the script put there.

kustomize finds `<root>/hostk8s.io/v1/secretcontract/SecretContract` for a generator
config of apiVersion hostk8s.io/v1, kind SecretContract, so an unmodified
hostk8s.secrets.yaml works under `kubectl kustomize --enable-alpha-plugins`.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from secret_contract.contract import API_VERSION, KIND

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# kustomize sets this for every exec plugin it runs (execplugin.getEnv); only then is stdin
# known to be a pipe kustomize closes, so reading it cannot hang a plugin run by hand.
UNDER_KUSTOMIZE_ENV = "KUSTOMIZE_PLUGIN_CONFIG_ROOT"


def plugin_root(env: Mapping[str, str]) -> str:
    """kustomize's lookup order: KUSTOMIZE_PLUGIN_HOME, XDG_CONFIG_HOME, ~/.config."""
    if env.get("KUSTOMIZE_PLUGIN_HOME"):
        return env["KUSTOMIZE_PLUGIN_HOME"]
    config_home = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".config")
    return os.path.join(config_home, "kustomize", "plugin")


def plugin_path(root: str) -> str:
    return os.path.join(root, API_VERSION, KIND.lower(), KIND)


def script(python: str) -> str:
    """A shell wrapper running this installation's interpreter (kustomize passes the
    config file as the only argument). It checks the interpreter first: an environment that
    was removed (a cleaned uvx or pipx cache, a deleted virtualenv) would otherwise fail with
    the shell's bare `not found`, which kustomize reports as a failed plugin. `-P` leaves the
    working directory (the kustomization's folder) off the module path: nothing there shadows a
    module, and no import looks there first."""
    quoted = shlex.quote(python)
    return (
        "#!/bin/sh\n"
        "# kustomize legacy exec plugin for hostk8s.io/v1 SecretContract.\n"
        "# Installed by `secret-contract install-plugin`; re-run it after moving the installation.\n"
        f"if [ ! -x {quoted} ]; then\n"
        f"  echo 'secret-contract plugin: the Python it was installed with is gone: '{quoted}"
        "' (its environment was removed or moved): run secret-contract install-plugin again from the "
        "installation to use.' >&2\n"
        "  exit 1\n"
        "fi\n"
        f'exec {quoted} -P -m secret_contract "$@"\n'
    )


@dataclass(frozen=True)
class Ephemeral:
    """A temporary environment a runner made for one command, in its cache."""

    runner: str  # `uvx` or `pipx run`
    install: str  # what installs the tool for good instead


def ephemeral(prefix: str, env: Mapping[str, str]) -> Ephemeral | None:
    """Whether the environment at `prefix` (sys.prefix) is one that `uvx` or `pipx run` made in
    its cache, which either may clean at any time: a wrapper pointing into it would break."""
    home = env.get("HOME") or os.path.expanduser("~")
    cache = env.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    caches = {
        "uvx": [env.get("UV_CACHE_DIR", ""), os.path.join(cache, "uv"), os.path.join(home, "Library", "Caches", "uv")],
        "pipx run": [
            os.path.join(env["PIPX_HOME"], ".cache") if env.get("PIPX_HOME") else "",
            os.path.join(cache, "pipx"),
            os.path.join(home, ".local", "pipx", ".cache"),
            os.path.join(home, "Library", "Caches", "pipx"),
        ],
    }
    real = os.path.realpath(prefix)
    for runner, roots in caches.items():
        for root in filter(None, roots):
            top = os.path.realpath(root)
            if real != top and os.path.commonpath([real, top]) == top:
                install = "uv tool install secret-contract" if runner == "uvx" else "pipx install secret-contract"
                return Ephemeral(runner, install)
    return None


def ephemeral_warning(env: Mapping[str, str], prefix: str = sys.prefix) -> str | None:
    """What `install-plugin` says when run from a runner's temporary environment."""
    found = ephemeral(prefix, env)
    if found is None:
        return None
    return (
        f"this secret-contract runs from a temporary environment of `{found.runner}` ({prefix}), which its cache "
        f"may drop at any time, and the plugin just installed runs that environment's Python: install for good "
        f"with `{found.install}`, then run `secret-contract install-plugin` again"
    )


def install(root: str) -> str:
    """Write the wrapper where kustomize looks for it under `root`; its path. Written beside
    it and renamed into place, so that a build running meanwhile never runs half a script."""
    target = plugin_path(root)
    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
    tmp = f"{target}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(script(sys.executable))
    os.chmod(tmp, 0o755)  # noqa: S103 - kustomize must be able to execute it
    os.replace(tmp, target)
    return target


def kustomization(field: str, entry: str) -> str:
    """The text of a new kustomization listing `entry` under `field` (resources, generators)."""
    return f"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n{field}:\n  - {entry}\n"


def resources(stdin: TextIO | None, env: Mapping[str, str]) -> list[dict[str, Any]]:
    """The resources kustomize passes a plugin configured under `transformers:` (none for
    `generators:`). A transformer must return them: kustomize deletes what it leaves out."""
    from secret_contract import yaml_codec
    from secret_contract.errors import InvalidInput

    if UNDER_KUSTOMIZE_ENV not in env or stdin is None or stdin.isatty():
        return []
    where = "the resources kustomize passed on stdin"
    try:
        docs = yaml_codec.load_all(stdin.read())
    except UnicodeDecodeError:
        raise InvalidInput(f"{where}: not UTF-8 text") from None
    except yaml_codec.yaml.YAMLError as exc:
        raise InvalidInput(f"{where}: invalid YAML: {yaml_codec.describe_error(exc)}") from None
    for index, doc in enumerate(docs):
        if not (isinstance(doc, dict) and doc.get("apiVersion") and doc.get("kind")):
            raise InvalidInput(f"{where}: document {index} is not a KRM object (needs apiVersion and kind)")
    return docs


def config_file(directory: str, config: Mapping[str, Any]) -> str | None:
    """The absolute path of the file, among the `generators:` of the kustomization in
    `directory`, that holds the generator config `config`.

    kustomize runs a legacy plugin in the kustomization's directory but hands it a temporary
    copy of the config, so an error would otherwise name no file. The path is absolute: the
    user's working directory is unknown here (kustomize changes it, the wrapper's shell resets
    $PWD). Read only when a build reports something: it parses the kustomization and its
    generator files.
    """
    from secret_contract import krm, yaml_codec

    kustomization = kustomization_file(directory)
    if kustomization is None:
        return None
    try:
        with open(kustomization, encoding="utf-8") as handle:
            entries = (yaml_codec.load(handle.read()) or {}).get("generators") or []
    except (OSError, UnicodeDecodeError, AttributeError, yaml_codec.yaml.YAMLError):
        return None
    wanted = krm.resource_ref(dict(config))
    for entry in entries:
        if not isinstance(entry, str) or not _is_file(directory, entry):
            continue
        path = os.path.normpath(os.path.join(directory, entry))
        try:
            with open(path, encoding="utf-8") as handle:
                docs = yaml_codec.load_all(handle.read())
        except (OSError, UnicodeDecodeError, yaml_codec.yaml.YAMLError):
            continue
        if any(isinstance(doc, dict) and krm.resource_ref(doc) == wanted for doc in docs):
            return os.path.abspath(path)
    return None


def kustomization_file(directory: str) -> str | None:
    """The kustomization file in `directory`, under any of the names kustomize accepts."""
    return next((os.path.join(directory, n) for n in KUSTOMIZATION_FILES if _is_file(directory, n)), None)


def _is_file(directory: str, name: str) -> bool:
    return os.path.isfile(os.path.join(directory, name))
