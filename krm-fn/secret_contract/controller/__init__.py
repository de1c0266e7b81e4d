"""The ExternalArtifact controller: Flux without a publish step.

Flux's kustomize-controller runs no kustomize plugin. This controller renders a kustomization
with the function inside the cluster and hands the result to kustomize-controller through
Flux's `ExternalArtifact` API (Flux >= 2.7, kustomize-controller `--feature-gates=
ExternalArtifact=true`), the way Flux's own source-watcher does:

- `api`        the `SecretContractRender` resource, ExternalArtifact and condition shapes;
- `source`     fetching a source-controller artifact (digest checked) and unpacking it safely;
- `storage`    rendered archives on disk, named by digest: store, verify, collect garbage;
- `server`     the artifact file server, and the probes and metrics endpoints;
- `reconciler` one render: fetch, build exactly as `publish` does, store, ExternalArtifact;
- `main`       flags, leader election, watches and the work queue.

Written with the official `kubernetes` client: it has Lease-based leader election (kopf's
peering freezes instances of equal priority and has no lease), server-side apply, and watches,
and needs no framework between the reconcile loop and the API server.
"""
