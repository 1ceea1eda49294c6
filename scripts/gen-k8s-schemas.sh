#!/bin/sh
# Generates schemas/kubernetes/v1.MINOR.json, the OpenAPI schemas of the built-in kinds that
# `kubeprint check --hydrate` holds hydrated objects against, from k8s-openapi 0.29.0's
# `schemars` impls (one build of xtask/k8s-schemas per Kubernetes minor).
#
#   scripts/gen-k8s-schemas.sh          regenerate the files
#   scripts/gen-k8s-schemas.sh --check  regenerate into a temporary directory and fail
#                                       unless the committed files are byte-identical
#
# Needs cargo and k8s-openapi 0.29.0 in the cargo registry (crates.io).
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
check=${1:-}
out=schemas/kubernetes
if [ "$check" = "--check" ]; then
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
fi
manifest=xtask/k8s-schemas/Cargo.toml
target=${CARGO_TARGET_DIR:-$root/target}/k8s-schemas
src=$(cargo metadata --manifest-path "$manifest" --format-version 1 --offline 2>/dev/null |
    sed 's/.*"manifest_path":"\([^"]*k8s-openapi-0\.29\.0\/Cargo\.toml\)".*/\1/' | sed 's|/Cargo.toml$||')
[ -d "$src/src" ] || { echo "k8s-openapi 0.29.0 not found in the cargo registry" >&2; exit 3; }
for minor in 33 34 35 36 37; do
    kinds="$target/kinds-1.$minor.rs"
    mkdir -p "$target"
    # Every type that implements Resource, but the meta/v1 discovery types.
    { echo "kind!("
      ( cd "$src/src/v1_$minor" && grep -rl "impl crate::Resource for" . | sort ) | while read -r f; do
          case "$f" in ./apimachinery/*) continue ;; esac
          mod=$(dirname "${f#./}" | sed 's|/|::|g')
          grep -h "^impl crate::Resource for" "$src/src/v1_$minor/$f" |
              sed "s/^impl crate::Resource for \([A-Za-z0-9_]*\) {/    k8s_openapi::$mod::\1,/"
      done
      echo ")"; } > "$kinds"
    K8S_OPENAPI_ENABLED_VERSION="1.$minor" K8S_KINDS_RS="$kinds" CARGO_TARGET_DIR="$target/build" \
        cargo run --quiet --offline --manifest-path "$manifest" > "$out/v1.$minor.json"
done
if [ "$check" = "--check" ]; then
    for f in "$out"/*.json schemas/kubernetes/*.json; do
        name=$(basename "$f")
        cmp -s "$out/$name" "schemas/kubernetes/$name" || {
            echo "schemas/kubernetes/$name differs from what scripts/gen-k8s-schemas.sh generates" >&2
            exit 1
        }
    done
    echo "schemas/kubernetes is what scripts/gen-k8s-schemas.sh generates"
fi
