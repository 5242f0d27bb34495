#!/usr/bin/env bash
# mpi_ranks_vs_replicas.sh [N]: how far N ranks (mpirun -np N, TCP) are from
# one process of N replicas on the same run (docs/DISTRIBUTED.md,
# "Exactness"): a synthetic set of 48 images at 64x64, demo-tiny.cfg,
# train.batch 2N, train.replicas N, SyncBN, augmentation and mixup, 2
# epochs. Prints the largest relative difference of the logged losses and
# the largest absolute difference of the final weights (0 and 0 for N = 2:
# TestMPIMatchesReplicas asserts it). Needs Open MPI's mpirun and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-4}
bin=${BIN:-bin/dettrain}
[ -x "$bin" ] || go build -o "$bin" ./cmd/dettrain
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$bin" synth --out "$dir/ds" --images 48 --seed 4 --size 64 >/dev/null
cat >"$dir/c.yaml" <<YAML
model: {cfg: $PWD/configs/models/demo-tiny.cfg, size: 64, bn: sync}
data: {root: ds, names: [circle, square, triangle, cross], val: "", augment: true}
train: {epochs: 2, batch: $((2 * n)), replicas: $n, lr: 0.004, schedule: cosine, mixup: true, mixup_off_epochs: 0, eval_interval: 0, log_interval: 1}
eval: {conf: 0.001}
output: {dir: run}
YAML
"$bin" train --config "$dir/c.yaml" --out "$dir/one" >"$dir/one.log" 2>&1 || { cat "$dir/one.log"; exit 1; }
mpirun -np "$n" --oversubscribe --bind-to none --mca btl tcp,self "$bin" train --config "$dir/c.yaml" --out "$dir/ranks" >"$dir/ranks.log" 2>&1 || { cat "$dir/ranks.log"; exit 1; }
python3 - "$dir" "$n" <<'PY'
import json, struct, sys
d, n = sys.argv[1], sys.argv[2]
def losses(run):
    return [json.loads(l)["loss"] for l in open(f"{d}/{run}/log.jsonl") if '"kind":"iter"' in l]
def weights(run):
    b = open(f"{d}/{run}/weights/last.weights", "rb").read()
    return struct.unpack(f"<{(len(b) - 20) // 4}f", b[20:])  # darknet header: 3 int32 + uint64 seen
a, b = losses("one"), losses("ranks")
wa, wb = weights("one"), weights("ranks")
print(f"{n} ranks against {n} replicas: {len(a)} steps; first loss {'equal' if a[0] == b[0] else 'differs'}; "
      f"largest relative loss difference {max(abs(x - y) / abs(x) for x, y in zip(a, b)):.2g}; "
      f"largest weight difference {max(abs(x - y) for x, y in zip(wa, wb)):.2g} (largest weight {max(map(abs, wa)):.3g})")
PY
