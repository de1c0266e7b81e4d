"""What a build of someone else's kustomization may load, checked before kustomize runs.

kustomize finds a legacy plugin at `<plugin home>/<group>/<version>/<lowercase kind>/<kind>`
and joins those parts without refusing `..`: a generator whose apiVersion and kind climb out
of the plugin home (`kind: ../../../bin/sh`) makes kustomize execute any program on the
machine with the generator's config as its script, with the builder's credentials at hand.
`publish` and the controller build repositories they do not write, while holding a Vault
login, so every plugin config reachable from the kustomization (its generators, transformers
and validators, in it and in every local base and component) must name a plugin by plain
names that stay inside the plugin home. A remote base or plugin config cannot be inspected:
the controller, which builds for many tenants, refuses them (`allow_remote=False`).
"""

from __future__ import annotations

import os
import re
from typing import Any

from secret_contract import yaml_codec
from secret_contract.plugin import kustomization_file

# One path element each: a DNS-like group, a version, a kind. None can be `..` or hold a `/`.
_GROUP = r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?"
SAFE_API_VERSION = re.compile(rf"^({_GROUP}/)?[A-Za-z0-9]+$")
SAFE_KIND = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
PLUGIN_FIELDS = ("generators", "transformers", "validators")
RESOURCE_FIELDS = ("resources", "bases", "components")
MAX_KUSTOMIZATIONS = 2000  # a bound on the walk, whatever the tree holds


def problems(directory: str, allow_remote: bool = True) -> list[str]:
    """Why building `directory` could load something other than a plugin by plain name."""
    walk = _Walk(os.path.realpath(directory), allow_remote)
    walk.kustomization(directory)
    return walk.found


def _remote(entry: str) -> bool:
    return "://" in entry or entry.startswith(("git@", "github.com/", "gitlab.com/"))


class _Walk:
    def __init__(self, root: str, allow_remote: bool) -> None:
        self.root, self.allow_remote = root, allow_remote
        self.seen: set[str] = set()
        self.found: list[str] = []

    def kustomization(self, directory: str) -> None:
        real = os.path.realpath(directory)
        if real in self.seen or len(self.seen) >= MAX_KUSTOMIZATIONS:
            return
        self.seen.add(real)
        file = kustomization_file(real)
        if file is None:
            return
        doc = self._load(file)
        if not isinstance(doc, dict):
            return
        for field in RESOURCE_FIELDS:
            for entry in _strings(doc.get(field)):
                if _remote(entry):
                    if not self.allow_remote:
                        self.found.append(f"{file}: {field}: remote '{entry}' cannot be inspected before the build")
                    continue
                target = os.path.join(real, entry)
                if os.path.isdir(target):
                    self.kustomization(target)
        for field in PLUGIN_FIELDS:
            for entry in _strings(doc.get(field)):
                self._plugin_entry(file, real, field, entry)

    def _plugin_entry(self, file: str, directory: str, field: str, entry: str) -> None:
        if "\n" in entry:  # an inline plugin config
            for config in self._docs(entry, file):
                self._check(config, f"{file}: {field} (inline)")
            return
        if _remote(entry):
            self.found.append(f"{file}: {field}: remote '{entry}' cannot be inspected before the build")
            return
        target = os.path.join(directory, entry)
        if os.path.isdir(target):
            # A kustomization whose resources are plugin configs.
            inner = kustomization_file(target)
            doc = self._load(inner) if inner else None
            for resource in _strings(doc.get("resources") if isinstance(doc, dict) else None):
                self._plugin_entry(inner or file, target, field, resource)
            return
        if os.path.isfile(target):
            with open(target, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
            for config in self._docs(text, target):
                self._check(config, f"{target} ({field} of {file})")

    def _check(self, config: Any, where: str) -> None:
        if not isinstance(config, dict):
            return
        api_version, kind = str(config.get("apiVersion", "")), str(config.get("kind", ""))
        if not SAFE_API_VERSION.match(api_version) or not SAFE_KIND.match(kind):
            self.found.append(
                f"{where}: a plugin config with apiVersion {api_version!r} and kind {kind!r} names no plugin by plain "
                "names: kustomize would look for it outside its plugin directory and run what it finds there"
            )

    def _load(self, path: str) -> Any:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                return yaml_codec.load(handle.read())
        except (OSError, ValueError, yaml_codec.yaml.YAMLError):
            return None  # kustomize reports what it cannot read

    def _docs(self, text: str, where: str) -> list[Any]:
        try:
            return yaml_codec.load_all(text)
        except (ValueError, yaml_codec.yaml.YAMLError):
            self.found.append(f"{where}: not YAML that can be checked before the build")
            return []


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
