#!/usr/bin/env bash
# Switch the running ESO of a cluster started by cluster/up.sh to another built release:
# stop the running controller, apply the other release's CRDs, start it, recreate the
# ClusterSecretStore vault-backend and wait until it is Ready; updates ESO_VERSION in .cluster/env.
#   cluster/eso.sh v0.16.2
. "$(dirname "$0")/lib.sh"

version=${1:?usage: cluster/eso.sh VERSION (one of: $ESO_RELEASES)}
[[ -f $CLUSTER_DIR/env ]] || die "no cluster running ($CLUSTER_DIR/env missing): run cluster/up.sh"
current=$(cat "$CLUSTER_DIR/eso-version" 2>/dev/null || true)
if [[ $current == "$version" ]] && alive eso && css_ready; then
  say "ESO $version already running"
  exit 0
fi
"$CLUSTER_SRC/build.sh" "$(eso_component "$version")" >&2 || die "cluster/build.sh failed for ESO $version"
stop eso
start_eso "$version"
sed -i "s/^ESO_VERSION=.*/ESO_VERSION=$version/" "$CLUSTER_DIR/env"
