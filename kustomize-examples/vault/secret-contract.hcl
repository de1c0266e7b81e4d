# The Vault (or OpenBao) policy a build needs: kustomize and kpt builds, `add`, `publish`, the
# Argo CD sidecar and the Flux publisher. `secret` is the KV v2 mount; use yours.
#   bao policy write secret-contract kustomize-examples/vault/secret-contract.hcl

# Read what exists and create what is missing. `update` writes a new version when a contract
# adds a key to an existing secret or changes a static value: the other keys are carried over
# and a generated value is never replaced (the build decides that, with check-and-set, not the
# policy). Without `update` a build token cannot write versions at all; adding a key then
# fails, naming the capability, until someone with it builds.
path "secret/data/*" {
  capabilities = ["create", "read", "update"]
}

# Ownership lives in each secret's custom metadata: read it, record it (patch), and list a
# folder to read many secrets' state at once.
path "secret/metadata/*" {
  capabilities = ["read", "list", "patch"]
}

# `remove` and `prune` (run by people, not builds) also need "delete" on secret/metadata/*.
