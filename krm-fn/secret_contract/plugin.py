"""Where kustomize looks for a legacy exec plugin, and the script put there.

kustomize finds `<root>/hostk8s.io/v1/secretcontract/SecretContract` for a generator
config of apiVersion hostk8s.io/v1, kind SecretContract, so an unmodified
hostk8s.secrets.yaml works under `kubectl kustomize --enable-alpha-plugins`.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping

from secret_contract.contract import API_VERSION, KIND


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
    config file as the only argument)."""
    return (
        "#!/bin/sh\n"
        "# kustomize legacy exec plugin for hostk8s.io/v1 SecretContract.\n"
        "# Installed by `secret-contract install-plugin`; re-run it after moving the installation.\n"
        f'exec {shlex.quote(python)} -m secret_contract "$@"\n'
    )
