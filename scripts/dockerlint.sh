#!/usr/bin/env bash
# dockerlint.sh: checks the Dockerfile without a Docker engine. docs/DOCKER.md
# says what each step proves and what only `docker build` and `docker run
# --gpus all` on a GPU host can. From the repository root:
#
#   bash scripts/dockerlint.sh          # steps 1-4
#   bash scripts/dockerlint.sh --run    # and step 5 (needs root, for chroot)
#
#  1. scripts/dockerlint, a Go module of its own (the main go.mod gains
#     nothing): its tests, then buildkit's `docker build --check` rules, the
#     stage structure (COPY --from path = go build -o path, non-root USER,
#     ENTRYPOINT, volumes) and the build context after .dockerignore.
#  2. Every apt package of the build stage exists in Debian 12 (bookworm) and
#     every one of the runtime stage in Ubuntu 24.04 (noble), except NVIDIA's
#     (cuda-*, libcudnn*, ...), whose repository is not reached. apt reads the
#     archives' indexes into $WORK with a private configuration; nothing is
#     installed on this machine.
#  3. The runtime stage's packages and all their dependencies are downloaded
#     from noble (checked against the index's SHA512) and unpacked into
#     $WORK/root (dpkg-deb -x: no maintainer scripts; the alternatives apt
#     would set for BLAS/LAPACK/OpenBLAS are made by hand).
#  4. dettrain built here (as the build stage builds it) finds every shared
#     library it needs, transitively, in that root: noble's own loader lists
#     the binary's libraries, and OpenBLAS's (opened at run time), with only
#     the root's library folders to search; the package of each is printed.
#  5. --run: the binary runs in that root under chroot as uid 1000, with
#     /opt/dettrain, /data and /runs laid out as in the image: version, synth,
#     and 2 epochs of the demo's training.
#
# Steps 2-5 need deb.debian.org and archive.ubuntu.com (about 40 MB of indexes
# and 180 MB of packages the first time; $WORK keeps them). Exit status: 0 all
# steps ran and passed, 1 a check failed, 3 nothing failed but a step was
# skipped (no network, not root for --run).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
run=0
case ${1:-} in
  --run) run=1 ;;
  "") ;;
  *) echo "usage: bash scripts/dockerlint.sh [--run]" >&2; exit 2 ;;
esac
WORK=${DOCKERLINT_WORK:-${TMPDIR:-/tmp}/dettrain-dockerlint}
mkdir -p "$WORK"
failed=0
skipped=0
say() { printf 'dockerlint.sh: %s\n' "$*"; }
fail() { say "FAIL: $*"; failed=1; }
skip() { say "SKIPPED: $*"; skipped=1; }
finish() {
  if ((failed)); then say "some checks FAILED"; exit 1; fi
  if ((skipped)); then say "no check failed, but some were SKIPPED (see above)"; exit 3; fi
  say "all checks passed"; exit 0
}

# ---- 1: buildkit's checks, structure, build context -------------------------
say "step 1: scripts/dockerlint"
tool=$WORK/dockerlint
(cd "$root/scripts/dockerlint" && go test -count=1 . && go build -o "$tool" .) || { fail "scripts/dockerlint does not build or its tests fail"; finish; }
"$tool" -root "$root" || fail "scripts/dockerlint found problems in the Dockerfile"
mapfile -t build_pkgs < <("$tool" -root "$root" -apt-packages build)
mapfile -t runtime_pkgs < <("$tool" -root "$root" -apt-packages runtime)

