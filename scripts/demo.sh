#!/usr/bin/env bash
# The main job on an embedded default: a throwaway OpenBao dev server, the legacy
# kustomize plugin, and `kubectl kustomize --enable-alpha-plugins` on the sample app.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
work="$root/.demo"
rm -rf "$work" && mkdir -p "$work"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token="demo-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
bao server -dev -dev-root-token-id="$token" -dev-listen-address="127.0.0.1:$port" >"$work/openbao.log" 2>&1 &
bao_pid=$!
trap 'kill "$bao_pid" 2>/dev/null || true' EXIT

export VAULT_ADDR="http://127.0.0.1:$port" VAULT_TOKEN="$token"
for _ in $(seq 100); do
  python3 -c 'import os, urllib.request; urllib.request.urlopen(os.environ["VAULT_ADDR"] + "/v1/sys/health", timeout=1)' 2>/dev/null && break
  sleep 0.2
done

export KUSTOMIZE_PLUGIN_HOME="$work/plugins"
echo "==> OpenBao dev server on $VAULT_ADDR (in memory, stopped when this demo ends)"
echo "==> secret-contract install-plugin: $(secret-contract install-plugin --dir "$KUSTOMIZE_PLUGIN_HOME")"
echo "==> kubectl kustomize --enable-alpha-plugins kustomize-examples/sample-app"
start=$(date +%s%N)
kubectl kustomize --enable-alpha-plugins "$root/kustomize-examples/sample-app" | tee "$work/build.yaml"
echo "==> build took $(( ($(date +%s%N) - start) / 1000000 )) ms"
echo "==> what landed in Vault (key names only, never values):"
secret-contract list
echo "==> secret-contract verify kustomize-examples/sample-app"
secret-contract verify "$root/kustomize-examples/sample-app"
echo "==> a second build changes nothing:"
kubectl kustomize --enable-alpha-plugins "$root/kustomize-examples/sample-app" | cmp - "$work/build.yaml" && echo "    same bytes"
secret-contract list
