#!/usr/bin/env bash
# Prove that an image built from deploy/Dockerfile works:
#   deploy/check-image.sh TAG
# Inside the image, under the environment deploy/helm/values.yaml gives a run or step pod, it runs
# deploy/check-in-image.sh: the Python version, the step environment (VITCOW_HOME, executor k8s),
# `dagster definitions validate -m vitcow_assets.definitions`, the chart's gRPC server command
# with its readiness probe, `vitcow --help`, SAM3's imports, and the motion backend on
# samples/vtest_sample.mp4 (2 clips) writing crop videos under VITCOW_HOME; in the GPU image
# (torch with CUDA) also Triton's launcher build step, SAM3's Triton kernels, SAM3's tests at test
# size and the full-size smoke (benchmarks/sam3_smoke.py on that clip: run it under
# `flock /tmp/vitcow-heavy.lock`, it needs about 8 GB of memory). It first prints what the Helm
# values are checked against:
#   verified image: TAG (ID, SIZE bytes)
#   verified cmd: the image's command
#   verified env: NAME=VALUE   (the image's own environment)
# The image itself is never changed: the checks run in a throwaway container, into which the
# repository's tests, test bed and benchmarks (and, for the GPU image's tests, pytest) are copied.
# Exit status: 0 when every check passed; 1 when one failed; 2 for bad usage or no engine.
#
# Engine: buildah (`buildah from` + `buildah run --isolation chroot`, which works as root where
# `podman run` cannot set rlimits and cgroups), else docker.
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -eq 1 ] || { echo "usage: deploy/check-image.sh TAG" >&2; exit 2; }
tag=$1
values=deploy/helm/values.yaml
clip=samples/vtest_sample.mp4
for file in "$values" "$clip" deploy/check-in-image.sh pyproject.toml; do
  [ -f "$file" ] || { echo "check-image: $file is missing" >&2; exit 2; }
done
# pip inside the container (pytest, GPU image only) trusts what this machine's pip trusts
ca=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}

inspect() {  # FORMAT: a Go template over the image's inspect data
  if command -v podman > /dev/null 2>&1; then podman image inspect --format "$1" "$tag"; else docker image inspect --format "$1" "$tag"; fi
}

if command -v buildah > /dev/null 2>&1; then
  buildah inspect --type image "$tag" > /dev/null 2>&1 || { echo "check-image: no image $tag (build it with deploy/build-image.sh)" >&2; exit 2; }
elif command -v docker > /dev/null 2>&1 && docker info > /dev/null 2>&1; then
  docker image inspect "$tag" > /dev/null 2>&1 || { echo "check-image: no image $tag (build it with deploy/build-image.sh)" >&2; exit 2; }
else
  echo "check-image: neither buildah nor a reachable docker daemon" >&2
  exit 2
fi

echo "verified image: $tag ($(inspect '{{.Id}}' | cut -c1-12), $(inspect '{{.Size}}') bytes)"
echo "verified cmd: $(inspect '{{join .Config.Cmd " "}}')"
inspect '{{range .Config.Env}}{{println .}}{{end}}' | grep -E '^(VITCOW_|DAGSTER_HOME=)' | sed 's/^/verified env: /'

if command -v buildah > /dev/null 2>&1; then
  container=$(buildah from --pull-never "$tag")
  trap 'buildah rm "$container" > /dev/null' EXIT
  buildah copy "$container" deploy/check-in-image.sh /tmp/check/check-in-image.sh > /dev/null
  buildah copy "$container" "$values" /tmp/check/values.yaml > /dev/null
  buildah copy "$container" "$clip" /tmp/check/vtest_sample.mp4 > /dev/null
  for part in pyproject.toml benchmarks vitcow_assets_tests vitcow_testbed; do
    buildah copy "$container" "$part" "/tmp/check/repo/$part" > /dev/null
  done
  pip_cert=()
  if [ -f "$ca" ]; then buildah copy "$container" "$ca" /tmp/check/pip-ca.crt > /dev/null; pip_cert=(--env PIP_CERT=/tmp/check/pip-ca.crt); fi
  buildah run --isolation chroot "${pip_cert[@]}" "$container" -- \
    bash /tmp/check/check-in-image.sh /tmp/check/values.yaml /tmp/check/vtest_sample.mp4 /tmp/check/repo
else
  docker_ca=()
  if [ -f "$ca" ]; then docker_ca=(-v "$ca:/tmp/check/pip-ca.crt:ro" -e PIP_CERT=/tmp/check/pip-ca.crt); fi
  docker run --rm \
    -v "$PWD/deploy/check-in-image.sh:/tmp/check/check-in-image.sh:ro" \
    -v "$PWD/$values:/tmp/check/values.yaml:ro" \
    -v "$PWD/$clip:/tmp/check/vtest_sample.mp4:ro" \
    -v "$PWD/pyproject.toml:/tmp/check/repo/pyproject.toml:ro" \
    -v "$PWD/benchmarks:/tmp/check/repo/benchmarks:ro" \
    -v "$PWD/vitcow_assets_tests:/tmp/check/repo/vitcow_assets_tests:ro" \
    -v "$PWD/vitcow_testbed:/tmp/check/repo/vitcow_testbed:ro" \
    "${docker_ca[@]}" \
    "$tag" bash /tmp/check/check-in-image.sh /tmp/check/values.yaml /tmp/check/vtest_sample.mp4 /tmp/check/repo
fi
