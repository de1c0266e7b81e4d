"""Where a Secret's values live in Vault, and how ESO finds them again.

The default layout keys a Vault secret by the Kubernetes Secret it backs: `{namespace}/{name}`.
A Secret's identity is cluster-wide, so stacks that declare the same Secret share one Vault
secret and emit the same ExternalSecret, whichever builds first; it is also where the older
`manage-secrets.py` script wrote, so its values are found where they are. The `stack` layout
(`{stack}/{namespace}/{name}`, the decision record's example) gives each stack its own copy,
for platforms whose stacks never share a Secret and want per-stack Vault policies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Scheme = Literal["namespace", "stack"]
DEFAULT_SCHEME: Scheme = "namespace"


@dataclass(frozen=True, slots=True)
class VaultLayout:
    mount: str
    scheme: Scheme = DEFAULT_SCHEME
    prefix: str = ""

    def path(self, stack: str, namespace: str, name: str) -> str:
        """The path of a Secret's values inside the mount."""
        return _join(self.prefix, *((stack,) if self.scheme == "stack" else ()), namespace, name)

    def former_paths(self, stack: str, namespace: str, name: str) -> tuple[str, ...]:
        """Other paths in the mount where the same Secret's values may already live: where the
        older script wrote (`{namespace}/{name}`, no prefix) and the other layout's path."""
        own = self.path(stack, namespace, name)
        candidates = (
            _join(namespace, name),
            _join(self.prefix, namespace, name),
            _join(self.prefix, stack, namespace, name),
        )
        return tuple(p for p in dict.fromkeys(candidates) if p != own)

    def folders(self, stack: str, namespaces: list[str]) -> list[str]:
        """The folders this layout puts a contract's secrets in (to find those it left behind)."""
        if self.scheme == "stack":
            return [_join(self.prefix, stack) + "/"]
        return sorted({_join(self.prefix, ns) + "/" for ns in namespaces})

    def eso_problem(self, path: str) -> str | None:
        """Why ESO would read another path than `path` for `remoteRef.key: path`, or None.

        ESO's Vault provider (providers/v1/vault buildPath) strips a leading `<store path>/`
        from the key, and then a leading `data/`, before it adds the mount's `data/`. With the
        store's `path` set to the mount, a key that begins with the mount's name therefore
        resolves to another secret.
        """
        cut = self.mount + "/"
        if path.startswith(cut):
            rest = path[len(cut) :]
            read = rest.removeprefix("data/")
            return (
                f"ESO strips a leading '{cut}' from remoteRef.key, so it would read {self.mount}/{read}, another "
                f"secret, instead of {self.mount}/{path}; choose a stack, namespace or prefix that does not begin "
                f"with the mount's name '{self.mount}'"
            )
        return None


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p)
