#!/usr/bin/env bash
# Debian packages that build and run the service images without a container daemon or a registry
# (crm_devstack.images), installed only when missing (idempotent):
#   mmdebstrap  the base image from Debian's own packages
#   podman      imports the base and builds each Dockerfile (chroot isolation: no daemon, no runtime)
#   bubblewrap  runs an image's filesystem (the OCI runtimes cannot start a container here)
# As root this installs with apt-get; as another user it names what to install and fails.
set -euo pipefail

missing=()
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "image-tools: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "image-tools: missing ${missing[*]}; install them as root: apt-get install ${missing[*]}" >&2
  exit 1
fi
