"""Exceptions for conditions the function cannot continue from.

Findings about the input are values (`results.Result`), not exceptions. Messages carry
paths, addresses and versions, never secret values or Vault response bodies.
"""

from __future__ import annotations


class SecretContractError(Exception):
    """Base class: an expected failure, reported once and mapped to exit code 1."""


class InvalidResourceList(SecretContractError):
    """stdin is not a ResourceList the function can process."""


class InvalidInput(SecretContractError):
    """A file or directory given on the command line cannot be used."""


class VaultConfigError(SecretContractError):
    """The Vault settings in the environment are incomplete or contradictory."""


class VaultUnavailable(SecretContractError):
    """Vault could not be reached, or answered that it cannot serve (sealed, down)."""


class VaultPermissionDenied(SecretContractError):
    """Vault refused the token for an operation on a path."""


class RefusedAfterRedirect(VaultPermissionDenied):
    """Another host, to which Vault's address redirected, refused a request: not Vault's
    verdict on the token."""


class VaultRequestFailed(SecretContractError):
    """Vault rejected a request for a reason other than permissions or CAS."""


class CasConflict(SecretContractError):
    """A check-and-set write lost a race: the secret changed since it was read."""

    def __init__(self, path: str, expected_version: int) -> None:
        super().__init__(f"{path}: version changed since it was read (expected {expected_version})")
        self.path = path
        self.expected_version = expected_version
