#!/usr/bin/env bash
# gpu_check.sh — the GPU checks of docs/GPU.md, as one script for an NVIDIA
# machine without OpenCV or a full Go toolchain. The test binaries are built
# on the development machine (the packages they test build with CGO_ENABLED=0):
#
#   bash scripts/gpu_pack.sh        # here: .device/ with the test binaries
#   # then on the GPU machine, from the repository root:
#   bash .device/run2.sh bash scripts/gpu_check.sh
#
# Logs go to $OUT (or /tmp/gpu_check). BENCH=0 skips the speed runs, TORCH=0
# the PyTorch peer, TRAIN=0 the train package; GPU_TESTS=regex runs only
# those tests of the gpu package; PROFILE=model:size:batch,... prints where
# a step's time goes (TestProfileGPU); SANITIZE=1 runs the failing training
# test under compute-sanitizer.
set -uo pipefail
out=${OUT:-/tmp/gpu_check}
mkdir -p "$out"
export DETTRAIN_CACHE=/tmp/dettrain-cache
root=$(pwd)
summary() { grep -E "^(--- FAIL|--- PASS|--- SKIP|FAIL|ok|PASS|panic:|fatal error:)|(_test.go:[0-9]+: .*(error|Error|want|differ|GPU|loss|mAP|memory|relative))" "$1" | grep -v "^    cudnn_gpu_test\|^    cublas_gpu_test" | head -${2:-80}; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"

echo "== gpu package: bindings, kernels, ops and the network vs the CPU (TF32 off), replicas, memory"
# One process per test: a CUDA error that poisons the context (an illegal
# address) then fails only its own test.
: > "$out/gpu_test.txt"
for t in $(cd gpu && "$root/.device/gpu.test" -test.list "${GPU_TESTS:-.*}" | grep '^Test'); do
  (cd gpu && timeout 120 "$root/.device/gpu.test" -test.count=1 -test.v -test.run "^$t\$" -test.timeout 110s) >> "$out/gpu_test.txt" 2>&1
  rc=$?
  [[ $rc != 0 ]] && echo "$t: exit $rc"
done
summary "$out/gpu_test.txt" 150

if [[ -n ${PROFILE:-} ]]; then
  echo "== where a training step's time goes: $PROFILE"
  (cd gpu && DETTRAIN_GPU_PROFILE=$PROFILE timeout 300 "$root/.device/gpu.test" -test.count=1 -test.v -test.run TestProfileGPU -test.timeout 290s) > "$out/profile.txt" 2>&1
  grep -E "PROFILE|FAIL|panic|rror" "$out/profile.txt" | head -120
fi

rc=0
if [[ ${TRAIN:-1} == 1 ]]; then
echo "== train package: 50 steps GPU vs CPU, overfit on the GPU (float32 and mixed precision)"
(cd train && timeout 300 "$root/.device/train.test" -test.count=1 -test.v -test.run GPU -test.timeout 290s) > "$out/train_test.txt" 2>&1
rc=$?; echo "exit $rc"; summary "$out/train_test.txt" 40
fi

if [[ ${SANITIZE:-0} == 1 && $rc != 0 ]]; then
  echo "== compute-sanitizer memcheck on the overfit test"
  (cd train && timeout 200 compute-sanitizer --tool memcheck --print-limit 3 "$root/.device/train.test" -test.count=1 -test.run GPUOverfit -test.timeout 190s) > "$out/sanitizer.txt" 2>&1
  grep -E "=========" "$out/sanitizer.txt" | head -40
fi

if [[ ${BENCH:-1} == 1 ]]; then
  echo "== speed: dettrain vs PyTorch, same machine, same run"
  export DETTRAIN_GPU_BENCH=${BENCH_SPEC:-yolov3-tiny:416:64:train,yolov3-tiny:416:64:train:amp,yolov3:416:32:train,yolov3:416:32:train:amp,yolov3:416:32:infer}
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -lms 100 > "$out/util.txt" 2>/dev/null &
  smi=$!
  (cd gpu && timeout 400 "$root/.device/gpu.test" -test.count=1 -test.v -test.run TestBenchGPU -test.timeout 390s) > "$out/bench.txt" 2>&1
  kill $smi 2>/dev/null
  grep -E "GPUBENCH|FAIL|panic|rror" "$out/bench.txt" | head -20
  awk -F', ' '$1 > 0 {s += $1; n++} END {if (n) printf "GPU utilisation while busy (nvidia-smi every 100 ms): mean %.0f%% over %d samples\n", s/n, n}' "$out/util.txt"
  if [[ ${TORCH:-1} == 1 ]]; then
    for w in "tiny 416 64 train" "yolov3 416 32 train" "yolov3 416 32 eval"; do
      set -- $w
      python3 .device/torch_yolov3.py --model $1 --size $2 --batch $3 --mode $4 --device cuda --iters 20 --warmup 5 2>&1 | tail -1 | sed "s/^/TORCH $1 $2 $3 $4: /" | tee -a "$out/bench.txt"
    done
  fi
fi
