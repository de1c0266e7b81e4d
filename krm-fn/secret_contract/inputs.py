"""Where the command line's contracts come from: contract files, stack directories, or stack
names under the project's stacks root (`secret-contract add foundation/redis`). Used only by
`cli`; a KRM build gets its contracts from the ResourceList instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import yaml

from secret_contract import krm, yaml_codec
from secret_contract.errors import InvalidInput
from secret_contract.krm import Item, ResourceList
from secret_contract.project import Project
from secret_contract.results import FileRef

CONTRACT_FILE = "hostk8s.secrets.yaml"
# HostK8s keeps stacks from other repositories under the stacks root's `extension/`, ignored by
# git: a fresh clone has none, and `make up extension/NAME` must not fail for a stack without
# secrets there. Any other missing stack is a mistake (a typo) and stays an error.
EXTENSION_DIR = "extension"


@dataclass
class Inputs:
    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # stack directories without a contract


def resolve(args: list[str], project: Project) -> Inputs:
    """Each argument as a file, a directory holding a contract, or a stack name."""
    out = Inputs()
    for arg in args:
        if os.path.isfile(arg):
            out.files.append(arg)
            continue
        stacks = os.path.join(project.root, project.stacks_root)
        folder = arg if os.path.isdir(arg) else os.path.join(stacks, arg)
        if not os.path.isdir(folder):
            if _is_extension(arg):
                out.skipped.append(f"{arg}: no such extension stack under {stacks}, so no secrets to manage")
                continue
            raise InvalidInput(f"{arg}: no such file or directory, and no stack '{arg}' under {stacks}")
        candidate = os.path.join(folder, CONTRACT_FILE)
        if os.path.isfile(candidate):
            out.files.append(candidate)
        else:
            out.skipped.append(f"{arg}: no {CONTRACT_FILE} here, so no secrets to manage")
    out.files = list(dict.fromkeys(out.files))
    return out


def _is_extension(arg: str) -> bool:
    parts = os.path.normpath(arg).split(os.sep)
    return parts[0] == EXTENSION_DIR and not os.path.isabs(arg)


def _check_metadata(doc: dict[str, object], path: str, index: int) -> None:
    """The file and index are recorded in `metadata.annotations`: both must be mappings."""
    meta = doc.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise InvalidInput(f"{path}: document {index}: metadata: not a mapping")
    notes = (meta or {}).get("annotations")
    if notes is not None and not isinstance(notes, dict):
        raise InvalidInput(f"{path}: document {index}: metadata.annotations: not a mapping")


def stack_contracts(project: Project) -> list[str]:
    """Every contract under the stacks root (to know which stacks share a secret)."""
    root = os.path.join(project.root, project.stacks_root)
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        if CONTRACT_FILE in files:
            found.append(os.path.join(folder, CONTRACT_FILE))
    return found


def read_files(paths: list[str]) -> ResourceList:
    """A ResourceList of every document in `paths`, each annotated with its file and index."""
    items: list[Item] = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                docs = yaml_codec.load_all(handle.read())
        except UnicodeDecodeError:
            raise InvalidInput(f"{path}: not UTF-8 text") from None
        except yaml.YAMLError as exc:
            raise InvalidInput(f"{path}: invalid YAML: {yaml_codec.describe_error(exc)}") from None
        except OSError as exc:
            raise InvalidInput(f"{path}: cannot read: {exc.strerror}") from None
        for index, doc in enumerate(docs):
            if not isinstance(doc, dict):
                raise InvalidInput(f"{path}: document {index} is not a mapping")
            _check_metadata(doc, path, index)
            krm.set_file(doc, FileRef(path, index))
            items.append(doc)
    return ResourceList(items)
