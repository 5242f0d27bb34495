#!/usr/bin/env bash
# Installs the optional runtimes that `make test` checks dettrain against
# (their tests skip with a message when they are absent): Debian's Open CV
# and ONNX Python packages (onnx.checker, the ONNX example's shim) and
# node with onnxruntime-node from npm (a second ONNX runtime), Open MPI
# (mpirun and libmpi.so.40, for the mpi package's tests under
# `mpirun -np 2`; libopenmpi-dev adds mpi.h, the ABI the binding follows),
# plus the libraries of `make deps`. One apt-get update, then only what is
# missing.
set -euo pipefail
need=()
for p in libopencv-dev libopenblas-dev pkg-config gcc python3-onnx python3-opencv openmpi-bin libopenmpi-dev; do
	dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
# node and npm: Debian's packages, unless a node with its own npm is there.
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
if ((${#need[@]})); then
	echo "test deps: installing ${need[*]}"
	$sudo apt-get update -q
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
fi
# onnxruntime-node's install script only downloads CUDA builds from a
# registry this machine does not reach; the CPU binaries are in the npm
# package itself, so scripts are skipped.
ort=${DETTRAIN_ORT_DIR:-$HOME/.cache/dettrain-ort}
if [ ! -d "$ort/node_modules/onnxruntime-node" ]; then
	echo "test deps: npm install onnxruntime-node@1.30.0 into $ort"
	npm install --prefix "$ort" --no-save --no-audit --no-fund --ignore-scripts onnxruntime-node@1.30.0
fi
