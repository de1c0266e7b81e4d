#!/usr/bin/env bash
# Stop exactly the processes cluster/up.sh started (PIDs recorded in .cluster/pids), newest first,
# and say what was stopped. Idempotent: with nothing running it says so and exits 0.
# KEEP_STATE=1 keeps .cluster (logs, certificates) for a look afterwards; default: removed.
. "$(dirname "$0")/lib.sh"

if ! compgen -G "$PIDS/*.pid" >/dev/null; then
  say "nothing running (no PIDs recorded in $PIDS)"
else
  for n in kustomize-controller source-controller eso registry openbao kube-controller-manager kube-apiserver etcd; do
    [[ -f $PIDS/$n.pid ]] && stop "$n"
  done
  for f in "$PIDS"/*.pid; do  # anything else recorded
    [[ -e $f ]] && stop "$(basename "$f" .pid)"
  done
fi
if [[ -d $CLUSTER_DIR && ${KEEP_STATE:-0} != 1 ]]; then
  rm -rf "$CLUSTER_DIR"
  say "removed $CLUSTER_DIR"
fi
