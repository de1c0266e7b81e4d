# Shared by cluster/up.sh, cluster/down.sh and cluster/eso.sh (sourced, not run).
# shellcheck shell=bash
set -euo pipefail

CLUSTER_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$CLUSTER_SRC/.." && pwd)
# shellcheck source=versions.env
. "$CLUSTER_SRC/versions.env"
CLUSTER_DIR=${CLUSTER_DIR:-$ROOT/.cluster}
CACHE="${SECRET_CONTRACT_CACHE:-$HOME/.cache/secret-contract}/cluster"
GOMODCACHE_DIR="$CACHE/gomod"
PIDS="$CLUSTER_DIR/pids"
LOGS="$CLUSTER_DIR/logs"
PKI="$CLUSTER_DIR/pki"
# How long each wait may take (seconds); CI machines are slow and shared.
CLUSTER_WAIT=${CLUSTER_WAIT:-180}

say() { echo "cluster: $*" >&2; }
die() { echo "cluster: error: $*" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

bin_dir() { "$CLUSTER_SRC/build.sh" --print-dir "$1"; }

# kubectl: the one built with the API server (same release, no version skew); else the system's.
if [[ -z ${KUBECTL:-} ]]; then
  KUBECTL=$(bin_dir kubernetes 2>/dev/null)/kubectl
  [[ -x $KUBECTL ]] || KUBECTL=$(command -v kubectl || echo "$ROOT/.venv/bin/kubectl")
fi
kc() { "$KUBECTL" --kubeconfig "$CLUSTER_DIR/admin.kubeconfig" "$@"; }

# start NAME ENV... -- CMD...: start a process in its own session, log to logs/NAME.log, record its
# PID and executable in pids/NAME.{pid,exe} so down.sh stops exactly this process.
start() {
  local name=$1; shift
  local -a envs=()
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  mkdir -p "$PIDS" "$LOGS"
  local exe; exe=$(readlink -f "$(command -v "$1")")
  say "starting $name: $*"
  env "${envs[@]}" setsid "$@" </dev/null >>"$LOGS/$name.log" 2>&1 &
  echo $! >"$PIDS/$name.pid"
  echo "$exe" >"$PIDS/$name.exe"
  local i  # env and setsid exec the program: wait until the PID is it
  for i in $(seq 50); do alive "$name" && return 0; sleep 0.1; done
  echo "cluster: error: $name did not start; last lines of $LOGS/$name.log:" >&2
  tail -n 25 "$LOGS/$name.log" >&2 || true
  return 1
}

# alive NAME: the recorded process runs and is still the program we started (not a reused PID).
alive() {
  local pid exe
  pid=$(cat "$PIDS/$1.pid" 2>/dev/null) || return 1
  exe=$(cat "$PIDS/$1.exe" 2>/dev/null) || return 1
  [[ -d /proc/$pid ]] || return 1
  [[ $(readlink -f "/proc/$pid/exe" 2>/dev/null) == "$exe" ]]
}

# running PID: the process exists and has not finished exiting (a zombie has; so has one whose
# executable link is already gone, which `alive` cannot tell from a reused PID).
running() {
  local state
  state=$(sed -n 's/^.*) \(.\).*$/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

# stop NAME: TERM the recorded process, KILL it after 15 s, and return only once it is gone (its
# listeners closed); prints what it stopped.
stop() {
  local name=$1 pid
  pid=$(cat "$PIDS/$name.pid" 2>/dev/null) || return 0
  if alive "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for i in $(seq 150); do running "$pid" || break; sleep 0.1; done
    if running "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    for i in $(seq 50); do running "$pid" || break; sleep 0.1; done
    if running "$pid"; then
      echo "cluster: warning: $name (pid $pid) is still exiting after SIGKILL" >&2
    else
      echo "cluster: stopped $name (pid $pid)" >&2
    fi
  else
    echo "cluster: $name (pid $pid) was not running" >&2
  fi
  rm -f "$PIDS/$name.pid" "$PIDS/$name.exe"
}

# wait_for WHAT LOGNAME CMD...: run CMD until it succeeds, at most CLUSTER_WAIT seconds; on timeout
# fail naming WHAT, with the tail of logs/LOGNAME.log.
wait_for() {
  local what=$1 logname=$2; shift 2
  local deadline=$(( $(date +%s) + CLUSTER_WAIT ))
  until "$@" >/dev/null 2>&1; do
    if (( $(date +%s) >= deadline )); then
      echo "cluster: error: $what did not become ready within ${CLUSTER_WAIT}s; last lines of $LOGS/$logname.log:" >&2
      tail -n 25 "$LOGS/$logname.log" >&2 2>/dev/null || true
      return 1
    fi
    if [[ -n $logname ]] && [[ -f $PIDS/$logname.pid ]] && ! alive "$logname"; then
      echo "cluster: error: $logname exited while waiting for $what; last lines of $LOGS/$logname.log:" >&2
      tail -n 25 "$LOGS/$logname.log" >&2 2>/dev/null || true
      return 1
    fi
    sleep 0.5
  done
}

# ESO releases built here: VERSION -> build.sh component.
eso_component() {
  case "$1" in
    "${ESO_V0#*@}") echo eso-v0 ;;
    "${ESO_CURRENT#*@}") echo eso-current ;;
    "${ESO_V1#*@}") echo eso-v1 ;;
    *) die "ESO $1 is not pinned in cluster/versions.env" ;;
  esac
}
ESO_DEFAULT=${ESO_CURRENT#*@}
ESO_RELEASES="${ESO_V0#*@} ${ESO_CURRENT#*@}"

# module_dir MODULE@VERSION: that module's files in the build cache's GOMODCACHE, downloaded from
# the Go module proxy when missing (a CI cache may hold only the binaries).
module_dir() {
  local d="$GOMODCACHE_DIR/$1"
  if [[ ! -d $d ]]; then
    say "downloading $1 (for its CRDs)"
    (cd "$CACHE" && GOMODCACHE="$GOMODCACHE_DIR" GOPROXY=${CLUSTER_GOPROXY:-https://proxy.golang.org} \
      GOFLAGS=-mod=mod GOTOOLCHAIN=local go mod download "$1") >&2 || die "go mod download $1 failed"
  fi
  echo "$d"
}

# eso_crds VERSION: the CRD directory inside that release's module.
eso_crds() {
  local d
  d="$(module_dir "github.com/external-secrets/external-secrets@$1")/config/crds/bases"
  [[ -d $d ]] || die "ESO $1's CRDs are missing ($d)"
  echo "$d"
}

# apply_crds DIR: server-side apply every CRD file (some are too big for client-side apply).
apply_crds() {
  local f
  for f in "$1"/*.yaml; do
    [[ $(basename "$f") == kustomization.yaml ]] && continue
    kc apply --server-side --force-conflicts --field-manager=secret-contract-cluster -f "$f" >/dev/null
  done
}

crds_established() {
  local f name
  for f in "$1"/*.yaml; do
    [[ $(basename "$f") == kustomization.yaml ]] && continue
    name=$(sed -n 's/^  name: //p' "$f" | head -n1)
    kc wait --for=condition=Established --timeout=2s "crd/$name" || return 1
  done
}

css_ready() {
  [[ $(kc get clustersecretstore vault-backend -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') == True ]]
}

# start_eso VERSION: apply that release's CRDs, start its controller, (re)create the
# ClusterSecretStore and wait until ESO reports it Ready.
start_eso() {
  local version=$1 dir crds
  dir=$(bin_dir "$(eso_component "$version")")
  [[ -x $dir/external-secrets ]] || die "ESO $version is not built ($dir): run cluster/build.sh"
  crds=$(eso_crds "$version")
  say "applying ESO $version CRDs from $crds"
  apply_crds "$crds"
  wait_for "ESO $version CRDs (Established)" "" crds_established "$crds"
  local -a args=(--metrics-addr="127.0.0.1:$(free_port)" --enable-leader-election=false
                 --loglevel=info --zap-time-encoding=iso8601)
  if "$dir/external-secrets" --help 2>&1 | grep -q -- --live-addr; then
    args+=(--live-addr="127.0.0.1:$(free_port)")
  fi
  : >"$LOGS/eso.log"
  start eso "KUBECONFIG=$CLUSTER_DIR/admin.kubeconfig" -- "$dir/external-secrets" "${args[@]}"
  echo "$version" >"$CLUSTER_DIR/eso-version"
  # A fresh store object, so that Ready is this controller's verdict and not the last one's.
  kc delete clustersecretstore vault-backend --ignore-not-found --wait=true >/dev/null
  kc apply -f "$CLUSTER_DIR/clustersecretstore.yaml" >/dev/null
  wait_for "ESO $version's ClusterSecretStore vault-backend (Ready)" eso css_ready
  say "ESO $version running; ClusterSecretStore vault-backend Ready"
}
