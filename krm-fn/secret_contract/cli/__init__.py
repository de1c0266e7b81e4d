"""The command line: the only part that reads argv or the process environment, prints, or
picks exit codes. `entry` starts the KRM function, the legacy plugin or a command; `parser`
is the verbs' table; `verbs` and `changes` run them; `output` prints.
"""

from secret_contract.cli.entry import main, run_krm, run_legacy_plugin

__all__ = ["main", "run_krm", "run_legacy_plugin"]
