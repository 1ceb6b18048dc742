#!/usr/bin/env bash
# Build the code location's image from deploy/Dockerfile with podman, or docker where podman is
# absent and a docker daemon answers:
#   deploy/build-image.sh [--torch cuda|cpu] [--base IMAGE] [--make-base] [--no-cache] [TAG]
#
#   TAG          default localhost/vitcow-assets:<version in pyproject.toml>, with -cpu appended for
#                --torch cpu
#   --torch      cuda (default): the GPU image, which GPU nodes run: torch as pinned in
#                constraints.txt from PyPI (CUDA wheels) on Python 3.13 (Debian trixie), with a C
#                compiler and the Python headers, which Triton needs at run time to build its
#                launcher (SAM3's mask NMS and hole filling run Triton kernels on CUDA);
#                cpu: the CPU image (what CI builds and checks), Python 3.11 (Debian bookworm) with
#                the CPU build of that torch, only from the wheel in $WHEELS_DIR (default
#                /opt/wheels), linked into deploy/wheels/ for the build; the build fails rather
#                than download torch from anywhere else
#   --base       the base image (default: the public python image of that Python, see below)
#   --make-base  with no --base: make $LOCAL_BASE from Debian's packages with mmdebstrap when it
#                does not exist yet, and build on it: localhost/vitcow-base:trixie for cuda
#                (python3 3.13, venv, python3-dev, gcc), localhost/vitcow-base:bookworm for cpu
#                (python3 3.11, venv)
#   --no-cache   rebuild every layer
# Without --base or --make-base it uses the public base (python:3.13-slim-trixie for cuda,
# python:3.11-slim for cpu) when that image can be pulled (or is present), else $LOCAL_BASE when
# it exists, else it stops and says to add --make-base. On a public base the GPU image's build
# installs gcc with apt (the python images carry the headers, not a compiler).
# Prints the build time and the image size last:  image TAG: SIZE bytes, built in N s
# Exit status: 0 built; 2 bad usage, no engine or no base; 3 the CPU torch wheel is missing;
# otherwise the engine's.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS_DIR=${WHEELS_DIR:-/opt/wheels}
torch=cuda base="" make_base="" no_cache=() tag=""
while [ $# -gt 0 ]; do
  case $1 in
    --torch) torch=${2:-}; shift 2 ;;
    --base) base=${2:-}; shift 2 ;;
    --make-base) make_base=yes; shift ;;
    --no-cache) no_cache=(--no-cache); shift ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    -*) echo "build-image: unknown option $1" >&2; exit 2 ;;
    *) [ -z "$tag" ] || { echo "build-image: one TAG only" >&2; exit 2; }; tag=$1; shift ;;
  esac
done
[ "$torch" = cuda ] || [ "$torch" = cpu ] || { echo "build-image: --torch takes cuda or cpu, not '$torch'" >&2; exit 2; }
version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n 1)
# per torch build: the Debian suite of the local base (its python3), the packages mmdebstrap puts
# in it, the public base, the default tag, and whether the image needs a C compiler at run time
if [ "$torch" = cuda ]; then
  suite=trixie public_base=docker.io/library/python:3.13-slim-trixie tag=${tag:-localhost/vitcow-assets:$version}
  base_packages=python3,python3-venv,python3-dev,gcc,libc6-dev,ca-certificates runtime_compiler=yes
else
  suite=bookworm public_base=docker.io/library/python:3.11-slim tag=${tag:-localhost/vitcow-assets:$version-cpu}
  base_packages=python3,python3-venv,ca-certificates runtime_compiler=no
fi
LOCAL_BASE=${LOCAL_BASE:-localhost/vitcow-base:$suite}

