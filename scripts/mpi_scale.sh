#!/usr/bin/env bash
# mpi_scale.sh [CONFIG] [EPOCHS]: docs/DISTRIBUTED.md's "What scales" table.
# Trains CONFIG (default configs/bccd-yolo-fastest.yaml) for EPOCHS (default
# 2) epochs without periodic evaluation three ways: one process with one
# replica, one process with two SyncBN replicas, and mpirun -np 2 over TCP
# (--mca btl tcp,self) with SyncBN; prints each run's img/s (the "trained
# ... img/s" line) and, for the ranks, rank 0's all-reduce ms per step of
# each epoch (log.jsonl's allreduce_ms). Needs Open MPI's mpirun and the
# data set the config names; run on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
cfg=${1:-configs/bccd-yolo-fastest.yaml}
epochs=${2:-2}
bin=${BIN:-bin/dettrain}
[ -x "$bin" ] || go build -o "$bin" ./cmd/dettrain
command -v mpirun >/dev/null || { echo "mpi_scale: mpirun not found (apt-get install openmpi-bin)" >&2; exit 2; }
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
set_=(--set "train.epochs=$epochs" --set train.eval_interval=0 --set train.log_interval=1000)
# run NAME LAUNCHER EXTRA: LAUNCHER ("" or an mpirun command line) and EXTRA
# (--set flags) are split on spaces.
run() {
  local name=$1 launcher=$2 extra=$3 ips ar
  # shellcheck disable=SC2086 # word splitting of LAUNCHER and EXTRA is meant
  $launcher "$bin" train --config "$cfg" "${set_[@]}" $extra --out "$out/run" >"$out/run.log" 2>&1 || { cat "$out/run.log" >&2; exit 1; }
  ips=$(sed -n 's/.*trained to iteration .* (\([0-9.]*\) img\/s).*/\1/p' "$out/run.log")
  ar=$(grep -o '"allreduce_ms":[0-9.]*' "$out/run/log.jsonl" | cut -d: -f2 | awk '{printf "%s%.1f", s, $1; s=", "}' || true)
  echo "| $name | $ips | ${ar:--} |"
  rm -rf "$out/run" "$out/run.log"
}
echo "$cfg, $epochs epochs, $(nproc) CPUs, commit $(git rev-parse --short HEAD), $(date -u +%F)"
echo "| run | img/s | all-reduce ms per step, by epoch |"
echo "|---|---|---|"
run "1 process x 1 replica" "" "--set train.replicas=1"
run "1 process x 2 replicas, SyncBN" "" "--set train.replicas=2 --set model.bn=sync"
run "2 ranks x 1 replica over TCP, SyncBN" "mpirun -np 2 --bind-to none --mca btl tcp,self" "--set train.replicas=2 --set model.bn=sync"
