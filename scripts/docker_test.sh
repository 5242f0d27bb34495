#!/usr/bin/env bash
# docker_test.sh: builds the repository's Dockerfile with podman on a local
# Debian 12 base image (a CPU-only image: no registry is needed, none is
# asked) and runs the demo in it as the image's non-root user, with /data and
# /runs bind-mounted from the host: version, synth, a short train, eval. Then
# it checks the files on the host, ownership included, and prints the mAP and
# the time of each stage. docs/DOCKER.md says what this does and does not
# prove (not the CUDA runtime image, not the GPU). From the repository root,
# as root (rootful podman; debootstrap needs root too):
#
#   bash scripts/docker_test.sh
#
# Stages:
#  1. base: the image $BASE (localhost/debian:12) is made when it is missing:
#     debootstrap --variant=minbase bookworm from the Debian mirror apt uses
#     here, with the apt sources of Docker Hub's debian:12 (bookworm,
#     bookworm-updates, bookworm-security), then podman import.
#  2. build: podman build of the Dockerfile (the time of each step printed), both stages FROM $BASE, with
#     OPENCV_T64= (Debian 12's package names) and CUDA_LIBS= (no CUDA in the
#     base), GOPROXY without ",direct", and the host's CA bundle as the build
#     secret ca-certificates (this machine's HTTPS goes through a
#     TLS-intercepting proxy). The context is the working tree, or `git archive
#     $DOCKER_TEST_REF` when that is set (the build then matches a commit).
#  3. run: fresh $WORK/data and $WORK/runs owned by $RUN_UID:$RUN_GID (the
#     image's user is built with those ids), each command a new container
#     (--network none): version, id, synth, train, eval, and the same
#     train under mpirun -np 2 (TCP over the loopback).
#  4. check on the host: the data set's files, the run's files, every file
#     and folder under both owned by $RUN_UID:$RUN_GID, the mAP printed.
#
# Settings (environment): DOCKER_TEST_WORK (/var/tmp/dettrain-docker-test),
# DOCKER_TEST_BASE (localhost/debian:12), DOCKER_TEST_REBUILD_BASE=1 (make the
# base again), DOCKER_TEST_IMAGE (localhost/dettrain:test), DOCKER_TEST_REF (a
# git ref to build instead of the working tree), DOCKER_TEST_IMAGES (400
# synthetic images), DOCKER_TEST_EPOCHS (2), DOCKER_TEST_CA (the host's CA
# bundle; empty: no secret), DOCKER_TEST_GOPROXY (https://proxy.golang.org),
# DOCKER_TEST_NO_CACHE=1 (podman build --no-cache: a cold build),
# DOCKER_TEST_RUNTIME (runc; empty: podman's default), DOCKER_TEST_LOGDIR
# (where the full build log goes, $WORK/logs), DEBIAN_MIRROR (read from apt's
# sources), RUN_UID/RUN_GID (1000 when run as root, else your ids; with
# rootless podman the script adds --userns=keep-id, which was not tried here).
#
# Exit status: 0 everything passed, 1 a check failed, 2 bad setup.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
WORK=${DOCKER_TEST_WORK:-/var/tmp/dettrain-docker-test}
BASE=${DOCKER_TEST_BASE:-localhost/debian:12}
IMAGE=${DOCKER_TEST_IMAGE:-localhost/dettrain:test}
REF=${DOCKER_TEST_REF:-}
IMAGES=${DOCKER_TEST_IMAGES:-400}
EPOCHS=${DOCKER_TEST_EPOCHS:-2}
CA=${DOCKER_TEST_CA-/etc/ssl/certs/ca-certificates.crt}
GOPROXY_URL=${DOCKER_TEST_GOPROXY:-https://proxy.golang.org}
RUNTIME=${DOCKER_TEST_RUNTIME-runc}
LOGDIR=${DOCKER_TEST_LOGDIR:-$WORK/logs}
if [[ $(id -u) == 0 ]]; then
  RUN_UID=${RUN_UID:-1000} RUN_GID=${RUN_GID:-1000}
  userns=()
else
  RUN_UID=${RUN_UID:-$(id -u)} RUN_GID=${RUN_GID:-$(id -g)}
  userns=(--userns=keep-id) # rootless podman: not tried here
fi

say() { printf 'docker_test.sh: %s\n' "$*"; }
die() { say "FAIL: $*"; exit 1; }
failed=0
fail() { say "FAIL: $*"; failed=1; }
command -v podman >/dev/null || { say "podman is not installed (apt-get install podman runc)"; exit 2; }
mkdir -p "$WORK" "$LOGDIR"
LOGDIR=$(cd "$LOGDIR" && pwd)

# The flags this machine needs: runc (crun rejects hybrid cgroups) and
# explicit ulimits (raising them is not permitted here).
rt=()
[[ -n $RUNTIME ]] && rt=(--runtime "$RUNTIME")
ulimits=(--ulimit nofile=20000:20000 --ulimit nproc=32768:32768)

declare -A took
t0=$(date +%s)
stage_start() { t=$(date +%s); say "== $1"; }
stage_end() { took[$1]=$(($(date +%s) - t)); say "   $1 took ${took[$1]} s"; }

say "podman $(podman --version | awk '{print $3}'), runtime ${RUNTIME:-default}, storage $(podman info --format '{{.Store.GraphDriverName}}'), kernel $(uname -r), $(nproc) CPUs"
say "repository $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?'), building ${REF:+git archive }${REF:-the working tree}"

# ---- 1: the base image --------------------------------------------------------
stage_start base
if [[ ${DOCKER_TEST_REBUILD_BASE:-0} != 1 ]] && podman image exists "$BASE"; then
  say "   $BASE exists (made $(podman image inspect --format '{{.Created}}' "$BASE")); DOCKER_TEST_REBUILD_BASE=1 makes it again"
else
  [[ $(id -u) == 0 ]] || { say "making $BASE needs root (debootstrap)"; exit 2; }
  command -v debootstrap >/dev/null || { say "debootstrap is not installed (apt-get install debootstrap)"; exit 2; }
  # The first Debian archive (not -security) in apt's sources: one-line
  # (.list) or deb822 (.sources) entries.
  mirror=${DEBIAN_MIRROR:-$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -v '^[[:space:]]*#' | grep -oE 'https?://[^ ]+/debian/?( |$)' | tr -d ' ' | awk 'NR == 1' || true)}
  mirror=${mirror:-http://deb.debian.org/debian}
  say "   debootstrap --variant=minbase bookworm from $mirror"
  rootfs=$WORK/rootfs
  rm -rf "$rootfs"
  t_ds=$(date +%s)
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$LOGDIR/debootstrap.log" 2>&1 ||
    { tail -20 "$LOGDIR/debootstrap.log"; die "debootstrap (log: $LOGDIR/debootstrap.log)"; }
  say "   debootstrap took $(($(date +%s) - t_ds)) s, $(du -sh "$rootfs" | cut -f1)"
  # Docker Hub's debian:12 sources, with the mirror found above.
  rm -f "$rootfs/etc/apt/sources.list" "$rootfs"/var/cache/apt/archives/*.deb
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: ${mirror%/}
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/}-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  tar -C "$rootfs" --numeric-owner -c . |
    podman import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["bash"]' - "$BASE" >/dev/null 2>"$LOGDIR/import.log" ||
    { cat "$LOGDIR/import.log"; die "podman import"; }
  rm -rf "$rootfs"
fi
say "   $BASE: $(podman image inspect --format '{{.Id}}' "$BASE" | cut -c1-12), $(podman run --rm "${rt[@]}" "${ulimits[@]}" --network none "$BASE" sh -c '. /etc/os-release; echo "$PRETTY_NAME, Debian $(cat /etc/debian_version)"')"
stage_end base

# ---- 2: the image ---------------------------------------------------------------
stage_start build
ctx=$root
if [[ -n $REF ]]; then
  ctx=$WORK/context
  rm -rf "$ctx"
  mkdir -p "$ctx"
  git -C "$root" archive "$REF" | tar -x -C "$ctx"
  version=$(git -C "$root" describe --always "$REF")
else
  version=$(git -C "$root" describe --always --dirty 2>/dev/null || echo dev)
fi
secret=()
if [[ -n $CA ]]; then
  [[ -r $CA ]] || { say "DOCKER_TEST_CA=$CA is not readable"; exit 2; }
  secret=(--secret "id=ca-certificates,src=$CA")
fi
build=(podman build "${rt[@]}" "${ulimits[@]}" --pull=never "${secret[@]}"
  --build-arg "BUILD_IMAGE=$BASE" --build-arg "RUNTIME_IMAGE=$BASE"
  --build-arg OPENCV_T64= --build-arg CUDA_LIBS=
  --build-arg "GOPROXY=$GOPROXY_URL" --build-arg "VERSION=$version"
  --build-arg "DETTRAIN_UID=$RUN_UID" --build-arg "DETTRAIN_GID=$RUN_GID"
  -t "$IMAGE" -f "$ctx/Dockerfile" "$ctx")
[[ ${DOCKER_TEST_NO_CACHE:-0} == 1 ]] && build+=(--no-cache)
say "   ${build[*]}"
# Each line of the build's output is stamped with the seconds since the build
# started, so the time of each Dockerfile step can be read back.
b0=$(date +%s)
stamp() { local l; while IFS= read -r l; do printf '%5d %s\n' "$(($(printf '%(%s)T' -1) - b0))" "$l"; done; }
if ! "${build[@]}" 2>&1 | stamp >"$LOGDIR/build.log"; then
  tail -40 "$LOGDIR/build.log"
  die "podman build (full log: $LOGDIR/build.log)"
fi
# The steps, each with the seconds it took (to the next step's start).
awk -v end="$(($(date +%s) - b0))" '
  $2 ~ /^\[[0-9]+\/[0-9]+\]$/ && $3 == "STEP" { if (n) out(); n++; s = $1; line = substr($0, 7); cached = 0; next }
  $2 == "-->" && $3 == "Using" && $4 == "cache" { cached = 1 }
  function out() { printf "   | %4d s %s%s\n", $1 - s, (cached ? "(cached) " : ""), substr(line, 1, 140) }
  END { $1 = end; if (n) out() }' "$LOGDIR/build.log"
say "   image $IMAGE: $(podman image inspect --format '{{.Id}}' "$IMAGE" | cut -c1-12), $(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'), full build log: $LOGDIR/build.log"
stage_end build

# ---- 3: run -----------------------------------------------------------------------
data=$WORK/data
runs=$WORK/runs
rm -rf "$data" "$runs"
mkdir -p "$data" "$runs"
if [[ $(id -u) == 0 ]]; then chown "$RUN_UID:$RUN_GID" "$data" "$runs"; fi
run=(podman run --rm "${rt[@]}" "${ulimits[@]}" "${userns[@]}" --network none
  -v "$data:/data" -v "$runs:/runs")
dettrain() { "${run[@]}" "$IMAGE" "$@"; } # the image's entrypoint, as the image's user

stage_start run
say "   ${run[*]} $IMAGE ..."
say "   \$ dettrain version"
ver=$(dettrain version) || die "dettrain version"
echo "$ver" | sed 's/^/   | /'
who=$("${run[@]}" --entrypoint id "$IMAGE") || die "id in the container"
say "   the container's user: $who"
[[ $who == "uid=$RUN_UID("* ]] || fail "the container runs as '$who', not uid $RUN_UID"
[[ $who != uid=0* ]] || fail "the container runs as root"

t_step=$(date +%s)
say "   \$ dettrain synth --out demo/shapes --images $IMAGES --seed 1"
dettrain synth --out demo/shapes --images "$IMAGES" --seed 1 2>&1 | sed 's/^/   | /'
((PIPESTATUS[0] == 0)) || die "dettrain synth"
took[synth]=$(($(date +%s) - t_step))

t_step=$(date +%s)
say "   \$ dettrain train --config configs/demo.yaml --set train.epochs=$EPOCHS"
dettrain train --config configs/demo.yaml --set "train.epochs=$EPOCHS" >"$WORK/train.log" 2>&1 ||
  { sed 's/^/   | /' "$WORK/train.log"; die "dettrain train"; }
sed 's/^/   | /' "$WORK/train.log"
took[train]=$(($(date +%s) - t_step))

t_step=$(date +%s)
say "   \$ dettrain eval --config configs/demo.yaml --weights runs/demo/weights/best.weights --json runs/demo/eval-test.json"
dettrain eval --config configs/demo.yaml --weights runs/demo/weights/best.weights --json runs/demo/eval-test.json >"$WORK/eval.log" 2>&1 ||
  { sed 's/^/   | /' "$WORK/eval.log"; die "dettrain eval"; }
sed 's/^/   | /' "$WORK/eval.log"
took[eval]=$(($(date +%s) - t_step))
t_step=$(date +%s)
say "   \$ mpirun -np 2 --bind-to none --mca btl tcp,self --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo dettrain train --config configs/demo.yaml --set train.epochs=$EPOCHS --out runs/demo-mpi"
# --network none leaves only the loopback interface, which Open MPI's TCP
# transport excludes unless told: include it for data and control.
"${run[@]}" --entrypoint mpirun "$IMAGE" -np 2 --bind-to none --mca btl tcp,self --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo \
  dettrain train --config configs/demo.yaml --set train.epochs=$EPOCHS --out runs/demo-mpi >"$WORK/mpi.log" 2>&1 ||
  { sed 's/^/   | /' "$WORK/mpi.log"; die "mpirun -np 2 dettrain train"; }
sed 's/^/   | /' "$WORK/mpi.log"
grep -q "2 processes x 1 replica" "$WORK/mpi.log" || fail "mpirun -np 2: the run did not train as 2 processes"
took[mpi]=$(($(date +%s) - t_step))
say "   synth ${took[synth]} s, train ${took[train]} s, eval ${took[eval]} s, mpirun -np 2 ${took[mpi]} s"
stage_end run

# ---- 4: the files on the host ---------------------------------------------------
stage_start check
shapes=$data/shapes
n_jpg=$(find "$shapes/JPEGImages" -name '*.jpg' 2>/dev/null | wc -l)
n_xml=$(find "$shapes/Annotations" -name '*.xml' 2>/dev/null | wc -l)
n_split=0
for s in train val test; do
  f=$shapes/ImageSets/Main/$s.txt
  if [[ -s $f ]]; then
    say "   data/shapes/ImageSets/Main/$s.txt: $(wc -l <"$f") images"
    n_split=$((n_split + $(wc -l <"$f")))
  else
    fail "$f is missing or empty"
  fi
done
say "   data/shapes: $n_jpg JPEGImages/*.jpg, $n_xml Annotations/*.xml, $n_split in the splits"
((n_jpg == IMAGES && n_xml == IMAGES && n_split == IMAGES)) || fail "the data set should have $IMAGES images, annotations and split entries"
for f in demo-mpi/weights/last.weights demo-mpi/checkpoints; do
  if [[ -e $runs/$f ]]; then say "   runs/$f: written by rank 0"; else fail "runs/$f is missing (mpirun -np 2)"; fi
done
for f in weights/best.weights eval-test.json; do
  if [[ -s $runs/demo/$f ]]; then say "   runs/demo/$f: $(stat -c %s "$runs/demo/$f") bytes"; else fail "runs/demo/$f is missing or empty"; fi
done
say "   runs/demo holds: $(cd "$runs/demo" && find . -mindepth 1 -maxdepth 2 | sed 's|^\./||' | sort | tr '\n' ' ')"
total=$(find "$data" "$runs" -mindepth 1 | wc -l)
other=$(find "$data" "$runs" -mindepth 1 \( ! -uid "$RUN_UID" -o ! -gid "$RUN_GID" \) -printf '%U:%G %p\n')
if [[ -z $other ]]; then
  say "   ownership: all $total files and folders under data/ and runs/ are $RUN_UID:$RUN_GID (the container's user)"
else
  fail "files not owned by $RUN_UID:$RUN_GID: $(head -5 <<<"$other" | tr '\n' ';')"
fi
stat -c '   %U(%u):%G(%g) %A %n' "$data" "$data/shapes" "$shapes/JPEGImages/$(ls "$shapes/JPEGImages" | head -1)" "$runs/demo" "$runs/demo/weights/best.weights" | sed "s|$WORK/||"
map_of() { sed -n 's/^mAP@0\.5 (VOC all-point): *\([0-9.]*\).*/\1/p' "$1" | tail -1; }
map=$(map_of "$WORK/eval.log")
train_map=$(map_of "$WORK/train.log")
if [[ -n $map ]]; then
  say "   eval mAP@0.5 (VOC all-point, test split): $map"
  # train ends with the same test-split evaluation of best.weights.
  [[ $map == "$train_map" ]] || fail "eval's mAP $map differs from the one train printed at its end (${train_map:-none})"
  say "   train's final test report printed the same: $train_map"
else
  fail "eval printed no mAP@0.5 (VOC all-point)"
fi
stage_end check

say "times: base ${took[base]} s, build ${took[build]} s, run ${took[run]} s (synth ${took[synth]}, train ${took[train]}, eval ${took[eval]}, mpirun ${took[mpi]}), check ${took[check]} s, total $(($(date +%s) - t0)) s"
if ((failed)); then say "some checks FAILED"; exit 1; fi
say "all checks passed"
