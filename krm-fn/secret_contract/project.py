"""Project settings: a repository pins its local defaults once, in `secret-contract.yaml` at
its root or in `[tool.secret-contract]` of its pyproject.toml, and names its stacks root.

The environment always wins: a VAULT_ADDR or BAO_ADDR present at all, even empty, keeps the
file's vaultAddr out (and likewise for the namespace). The Vault address pinned here is for
local development and is not used when `CI` is set (a CI job says where its Vault is, or renders without one). No
credential is read from a project file: a key that looks like one is an error. Nor does a
project file choose where a developer's own credential goes: with an address from the file,
the token in ~/.vault-token is not sent (a cloned repository could otherwise collect it);
a credential given in the environment (VAULT_TOKEN, a token file named there, a login) is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from secret_contract import settings, vault_env, yaml_codec
from secret_contract.vault_auth import ADDR_FROM_ENV

PROJECT_FILE = "secret-contract.yaml"
PYPROJECT = "pyproject.toml"
STACKS_ROOT_ENV = "SECRET_CONTRACT_STACKS_ROOT"
DEFAULT_STACKS_ROOT = "software/stacks"
ENV_KEYS = {"vaultAddr": "VAULT_ADDR", "vaultNamespace": "VAULT_NAMESPACE"}

OWN_KEYS = frozenset({*ENV_KEYS, "stacksRoot"})
CREDENTIAL_WORDS = ("token", "password", "secret", "roleid", "jwt")


@dataclass(frozen=True)
class Project:
    root: str  # the repository root: where the project file is, else the git top level, else cwd
    file: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)  # function settings (ConfigMap keys)
    env: Mapping[str, str] = field(default_factory=dict)  # Vault variables it pins
    stacks_root: str = DEFAULT_STACKS_ROOT
    problems: tuple[str, ...] = ()

    def environment(self, env: Mapping[str, str]) -> dict[str, str]:
        """`env` with OpenBao's `BAO_*` names read as `bao` reads them, and the project's Vault
        variables where the environment has neither `VAULT_X` nor `BAO_X`, not even empty
        (and never in CI)."""
        given = env
        env = vault_env.with_openbao_names(env)
        if settings.flag(env, settings.CI_ENV):
            return env
        # A variable present in the environment, even empty, keeps the file's value out.
        pinned = {var: v for var, v in self.env.items() if not vault_env.present(given, var.removeprefix("VAULT_"))}
        merged = {**pinned, **{k: v for k, v in env.items() if v != ""}}
        merged.pop(ADDR_FROM_ENV, None)
        if "VAULT_ADDR" in pinned:
            merged[ADDR_FROM_ENV] = self.file or PROJECT_FILE
        return merged


def find(start: str, env: Mapping[str, str]) -> Project:
    """The project around `start`: look upwards for a project file, stopping at the top of
    the git repository."""
    here = os.path.abspath(start)
    top = None
    while True:
        for name in (PROJECT_FILE, PYPROJECT):
            candidate = os.path.join(here, name)
            if os.path.isfile(candidate):
                loaded = _load(candidate)
                if loaded is not None:
                    return _project(here, candidate, loaded, env)
        if top is None and os.path.exists(os.path.join(here, ".git")):
            top = here
            break
        parent = os.path.dirname(here)
        if parent == here:
            break
        here = parent
    return _project(top or os.path.abspath(start), None, {}, env)


def _load(path: str) -> dict[str, Any] | None:
    """The settings a file holds; None for a pyproject.toml without a [tool.secret-contract]."""
    if path.endswith(".toml"):
        return _pyproject_section(path)
    try:
        with open(path, encoding="utf-8") as handle:
            doc = yaml_codec.load(handle.read())
    except (OSError, ValueError) as exc:
        return {"__problem__": f"{path}: cannot read ({type(exc).__name__})"}
    except yaml_codec.yaml.YAMLError as exc:
        return {"__problem__": f"{path}: invalid YAML: {yaml_codec.describe_error(exc)}"}
    if doc is None:
        return {}
    return doc if isinstance(doc, dict) else {"__problem__": f"{path}: must be a mapping of settings"}


def _pyproject_section(path: str) -> dict[str, Any] | None:
    """`[tool.secret-contract]` of a pyproject.toml, None without one. A file that never names
    secret-contract is another tool's, and is not parsed: a Python repository's builds would
    otherwise each pay for reading it, and fail on its mistakes."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
        if b"secret-contract" not in raw:
            return None
        import tomllib

        section = tomllib.loads(raw.decode("utf-8")).get("tool", {}).get("secret-contract")
    except (OSError, ValueError) as exc:  # TOMLDecodeError and UnicodeDecodeError are ValueErrors
        return {"__problem__": f"{path}: cannot read ({type(exc).__name__})"}
    return section if isinstance(section, dict) else None


def _project(root: str, file: str | None, data: dict[str, Any], env: Mapping[str, str]) -> Project:
    problems = [str(data.pop("__problem__"))] if "__problem__" in data else []
    for key in data:
        lowered = key.lower().replace("-", "").replace("_", "")
        if any(word in lowered for word in CREDENTIAL_WORDS):
            problems.append(f"{file}: '{key}': credentials are never read from a project file")
        elif key not in OWN_KEYS and key not in settings.CONFIG_KEYS:
            import difflib  # only for a misspelt key: a build without one never needs it

            close = difflib.get_close_matches(str(key), sorted(OWN_KEYS | settings.CONFIG_KEYS), n=1)
            known = ", ".join(sorted(OWN_KEYS | settings.CONFIG_KEYS))
            hint = f"did you mean '{close[0]}'? " if close else ""
            problems.append(f"{file}: unknown setting '{key}' ({hint}known: {known})")
    pinned = {var: str(data[key]) for key, var in ENV_KEYS.items() if data.get(key)}
    stacks = env.get(STACKS_ROOT_ENV) or str(data.get("stacksRoot") or DEFAULT_STACKS_ROOT)
    function_settings = {k: v for k, v in data.items() if k in settings.CONFIG_KEYS}
    return Project(root, file, function_settings, pinned, stacks, tuple(problems))
