"""The command line: the only part that reads argv or the process environment, prints, or
picks exit codes. `entry` starts the KRM function, the legacy plugin or a command; `parser`
is the verbs' table; `verbs` and `changes` run them with a `context` (environment, streams,
Vault); `output` prints; `envelope` is the `-o json|yaml` report.
"""

from secret_contract.cli.context import Context
from secret_contract.cli.entry import command, main, run_krm, run_legacy_plugin

__all__ = ["Context", "command", "main", "run_krm", "run_legacy_plugin"]
