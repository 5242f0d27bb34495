#!/usr/bin/env bash
# Installs the system packages dettrain needs when they are missing:
# libopencv-dev (gocv, the image package) and libopenblas-dev (fast GEMM,
# loaded at run time), plus pkg-config and a C compiler for cgo.
set -euo pipefail
need=()
dpkg -s libopencv-dev >/dev/null 2>&1 || need+=(libopencv-dev)
dpkg -s libopenblas-dev >/dev/null 2>&1 || need+=(libopenblas-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v gcc >/dev/null || need+=(gcc)
if ((${#need[@]})); then
  echo "deps: installing ${need[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
fi
command -v go >/dev/null || { echo "deps: Go 1.26 or newer is needed on PATH (https://go.dev/dl)"; exit 1; }
