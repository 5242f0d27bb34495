#!/usr/bin/env bash
# gpu_pack.sh — prepare .device/ for scripts/gpu_check.sh on a GPU test machine
# (this workplace's device tool): the run script from ../shared/device, the
# test binaries of gpu/ and train/ built here without cgo (the GPU machine has
# no OpenCV, and its packed Go toolchain has no vet), and the PyTorch peer.
# Then: device run with carry [".device"] and `bash .device/run2.sh bash scripts/gpu_check.sh`.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
bash ../shared/device/pack.sh >/dev/null
rm -f .device/go.tar.xz .device/vendor.tar.xz  # the binaries below need no toolchain there
# run.sh without its Go set-up: run2.sh.
sed -e '/^if \[\[ ! -x \/tmp\/go/,/^fi$/d' -e '/vendor.tar.xz/d' -e 's/\$(go version); //' .device/run.sh > .device/run2.sh
CGO_ENABLED=0 go test -c -o .device/gpu.test ./gpu
CGO_ENABLED=0 go test -c -o .device/train.test ./train
cp ../shared/bench/torch_yolov3.py .device/
du -sh .device
