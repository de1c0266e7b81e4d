#!/usr/bin/env bash
# Flux route 1: render in CI (the function writes Vault there), publish the rendered
# manifests as an OCI artifact, and let Flux apply the artifact. Flux itself never runs a
# plugin. Run from CI with Vault credentials in the environment (see ../ci/).
#   kustomize-examples/flux/publish.sh kustomize-examples/platform/overlays/prod oci://ghcr.io/example/platform-prod
set -euo pipefail
overlay=$1
artifact=${2:-}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

export SECRET_CONTRACT_STRICT=true   # a Vault problem must fail the publish, not ship anyway
kubectl kustomize --enable-alpha-plugins "$overlay" > "$out/manifests.yaml"
echo "rendered $(grep -c '^kind: ExternalSecret' "$out/manifests.yaml") ExternalSecrets from $overlay" >&2

if [ -z "$artifact" ]; then
  cat "$out/manifests.yaml"          # no registry given: print what would be published
  exit 0
fi
revision="$(git rev-parse --abbrev-ref HEAD)@sha1:$(git rev-parse HEAD)"
flux push artifact "$artifact:$(git rev-parse --short HEAD)" \
  --path="$out" --source="$(git config --get remote.origin.url)" --revision="$revision"
flux tag artifact "$artifact:$(git rev-parse --short HEAD)" --tag latest
