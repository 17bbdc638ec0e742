#!/usr/bin/env bash
# Makes the base image the container tests build on, without a registry: Debian 12
# (minbase) with Python 3, venv and pip, as the official python:3.11-slim-bookworm
# image has them, made by mmdebstrap and imported into the local image store under the
# official names (python:3.11-slim-bookworm for pyfunc's images, python:3.11.7-slim for
# the Dockerfile MLflow writes for a model saved with Python 3.11.7). The machine's own
# certificate authorities go into the image too, as into an organisation's base image, so
# that pip and uv in a build reach the package index this machine reaches.
#
# The root filesystem is cached (by this script's content) in $PYFUNC_IMAGE_CACHE
# (default ~/.cache/pyfunc-test-images): a second run only re-imports it when the store
# has lost it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${PYFUNC_IMAGE_CACHE:-$HOME/.cache/pyfunc-test-images}
mkdir -p "$cache"
key=$( (cat "$0"; ls /usr/local/share/ca-certificates/ 2>/dev/null) | sha256sum | cut -c1-16)
rootfs=$cache/bookworm-python-$key.tar
names=(docker.io/library/python:3.11-slim-bookworm docker.io/library/python:3.11.7-slim)

if [[ ! -s $rootfs ]]; then
  echo "make-base: building the Debian 12 root filesystem ($rootfs)"
  ca_hook='true'
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    ca_hook='cp /usr/local/share/ca-certificates/*.crt "$1"/usr/local/share/ca-certificates/ && chroot "$1" update-ca-certificates >/dev/null'
  fi
  mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates,passwd \
    --customize-hook='chroot "$1" ln -sf /usr/bin/python3 /usr/bin/python' \
    --customize-hook='rm -f "$1"/usr/lib/python3.*/EXTERNALLY-MANAGED' \
    --customize-hook="$ca_hook" \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    bookworm "${rootfs%.tar}.partial.tar" 2>&1 | grep -v '^rehash: warning' || true
  mv "${rootfs%.tar}.partial.tar" "$rootfs"
fi

id=$(podman image inspect --format '{{.Labels}}' "${names[0]}" 2>/dev/null || true)
if [[ $id != *"$key"* ]]; then
  echo "make-base: importing it as ${names[*]}"
  bundle=/etc/ssl/certs/ca-certificates.crt
  podman import --quiet \
    --change "ENV SSL_CERT_FILE=$bundle" --change "ENV PIP_CERT=$bundle" --change "ENV REQUESTS_CA_BUNDLE=$bundle" \
    --change "LABEL pyfunc.test.base=$key" "$rootfs" "${names[0]}" >/dev/null
  for n in "${names[@]:1}"; do podman tag "${names[0]}" "$n"; done
fi
echo "make-base: ${names[*]} ready"
