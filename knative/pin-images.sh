#!/usr/bin/env bash
# Pin the prod overlay's images to the digests the CI images job pushed, so that what is
# deployed is exactly what was built and tested (a tag can be moved, a digest cannot):
#
#   knative/pin-images.sh DIGESTS_DIR REGISTRY
#
# DIGESTS_DIR holds one file per deployed image, named presign, process, query, notify,
# gateway and web, each containing that image's digest (sha256:<64 hex>, docker/build-push-action's
# `digest` output). REGISTRY is where the images were pushed, e.g. ghcr.io/OWNER.
#
# For each image it runs, in knative/overlays/prod,
#   kustomize edit set image ghcr.io/filepipe/filepipe-NAME=REGISTRY/filepipe-NAME@DIGEST
# The name on the left is the one the images carry once the base has renamed them: the
# overlay's `images` transformer runs on the base's output, where the base's own placeholder
# names (filepipe-NAME) no longer exist, so an entry naming those would match nothing.
set -euo pipefail

usage="usage: knative/pin-images.sh DIGESTS_DIR REGISTRY"
digests=${1:?$usage}
registry=${2:?$usage}
overlay="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/overlays/prod"

for name in presign process query notify gateway web; do
  digest=$(tr -d '[:space:]' < "$digests/$name")
  if [[ ! $digest =~ ^sha256:[0-9a-f]{64}$ ]]; then
    echo "pin-images: $digests/$name holds no sha256 digest: '$digest'" >&2
    exit 1
  fi
  (cd "$overlay" && kustomize edit set image \
    "ghcr.io/filepipe/filepipe-$name=$registry/filepipe-$name@$digest")
done