# ---- 2: apt packages exist --------------------------------------------------
# index NAME SOURCE-LINE...: a private apt configuration $WORK/NAME/apt.conf
# with these sources, and its indexes fetched.
index() {
  local name=$1 d=$WORK/$1
  shift
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/parts" "$d/prefs"
  : >"$d/status"
  printf '%s\n' "$@" >"$d/sources.list"
  cat >"$d/apt.conf" <<EOF
Dir::Etc::SourceList "$d/sources.list";
Dir::Etc::SourceParts "$d/parts";
Dir::Etc::PreferencesParts "$d/prefs";
Dir::State::Lists "$d/lists";
Dir::State::status "$d/status";
Dir::Cache "$d/cache";
APT::Architecture "amd64";
APT::Architectures { "amd64"; };
Acquire::Languages "none";
EOF
  APT_CONFIG=$d/apt.conf apt-get update -q >"$d/update.log" 2>&1 || { cat "$d/update.log"; return 1; }
}
nvidia_pkg() { case $1 in cuda-* | libcudnn* | libcublas* | libnccl* | libnvrtc* | libnpp* | libcusparse* | libcufft* | libcurand* | libcusolver*) return 0 ;; esac; return 1; }
# exists NAME SUITE PKG...: each package has a candidate version in the index.
exists() {
  local name=$1 suite=$2 p v
  shift 2
  for p in "$@"; do
    if nvidia_pkg "$p"; then
      say "  $p: from NVIDIA's CUDA repository (the base image's); not checked here"
      continue
    fi
    v=$(APT_CONFIG=$WORK/$name/apt.conf apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
    if [[ -n $v && $v != "(none)" ]]; then
      say "  $p $v"
    else
      fail "$p has no candidate in $suite (no such package, or only a virtual name)"
    fi
  done
}
reachable() { curl -sfI --max-time 15 "$1" >/dev/null; }

say "step 2: the apt packages exist"
have_noble=0
if ! command -v apt-get >/dev/null; then
  skip "steps 2-5: apt-get is not on this machine"
  finish
fi
if reachable http://deb.debian.org/debian/dists/bookworm/Release; then
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  opt="[arch=amd64 signed-by=$keyring]"
  [[ -f $keyring ]] || opt="[arch=amd64 trusted=yes]"
  if index bookworm "deb $opt http://deb.debian.org/debian bookworm main" \
    "deb $opt http://deb.debian.org/debian bookworm-updates main" \
    "deb $opt http://deb.debian.org/debian-security bookworm-security main"; then
    say " build stage, Debian 12 (bookworm):"
    exists bookworm "Debian 12" "${build_pkgs[@]}"
  else
    fail "apt-get update of Debian 12's index failed"
  fi
else
  skip "deb.debian.org is not reachable: the build stage's packages are not checked"
fi
if reachable http://archive.ubuntu.com/ubuntu/dists/noble/Release; then
  # A Debian host has no Ubuntu archive key: the index is read unverified
  # (trusted=yes), for package names, versions and hashes only.
  opt="[arch=amd64 trusted=yes]"
  if index noble "deb $opt http://archive.ubuntu.com/ubuntu noble main universe" \
    "deb $opt http://archive.ubuntu.com/ubuntu noble-updates main universe" \
    "deb $opt http://security.ubuntu.com/ubuntu noble-security main universe"; then
    say " runtime stage, Ubuntu 24.04 (noble):"
    exists noble "Ubuntu 24.04" "${runtime_pkgs[@]}"
    have_noble=1
  else
    fail "apt-get update of Ubuntu 24.04's index failed"
  fi
else
  skip "archive.ubuntu.com is not reachable: the runtime stage's packages are not checked (steps 2-5)"
fi
((have_noble)) || finish

# ---- 3: the runtime packages, unpacked --------------------------------------
say "step 3: the runtime stage's packages and their dependencies, unpacked into $WORK/root"
pkgs=()
for p in "${runtime_pkgs[@]}"; do nvidia_pkg "$p" || pkgs+=("$p"); done
debs=$WORK/debs
mkdir -p "$debs"
APT_CONFIG=$WORK/noble/apt.conf apt-get install -qq --no-install-recommends --print-uris "${pkgs[@]}" >"$WORK/uris" ||
  { fail "apt-get cannot resolve the runtime packages' dependencies in noble"; finish; }
n=0
bytes=0
while read -r url file size hash; do
  url=${url//\'/}
  if [[ ! -f $debs/$file ]]; then
    if ! curl -sfL --max-time 300 -o "$debs/$file.part" "$url"; then
      fail "download of $url"
      continue
    fi
    mv "$debs/$file.part" "$debs/$file"
  fi
  [[ $hash == SHA512:* ]] && { echo "${hash#SHA512:}  $debs/$file" | sha512sum -c --quiet - || fail "$file: SHA512 differs from the index"; }
  n=$((n + 1))
  bytes=$((bytes + size))
done <"$WORK/uris"
rm -rf "$WORK/root" "$WORK/files"
mkdir -p "$WORK/root" "$WORK/files"
while read -r _ file _; do
  dpkg-deb -x "$debs/$file" "$WORK/root"
  dpkg-deb -c "$debs/$file" | awk '{print substr($6, 2)}' >"$WORK/files/${file%%_*}"
done <"$WORK/uris"
say "  $n packages, $((bytes / 1000000)) MB of .deb files, $(du -sh "$WORK/root" | cut -f1) unpacked (from an empty root: the base image already holds part of it)"
r=$WORK/root
# Ubuntu 24.04's merged /usr: /bin, /sbin, /lib, /lib64 are links into /usr.
for d in bin sbin lib lib64; do
  if [[ -d $r/$d && ! -L $r/$d ]]; then mkdir -p "$r/usr/$d" && cp -a "$r/$d/." "$r/usr/$d/" && rm -rf "${r:?}/$d"; fi
  ln -sfn "usr/$d" "$r/$d"
done
# The alternatives apt's maintainer scripts would set (OpenBLAS has the highest priority).
m=$r/usr/lib/x86_64-linux-gnu
for so in libblas.so.3 liblapack.so.3 libopenblas.so.0; do
  for alt in openblas-pthread blas lapack; do
    if [[ -e $m/$alt/$so ]]; then ln -sfn "$alt/$so" "$m/$so"; break; fi
  done
done

# ---- 4: every library the binary needs is in the root -----------------------
say "step 4: the libraries dettrain needs, resolved in the Ubuntu 24.04 root only"
bin=$WORK/dettrain
if ! grep -q '^VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null; then
  say "  note: this machine is not Debian 12; the binary built here links its OpenCV, not bookworm's as the image's does"
fi
(cd "$root" && CGO_ENABLED=1 go build -trimpath -o "$bin" ./cmd/dettrain) || { fail "go build ./cmd/dettrain (needs libopencv-dev: make deps)"; finish; }
loader=$r/usr/lib64/ld-linux-x86-64.so.2
libdirs=$r/usr/local/lib/x86_64-linux-gnu:$r/usr/lib/x86_64-linux-gnu:$r/usr/lib
owner() { # the package that ships file $1 (a path inside the root)
  local f=${1#"$r"} p
  f=${f/#\/lib\//\/usr\/lib\/}
  p=$(grep -lxF -e "$f" "$WORK"/files/* 2>/dev/null | head -1)
  echo "${p##*/}"
}
check_libs() { # check_libs FILE: prints how many libraries FILE loads; fails unless all are in the root
  local out bad
  out=$("$loader" --inhibit-cache --library-path "$libdirs" --list "$1" 2>&1) || { echo "$out" >&2; return 1; }
  bad=$(grep -v -e 'linux-vdso' -e "=> $r/" -e "^[[:space:]]*$r/" -e '^[[:space:]]*/lib64/ld-linux' <<<"$out" || true)
  if [[ -n $bad ]]; then echo "$bad" >&2; return 1; fi
  grep -c '=>' <<<"$out"
}
if total=$(check_libs "$bin"); then
  say "  dettrain: $(readelf -d "$bin" | grep -c NEEDED) NEEDED entries, $total libraries with their own dependencies, all in the root:"
else
  fail "dettrain needs libraries (above) that no package of the runtime stage brings"
fi
while read -r so; do
  p=$("$loader" --inhibit-cache --library-path "$libdirs" --list "$bin" | awk -v s="$so" '$1 == s {print $3}')
  if [[ -n $p && $p == "$r"/* ]]; then say "    $so -> ${p#"$r"} ($(owner "$p"))"; else fail "$so: not in the root"; fi
done < <(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
blas=$m/libopenblas.so.0
if [[ ! -e $blas ]]; then
  fail "libopenblas.so.0 is not in the root"
elif total=$(check_libs "$blas"); then
  say "    libopenblas.so.0 (opened at run time) -> ${blas#"$r"} ($(owner "$(readlink -f "$blas")")), $total libraries with its own dependencies"
else
  fail "libopenblas.so.0 needs libraries (above) that are not in the root"
fi

# ---- 5: run it ---------------------------------------------------------------
if ((!run)); then
  say "step 5 not asked for (--run)"
  finish
fi
if [[ $(id -u) != 0 ]] || ! command -v chroot >/dev/null; then
  skip "step 5: --run needs root and chroot"
  finish
fi
say "step 5: dettrain in the Ubuntu 24.04 root (chroot, uid 1000): version, synth, 2 epochs of the demo"
mkdir -p "$r/usr/local/bin" "$r/opt/dettrain" "$r/data" "$r/runs" "$r/tmp" "$r/dev"
cp "$bin" "$r/usr/local/bin/dettrain"
cp -r "$root/configs" "$r/opt/dettrain/"
ln -sfn /data "$r/opt/dettrain/demo"
ln -sfn /runs "$r/opt/dettrain/runs"
chown 1000:1000 "$r/data" "$r/runs"
chmod 1777 "$r/tmp"
[[ -e $r/dev/null ]] || mknod -m 666 "$r/dev/null" c 1 3
chroot=$(command -v chroot)
in_root() { env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/tmp DETTRAIN_CACHE=/runs/.cache "$chroot" --userspec=1000:1000 "$r" "$@"; }
if in_root dettrain version &&
  in_root dettrain synth --out /opt/dettrain/demo/shapes --images 200 --seed 1 &&
  in_root dettrain train --config /opt/dettrain/configs/demo.yaml --set train.epochs=2 --set train.eval_interval=0 >"$WORK/train.log" 2>&1 &&
  [[ -s $r/runs/demo/weights/best.weights ]]; then
  tail -1 "$WORK/train.log" | sed 's/^/dockerlint.sh:   /'
  say "  /runs/demo/weights/best.weights written ($(stat -c %s "$r/runs/demo/weights/best.weights") bytes)"
else
  tail -20 "$WORK/train.log" 2>/dev/null || true
  fail "dettrain does not run in the Ubuntu 24.04 root"
fi
finish
