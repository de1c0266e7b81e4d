"""secret-contract: a KRM function that turns SecretContracts into Vault secrets and ExternalSecrets."""

__version__ = "0.1.0"
