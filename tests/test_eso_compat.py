"""What the function emits is accepted by every supported ESO release: the ExternalSecret CRDs
of v0.16.2, v0.17.0, v1.0.0, v2.2.0, v2.3.0 and v2.9.0, with strict field validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from builders import contract, generated, resource_list, secret, static
from conftest import EXAMPLES
from kube_schema import ESO_RELEASES, eso_problems
from secret_contract import inputs, krm, pipeline, yaml_codec
from secret_contract.pipeline import Options

EXAMPLE_CONTRACTS = sorted(EXAMPLES.rglob(inputs.CONTRACT_FILE))


def rendered(rl: krm.ResourceList, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    outcome = pipeline.build(rl, env or {}, Options(write=False))
    assert not outcome.failed, [f.message for f in outcome.findings]
    return outcome.externalsecrets


@pytest.mark.parametrize("path", EXAMPLE_CONTRACTS, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_example_is_accepted_by_every_release(path: Path) -> None:
    for es in rendered(inputs.read_files([str(path)])):
        es = krm.strip_orchestrator_annotations(es)
        assert eso_problems(es) == {release: [] for release in ESO_RELEASES}, es["metadata"]["name"]


def test_templates_and_settings_are_accepted_by_every_release() -> None:
    obj = contract(
        "search",
        secret(
            "elastic",
            "search",
            static("username", "elastic"),
            generated("password"),
            externalSecret={
                "refreshInterval": "0",
                "secretStoreRef": {"name": "team-store", "kind": "SecretStore"},
                "target": {
                    "template": {
                        "type": "kubernetes.io/basic-auth",
                        "metadata": {
                            "labels": {"app.kubernetes.io/part-of": "search"},
                            "annotations": {"eck.k8s.elastic.co/credentials": "true"},
                        },
                    }
                },
            },
        ),
    )
    for es in rendered(resource_list(obj)):
        assert eso_problems(es) == {release: [] for release in ESO_RELEASES}


def test_the_check_catches_fields_a_release_does_not_know() -> None:
    """The control: what this function wrote before, refused by the releases it broke on."""
    (es,) = rendered(resource_list(contract("demo", secret("db", "demo", generated("pass")))))
    older = {
        **es,
        "spec": {
            **es["spec"],
            "data": [{**d, "remoteRef": {**d["remoteRef"], "nullBytePolicy": "Ignore"}} for d in es["spec"]["data"]],
        },
    }
    found = eso_problems(older)
    assert all(found[r] for r in ("v0.16.2", "v0.17.0", "v1.0.0", "v2.2.0"))
    assert not found["v2.3.0"] and not found["v2.9.0"]
    beta = {**es, "apiVersion": "external-secrets.io/v1beta1"}
    assert [r for r, p in eso_problems(beta).items() if not p] == ["v0.16.2"]


def test_the_shipped_cluster_secret_store_is_accepted() -> None:
    store = yaml_codec.load((EXAMPLES / "hostk8s" / "cluster" / "cluster-secret-store.yaml").read_text())
    found = eso_problems(store, "clustersecretstores")
    assert set(found) == {"v0.16.2", "v2.9.0"} and all(p == [] for p in found.values()), found
    assert store["metadata"]["name"] == "vault-backend" and store["spec"]["provider"]["vault"]["path"] == "secret"
    broken = {**store, "spec": {"provider": {"vault": {**store["spec"]["provider"]["vault"], "pathh": "secret"}}}}
    assert all(eso_problems(broken, "clustersecretstores").values())  # the check sees a misspelt field
