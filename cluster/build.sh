#!/usr/bin/env bash
# Build the control plane's Go components from their modules at the pins in cluster/versions.env.
#   cluster/build.sh                 build every component (cached ones are reused)
#   cluster/build.sh NAME...         build those: kubernetes eso-v0 eso-current eso-v1 flux-source flux-kustomize kustomize
#   cluster/build.sh --print-dir NAME   print where NAME's binaries are (or would be), build nothing
# Outputs: ${SECRET_CONTRACT_CACHE:-$HOME/.cache/secret-contract}/cluster/{bin,gomod,gocache,work,logs}.
# A component whose build fails is reported; the others still build; the exit status is 1 if a
# required component failed. eso-v1 (ESO v1.3.2) is only built when named: it cannot be built from
# the proxy today (see docs/cluster.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
cache="${SECRET_CONTRACT_CACHE:-$HOME/.cache/secret-contract}/cluster"
mkdir -p "$cache/logs"
py=$(command -v python3)

mod() { echo "${1%@*}"; }
ver() { echo "${1#*@}"; }

args() {  # the build.py arguments of one component, one per line
  local m v
  case "$1" in
    kubernetes)
      v=$(ver "$KUBERNETES")
      local major=${v#v}; major=${major%%.*}; local minor=${v#v*.}; minor=${minor%%.*}
      local x="" p
      for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        x+=" -X $p.gitVersion=$v -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
      done
      printf '%s\n' --name=kubernetes "--module=$(mod "$KUBERNETES")" "--version=$v" \
        "--local-default=$KUBERNETES_STAGING" \
        --pkg=k8s.io/kubernetes/cmd/kube-apiserver --pkg=k8s.io/kubernetes/cmd/kube-controller-manager --pkg=k8s.io/kubernetes/cmd/kubectl \
        "--ldflags=${x# }" ;;
    eso-v0|eso-current|eso-v1|flux-source|flux-kustomize|kustomize)
      case "$1" in
        eso-v0) m=$ESO_V0 ;;
        eso-current) m=$ESO_CURRENT ;;
        eso-v1) m=$ESO_V1 ;;
        flux-source) m=$FLUX_SOURCE_CONTROLLER ;;
        flux-kustomize) m=$FLUX_KUSTOMIZE_CONTROLLER ;;
        kustomize) m=$KUSTOMIZE ;;
      esac
      local name=$1
      case "$1" in eso-*) name=eso ;; flux-source) name=source-controller ;; flux-kustomize) name=kustomize-controller ;; esac
      printf '%s\n' "--name=$name" "--module=$(mod "$m")" "--version=$(ver "$m")" "--pkg=$(mod "$m")"
      # ESO 1.x: providers chosen by build tags; untagged in-repo submodules at the release commit.
      [[ $1 != eso-v1 ]] || printf '%s\n' --tags=vault "--local-default=$ESO_V1_SUBMODULES" ;;
    *) echo "build.sh: unknown component $1" >&2; return 2 ;;
  esac
}

run_build() {  # NAME [--print-dir]
  local -a argv
  mapfile -t argv < <(args "$1")
  [[ ${#argv[@]} -gt 0 ]] || return 2
  "$py" "$here/build.py" "${argv[@]}" "${@:2}"
}

if [[ ${1:-} == --print-dir ]]; then
  run_build "$2" --print-dir
  exit 0
fi

components=("$@")
[[ ${#components[@]} -gt 0 ]] || components=(kubernetes eso-v0 eso-current flux-source flux-kustomize kustomize)
failed_required=0
for c in "${components[@]}"; do
  log="$cache/logs/build-$c.log"
  start=$(date +%s)
  echo "build.sh: building $c (log: $log)"
  if run_build "$c" >"$log.out" 2>"$log"; then
    echo "build.sh: $c ready in $(cat "$log.out") after $(( $(date +%s) - start ))s"
  else
    echo "build.sh: $c FAILED after $(( $(date +%s) - start ))s; last lines of $log:" >&2
    grep -v '^go: downloading' "$log" | tail -n 8 >&2
    [[ $c == eso-v1 ]] || failed_required=1
  fi
done
exit "$failed_required"
