"""Wiring a stack to the function (`secret-contract init`): the function annotation in its
contract and the generator entry in its kustomization.

Edits are ruamel.yaml round-trips of the user's text, so comments, key order, quoting and
indentation stay as the user wrote them. `wire` reads the files and returns the edits; the
command line writes them.
"""

from __future__ import annotations

import io
import itertools
import os
import re
from dataclasses import dataclass
from typing import Any

from secret_contract.errors import InvalidInput

FUNCTION_ANNOTATION = "config.kubernetes.io/function"
DEFAULT_IMAGE = "secret-contract:dev"
# What a container function needs from the caller: Vault, the switches, and CI (a build in CI
# is strict, and the container sees only what is listed).
DEFAULT_ENVS = (
    "VAULT_ADDR",
    "VAULT_TOKEN",
    "VAULT_NAMESPACE",
    "VAULT_CACERT",
    "SECRET_CONTRACT_VAULT_MOUNT",
    "SECRET_CONTRACT_STRICT",
    "SECRET_CONTRACT_DRY_RUN",
    "CI",
)


@dataclass(frozen=True)
class Edit:
    text: str
    changed: bool
    note: str


def wire(contract_path: str, spec: str | None) -> list[tuple[str, Edit]]:
    """(file, edit) for the contract and for the kustomization beside it (created if none)."""
    from secret_contract import plugin

    folder = os.path.dirname(contract_path) or "."
    with open(contract_path, encoding="utf-8") as handle:
        contract_edit = annotate_contract(handle.read(), spec)
    kustomization = plugin.kustomization_file(folder)
    existing = None
    if kustomization:
        with open(kustomization, encoding="utf-8") as handle:
            existing = handle.read()
    target = kustomization or os.path.join(folder, plugin.KUSTOMIZATION_FILES[0])
    return [(contract_path, contract_edit), (target, add_generator(existing, os.path.basename(contract_path)))]


def function_spec(
    runtime: str, image: str = DEFAULT_IMAGE, exec_path: str = "", envs: tuple[str, ...] = DEFAULT_ENVS
) -> str:
    """The text of the `config.kubernetes.io/function` annotation for a runtime."""
    if runtime == "container":
        env_lines = "".join(f"    - {name}\n" for name in envs)
        return f"container:\n  image: {image}\n  network: true\n  envs:\n{env_lines}"
    if runtime == "exec":
        return f"exec:\n  path: {exec_path}\n"
    raise ValueError(f"runtime {runtime} has no function annotation")


def annotation(runtime: str, image: str = DEFAULT_IMAGE, exec_path: str | None = None) -> str | None:
    """The function annotation `init --runtime` sets: None for the legacy plugin, which runs
    without one. Checked here rather than by the parser so that a stack without a contract
    or with an invalid one is reported first, as for every other runtime."""
    if runtime == "legacy":
        return None
    if runtime == "exec" and not exec_path:
        raise InvalidInput("--runtime exec needs --exec-path (the function's path as kustomize should run it)")
    return function_spec(runtime, image, exec_path or "")


def annotate_contract(text: str, spec: str | None) -> Edit:
    """Set (or, with None, remove) the function annotation of the contract in `text`."""
    from ruamel.yaml.scalarstring import LiteralScalarString

    yaml, doc = _load(text)
    meta = doc.setdefault("metadata", {})
    notes = meta.get("annotations")
    current = None if notes is None else notes.get(FUNCTION_ANNOTATION)
    if spec is None:
        if current is None:
            return Edit(text, False, "contract: no function annotation (the legacy plugin runs it)")
        del notes[FUNCTION_ANNOTATION]
        if not notes:
            del meta["annotations"]
        return Edit(_dump(yaml, doc), True, "contract: removed the function annotation")
    if current is not None and str(current).strip() == spec.strip():
        return Edit(text, False, "contract: function annotation already set")
    if notes is None:
        meta.insert(len(meta), "annotations", {})
        notes = meta["annotations"]
    notes[FUNCTION_ANNOTATION] = LiteralScalarString(spec)
    return Edit(_dump(yaml, doc), True, "contract: set the function annotation")


def add_generator(text: str | None, contract_name: str) -> Edit:
    """Make the kustomization list `contract_name` under `generators:` (create it if needed)."""
    if text is None:
        from secret_contract import plugin

        created = plugin.kustomization("generators", contract_name)
        return Edit(created, True, "kustomization: created, with the contract as a generator")
    yaml, doc = _load(text)
    generators = doc.get("generators")
    if generators is not None and contract_name in list(generators):
        return Edit(text, False, "kustomization: contract already a generator")
    resources = doc.get("resources")
    note = "kustomization: added the contract to generators"
    if resources is not None and contract_name in list(resources):
        # Listed as a resource, the contract itself would be applied to the cluster.
        resources.remove(contract_name)
        note += " (and removed it from resources)"
    if generators is None:
        doc["generators"] = [contract_name]
    else:
        generators.append(contract_name)
    return Edit(_dump(yaml, doc), True, note)


def _load(text: str) -> tuple[Any, Any]:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    mapping, sequence, offset = _indentation(text)
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    doc = yaml.load(text)
    if doc is None:
        doc = {}
    return yaml, doc


def _dump(yaml: Any, doc: Any) -> str:
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def _indentation(text: str) -> tuple[int, int, int]:
    """(mapping, sequence, offset) as the file already uses them: `- ` flush with its key,
    or indented under it."""
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for before, line in itertools.pairwise(lines):
        item = re.match(r"^(\s*)- ", line)
        parent = re.match(r"^(\s*)[^\s-][^:]*:\s*$", before)
        if item and parent:
            indented = len(item.group(1)) > len(parent.group(1))
            return (2, 4, 2) if indented else (2, 2, 0)
    return 2, 2, 0
