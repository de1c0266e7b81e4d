"""OpenBao's names for the Vault CLI's variables.

The `bao` CLI reads `BAO_X` when it is set to a value, and `VAULT_X` otherwise: an empty
`BAO_X` counts as unset (openbao `api/env.go`, `ReadBaoVariable`). The same rule holds here,
applied once where a run's environment is assembled (`project.Project.environment`), so that
every reader of `VAULT_*` sees what `bao` would use.
"""

from __future__ import annotations

from collections.abc import Mapping

# Every variable this tool reads that OpenBao names 1:1 with the prefix BAO_.
NAMES = (
    "ADDR",
    "TOKEN",
    "NAMESPACE",
    "CACERT",
    "CAPATH",
    "CLIENT_CERT",
    "CLIENT_KEY",
    "CLIENT_TIMEOUT",
    "MAX_RETRIES",
    "SKIP_VERIFY",
    "TLS_SERVER_NAME",
    "PROXY_ADDR",
    "HTTP_PROXY",
)


def with_openbao_names(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with each `BAO_X` that has a value standing in for `VAULT_X`, as `bao` reads them."""
    merged = dict(env)
    for name in NAMES:
        bao = f"BAO_{name}"
        if env.get(bao):
            merged[f"VAULT_{name}"] = env[bao]
    return merged


def source(env: Mapping[str, str], name: str) -> str:
    """Which variable gave `VAULT_<name>`'s value: the one to name in a message."""
    return f"BAO_{name}" if env.get(f"BAO_{name}") else f"VAULT_{name}"


def present(env: Mapping[str, str], name: str) -> bool:
    """Whether the environment says anything about `VAULT_<name>`, even an empty value: then
    a project file's setting for it is not taken (an emptied variable must not hand a token
    to an address the environment did not give)."""
    return f"VAULT_{name}" in env or f"BAO_{name}" in env
