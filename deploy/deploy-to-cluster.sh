#!/usr/bin/env bash
# deploy-to-cluster.sh — deploy Aetherius to one cluster from the plain manifests.
#
#   deploy/deploy-to-cluster.sh [--dry-run] <cluster-id> [kubeconfig]
#
# Steps: namespace, RBAC, ConfigMap with the cluster id, the database/Redis Secret (only when
# AETHERIUS_DATABASE_URL is set in your environment), workloads, rollout wait, verification.
# --dry-run prints every kubectl command and the manifests it would apply, and touches nothing.
# Secret values are never printed.
set -euo pipefail

NAMESPACE=aetherius-system
SECRET_NAME=aetherius-secrets
MANIFESTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/manifests"
DEPLOYMENTS=(aetherius-event-watcher aetherius-orchestrator aetherius-api)

usage() {
    echo "Usage: $0 [--dry-run] <cluster-id> [kubeconfig]" >&2
    exit 2
}

DRY_RUN=0
if [ "${1:-}" = "--dry-run" ]; then
    DRY_RUN=1
    shift
fi
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    usage
fi

CLUSTER_ID=$1
KUBECONFIG_PATH=${2:-${KUBECONFIG:-${HOME:-}/.kube/config}}

# The id goes into YAML and labels: a DNS-1123 label (lower-case letters, digits, '-', at most 63
# characters, starting and ending alphanumeric). Anything else is refused before any command runs,
# which also makes the sed substitution below safe (no sed or YAML metacharacter can get through).
if ! [[ $CLUSTER_ID =~ ^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$ ]]; then
    echo "error: invalid cluster id: it must be a DNS-1123 label (a-z, 0-9, '-', 1-63 characters, alphanumeric at both ends)" >&2
    exit 2
fi

log() { printf '=== %s\n' "$*"; }

# kube <args…>: run kubectl against the chosen cluster, or print the command in dry-run mode.
kube() {
    if [ "$DRY_RUN" = 1 ]; then
        printf '+ kubectl --kubeconfig=%q' "$KUBECONFIG_PATH"
        printf ' %q' "$@"
        printf '\n'
        return 0
    fi
    kubectl --kubeconfig="$KUBECONFIG_PATH" "$@"
}

# apply_stdin <description>: apply the manifest on stdin (printed in full in dry-run mode).
apply_stdin() {
    if [ "$DRY_RUN" = 1 ]; then
        printf '+ kubectl --kubeconfig=%q apply -f - <<%s\n' "$KUBECONFIG_PATH" "$1"
        cat
        printf '%s\n' "$1"
        return 0
    fi
    kubectl --kubeconfig="$KUBECONFIG_PATH" apply -f -
}

apply_file() {
    kube apply -f "$MANIFESTS/$1"
}

if [ "$DRY_RUN" = 0 ]; then
    command -v kubectl >/dev/null || { echo "error: kubectl not found" >&2; exit 1; }
    [ -r "$KUBECONFIG_PATH" ] || { echo "error: cannot read kubeconfig $KUBECONFIG_PATH" >&2; exit 1; }
fi

if [ "$DRY_RUN" = 1 ]; then
    log "Deploying Aetherius to cluster: $CLUSTER_ID (dry run: nothing is changed)"
else
    log "Deploying Aetherius to cluster: $CLUSTER_ID"
fi

# 1. Namespace (Pod Security Admission: restricted).
apply_file 01-namespace.yaml

# 2. RBAC: read-only, one ServiceAccount per role.
apply_file 02-serviceaccount.yaml
apply_file 03-clusterrole.yaml
apply_file 04-clusterrolebinding.yaml

# 3. ConfigMap with the cluster id. The id was validated above, so this substitution is exact.
template_line='  cluster_id: ""'
if [ "$(grep -c -x -F "$template_line" "$MANIFESTS/05-configmap.yaml")" != 1 ]; then
    echo "error: $MANIFESTS/05-configmap.yaml has no single '$template_line' line to fill in" >&2
    exit 1
