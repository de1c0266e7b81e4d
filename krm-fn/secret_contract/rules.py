"""Semantic rules of a SecretContract, beyond what the JSON schema can say: the registry.

Each rule is a small function, in `rules_contract` (the contract's own fields) or `rules_views`
(the ExternalSecrets it makes), listed here under a stable id that every finding it produces
carries. They run in this order; a rule's docstring is its user documentation, with a
passing and a failing example.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from secret_contract import rules_contract, rules_views
from secret_contract.results import Result

Rule = Callable[[dict[str, Any]], Iterable[Result]]
RULES: dict[str, Rule] = {
    "stack-name": rules_contract.stack_name,
    "secret-name": rules_contract.secret_name,
    "duplicate-secret": rules_contract.duplicate_secret,
    "data-key": rules_contract.data_key,
    "value-or-generate": rules_contract.value_or_generate,
    "generator": rules_contract.generator,
    "vault-mount": rules_contract.vault_mount,
    "yaml-tag": rules_contract.yaml_tag,
    "control-characters": rules_contract.control_characters,
    "kubernetes-metadata": rules_views.kubernetes_metadata,
    "eso-template": rules_views.eso_template,
    "views": rules_views.views,
}


def check(obj: Any) -> list[Result]:
    """Run every rule; findings carry the id of the rule that produced them."""
    if not isinstance(obj, dict):
        return []
    found: list[Result] = []
    for rule_id, fn in RULES.items():
        found.extend(Result(r.severity, r.message, r.path, rule=rule_id) for r in fn(obj))
    return found
