#!/usr/bin/env bash
# Make a container engine usable by kustomize here, and a local Debian base image with
# python3 for `make image`. Idempotent: what exists (packages, config, base image) is kept,
# so a machine pays for debootstrap once. Prints the engine's directory that must come
# first on PATH (it holds `docker`, which kustomize calls, pointing at the engine).
#
# On a machine with a working `docker` there is nothing to do. Otherwise (a Debian machine
# without a Docker daemon, as root) it installs podman + runc, configures them for hosts
# where crun and raised rlimits fail, and builds the base with debootstrap, since no
# registry is reachable to pull one.
set -euo pipefail

base=${BASE_IMAGE:-localhost/debian-python:bookworm}
shim=${ENGINE_SHIM_DIR:-$(cd "$(dirname "$0")/.." && pwd)/.venv/engine-bin}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
log() { echo "container-engine: $*" >&2; }

# The shim from an earlier run still works: keep it (and never link it to itself).
if [ -x "$shim/docker" ] && "$shim/docker" info >/dev/null 2>&1 && \
   { [ "$(readlink "$shim/docker")" != "$shim/docker" ]; }; then
  echo "$shim"
  exit 0
fi
found=$(PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$shim" | paste -sd: -) command -v docker || true)
if [ -n "$found" ] && "$found" info >/dev/null 2>&1; then
  mkdir -p "$shim" && ln -sf "$found" "$shim/docker"
  echo "$shim"
  exit 0
fi

if ! command -v podman >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { log "no usable docker and no podman; install podman (or run as root)"; exit 1; }
  log "installing podman, runc and debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman podman-docker runc debootstrap >/dev/null
fi

conf=/etc/containers/containers.conf
if [ "$(id -u)" = 0 ] && ! grep -qs 'runtime *= *"runc"' "$conf"; then
  log "configuring $conf (runc, cgroupfs, ulimits within the current limits)"
  mkdir -p /etc/containers
  cat >"$conf" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
CONF
fi

if ! podman image exists "$base"; then
  case "$base" in
    localhost/*) ;;
    *) podman pull "$base" >&2; mkdir -p "$shim"; ln -sf "$(command -v podman)" "$shim/docker"; echo "$shim"; exit 0 ;;
  esac
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' EXIT
  log "building $base with debootstrap (once per machine)"
  debootstrap --variant=minbase --include=python3,python3-venv bookworm "$rootfs" "$mirror" >/dev/null
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import --change 'CMD ["python3"]' - "$base" >/dev/null
fi

mkdir -p "$shim"
ln -sf "$(command -v podman)" "$shim/docker"
echo "$shim"