fi
sed "s/^  cluster_id: \"\"\$/  cluster_id: \"$CLUSTER_ID\"/" "$MANIFESTS/05-configmap.yaml" | apply_stdin CONFIGMAP

# 4. The database and Redis URLs, as a Secret, when given in the environment. Aetherius never
#    reads Secrets itself: the kubelet puts the values into the orchestrator's and API's env.
if [ -n "${AETHERIUS_DATABASE_URL:-}" ]; then
    if [ "$DRY_RUN" = 1 ]; then
        echo "+ kubectl --kubeconfig=$KUBECONFIG_PATH -n $NAMESPACE create secret generic $SECRET_NAME --from-file=<database-url, redis-url: values not shown> --dry-run=client -o yaml | kubectl apply -f -"
    else
        secret_dir=$(mktemp -d)
        trap 'rm -rf "$secret_dir"' EXIT
        chmod 700 "$secret_dir"
        printf '%s' "$AETHERIUS_DATABASE_URL" > "$secret_dir/database-url"
        if [ -n "${AETHERIUS_REDIS_URL:-}" ]; then
            printf '%s' "$AETHERIUS_REDIS_URL" > "$secret_dir/redis-url"
        fi
        kubectl --kubeconfig="$KUBECONFIG_PATH" -n "$NAMESPACE" create secret generic "$SECRET_NAME" \
            --from-file="$secret_dir" --dry-run=client -o yaml | kubectl --kubeconfig="$KUBECONFIG_PATH" apply -f - >/dev/null
        rm -rf "$secret_dir"
        echo "secret/$SECRET_NAME configured"
    fi
else
    echo "note: AETHERIUS_DATABASE_URL is not set; the orchestrator and API need Secret $SECRET_NAME (key database-url) in $NAMESPACE"
fi

# 5. Workloads, Services, NetworkPolicies.
apply_file 06-deployment.yaml
apply_file 07-service.yaml
apply_file 09-networkpolicy.yaml
apply_file 10-orchestrator-deployment.yaml
apply_file 11-orchestrator-service.yaml
apply_file 12-api-deployment.yaml
apply_file 13-api-service.yaml

# The ServiceMonitor needs the Prometheus Operator's CRD.
if [ "$DRY_RUN" = 1 ]; then
    echo "+ (only if CRD servicemonitors.monitoring.coreos.com exists)"
    apply_file 08-servicemonitor.yaml
elif kube get crd servicemonitors.monitoring.coreos.com >/dev/null 2>&1; then
    apply_file 08-servicemonitor.yaml
else
    echo "note: no ServiceMonitor CRD (Prometheus Operator) in this cluster; skipped 08-servicemonitor.yaml"
fi

# 6. Wait for the rollouts.
log "Waiting for the deployments to be ready..."
for deployment in "${DEPLOYMENTS[@]}"; do
    kube -n "$NAMESPACE" rollout status "deployment/$deployment" --timeout=5m
done

# 7. Verify: the pods, and that the watcher may read but not write and sees no Secret.
log "Verifying..."
kube -n "$NAMESPACE" get pods -l app.kubernetes.io/part-of=aetherius
watcher="system:serviceaccount:$NAMESPACE:aetherius-event-watcher"
if [ "$DRY_RUN" = 1 ]; then
    kube auth can-i list pods "--as=$watcher"
    kube auth can-i delete pods "--as=$watcher"
    kube auth can-i get secrets "--as=$watcher"
else
    [ "$(kube auth can-i list pods "--as=$watcher" || true)" = yes ] \
        || { echo "error: the event watcher cannot list pods: check 03/04 RBAC" >&2; exit 1; }
    for forbidden in "delete pods" "get secrets" "create events"; do
        # shellcheck disable=SC2086  # the verb and resource are two words on purpose
        if [ "$(kube auth can-i $forbidden "--as=$watcher" || true)" = yes ]; then
            echo "error: the event watcher may '$forbidden': it must be read-only" >&2
            exit 1
        fi
    done
fi

log "Deployment completed"
echo "Check logs: kubectl -n $NAMESPACE logs -l app.kubernetes.io/component=event-watcher"
echo "Troubleshooting: docs/troubleshooting.md"