pin=$(sed -n 's/^torch==\([^ ]*\).*/\1/p' constraints.txt | head -n 1)
[ -n "$pin" ] || { echo "build-image: constraints.txt pins no torch version" >&2; exit 2; }
requirement="torch==$pin"
linked=() work=""
cleanup() { [ ${#linked[@]} -eq 0 ] || rm -f "${linked[@]}"; [ -z "$work" ] || rm -rf "$work"; }
trap cleanup EXIT
if [ "$torch" = cpu ]; then
  requirement="torch==$pin+cpu"
  wheels=("$WHEELS_DIR"/torch-"$pin"+cpu-cp311-cp311-*.whl)
  if [ ! -f "${wheels[0]}" ]; then
    echo "build-image: the CPU torch wheel torch-$pin+cpu-cp311-cp311-*.whl is not in $WHEELS_DIR (set WHEELS_DIR); a CPU build never downloads torch" >&2
    exit 3
  fi
  for wheel in "${wheels[@]}"; do  # a hard link where it can, else a copy renamed when complete
    target=deploy/wheels/$(basename "$wheel")
    [ ! -e "$target" ] || continue
    linked+=("$target")
    ln "$wheel" "$target" 2> /dev/null || { cp "$wheel" "$target.tmp-$$" && mv "$target.tmp-$$" "$target"; }
  done
fi

if command -v podman > /dev/null 2>&1; then
  engine=(podman)
  build=(podman build --isolation chroot --network host --layers)
elif command -v docker > /dev/null 2>&1 && docker info > /dev/null 2>&1; then
  engine=(docker)
  build=(env DOCKER_BUILDKIT=1 docker build --network host)
else
  echo "build-image: neither podman nor a reachable docker daemon (apt-get install podman buildah)" >&2
  exit 2
fi
has_image() { "${engine[@]}" image inspect "$1" > /dev/null 2>&1; }

make_local_base() {  # a Debian root file system of $suite (with its updates and security updates) holding $base_packages
  command -v mmdebstrap > /dev/null 2>&1 || { echo "build-image: --make-base needs mmdebstrap (apt-get install mmdebstrap)" >&2; exit 2; }
  work=$(mktemp -d)
  echo "build-image: making $LOCAL_BASE with mmdebstrap" >&2
  mmdebstrap --quiet --variant=minbase --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --include="$base_packages" "$suite" "$work/rootfs.tar" \
    "deb http://deb.debian.org/debian $suite main" \
    "deb http://deb.debian.org/debian $suite-updates main" \
    "deb http://deb.debian.org/debian-security $suite-security main"
  "${engine[@]}" import --change 'CMD ["/bin/bash"]' "$work/rootfs.tar" "$LOCAL_BASE" > /dev/null
  rm -rf "$work"
  work=""
}

if [ -z "$base" ]; then
  if [ -n "$make_base" ]; then
    has_image "$LOCAL_BASE" || make_local_base
    base=$LOCAL_BASE
  elif has_image "$public_base" || timeout 120 "${engine[@]}" pull -q "$public_base" > /dev/null 2>&1; then
    base=$public_base
  elif has_image "$LOCAL_BASE"; then
    echo "build-image: $public_base cannot be pulled; building on the local $LOCAL_BASE" >&2
    base=$LOCAL_BASE
  else
    echo "build-image: $public_base cannot be pulled and $LOCAL_BASE does not exist: add --make-base (or --base IMAGE)" >&2
    exit 2
  fi
fi

# where a TLS-inspecting proxy stands between this machine and PyPI, pip inside the build needs
# the CA bundle this machine trusts (PIP_CERT, else the system bundle): handed in as a build secret
secret=()
ca=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
if [ -f "$ca" ]; then secret=(--secret "id=pip-ca,src=$ca"); fi

echo "build-image: $tag from $base, $requirement, with ${engine[0]}" >&2
start=$(date +%s)
"${build[@]}" "${no_cache[@]}" -f deploy/Dockerfile -t "$tag" \
  --build-arg BASE_IMAGE="$base" \
  --build-arg TORCH_REQUIREMENT="$requirement" \
  --build-arg RUNTIME_COMPILER="$runtime_compiler" \
  --build-arg VCS_REF="$(git rev-parse --short=12 HEAD 2> /dev/null || echo unknown)" \
  "${secret[@]}" \
  .
seconds=$(( $(date +%s) - start ))
echo "image $tag: $("${engine[@]}" image inspect --format '{{.Size}}' "$tag") bytes, built in $seconds s"
