"""What a command runs with (its environment, working directory, streams and Vault) and what it
has said so far (findings, changes, emitted ExternalSecrets), from which `-o json|yaml` builds
its report. The process's own streams and environment are read in one place, `of_process`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from secret_contract.cli.envelope import ChangeRecord
    from secret_contract.krm import Item
    from secret_contract.results import Result
    from secret_contract.store import SecretStore
    from secret_contract.vault_config import VaultConfig

StoreFactory = Callable[["VaultConfig"], "SecretStore"]


@dataclass
class Context:
    env: Mapping[str, str]
    cwd: str
    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    store_factory: StoreFactory | None = None  # None: Vault itself (vault.VaultStore)
    dry_run: bool = False  # set by a command that changed nothing on purpose
    findings: list[Result] = field(default_factory=list)
    changes: list[ChangeRecord] = field(default_factory=list)
    externalsecrets: list[Item] = field(default_factory=list)

    @classmethod
    def of_process(cls) -> Context:
        return cls(os.environ, os.getcwd(), sys.stdin, sys.stdout, sys.stderr)

    @property
    def interactive(self) -> bool:
        """A person can answer a question: stdin is a terminal."""
        return self.stdin.isatty()
