#!/usr/bin/env bash
# deploy/kubernetes/validate.sh — check the manifests in this directory against the
# Kubernetes API schemas with kubeconform, with no network but the Go module proxy:
#   - the API's OpenAPI specification comes from the k8s.io/kubernetes module
#     (api/openapi-spec/swagger.json of that release);
#   - schemagen (beside this script) turns it into kubeconform's per-kind schema files,
#     strict: unknown fields are refused;
#   - kubeconform itself runs from its module.
# Then it proves the check can fail: copies of the Deployment with an unknown field, a wrong
# type and a missing required field must each be refused. Run by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/../.."

K8S_VERSION=${K8S_VERSION:-v1.34.2}
KUBECONFORM=${KUBECONFORM:-github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0}

dir=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
spec="$dir/api/openapi-spec/swagger.json"
if [ ! -f "$spec" ]; then
  echo "validate.sh: no OpenAPI specification at $spec" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go run ./deploy/kubernetes/schemagen -spec "$spec" -out "$work/schemas"
GOBIN="$work" go install "$KUBECONFORM"
kc() { "$work/kubeconform" -strict -summary -schema-location "$work/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json" "$@"; }

echo "-- deploy/kubernetes (Kubernetes $K8S_VERSION)"
kc deploy/kubernetes/*.yaml

echo "-- broken copies must be refused"
broken() { # name, sed expression applied to deployment.yaml
  sed "$2" deploy/kubernetes/deployment.yaml >"$work/$1.yaml"
  if cmp -s deploy/kubernetes/deployment.yaml "$work/$1.yaml"; then
    echo "validate.sh: the '$1' edit changed nothing" >&2; exit 1
  fi
  if kc "$work/$1.yaml" >"$work/$1.out" 2>&1; then
    cat "$work/$1.out"; echo "validate.sh: a Deployment with $1 passed the check" >&2; exit 1
  fi
  echo "refused as expected: $1"
}
broken "an unknown field" 's/^\(          imagePullPolicy: IfNotPresent\)$/\1\n          imagePullPolicyy: Always/'
broken "a wrong type" 's/containerPort: 8080/containerPort: "eighty"/'
broken "a missing required field" '/^        - name: reactord$/s/- name: reactord/- stdin: false/'
