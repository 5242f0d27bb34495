#!/usr/bin/env bash
# Training img/s with 1 and 2 CPU replicas (local and synchronized BN) on the
# demo data set, interleaved ROUNDS times: one epoch each, the img/s that
# `dettrain train` prints at the end. Usage: scripts/replicas.sh [ROUNDS]
# (after `make build` and `bin/dettrain synth --out demo/shapes`).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
for r in $(seq "$rounds"); do
  for v in "1 local" "2 local" "2 sync"; do
    set -- $v
    ips=$(bin/dettrain train --config configs/demo.yaml --out "/tmp/dettrain-replicas-$1-$2" \
      --set train.epochs=1 --set train.warmup_epochs=0 --set train.eval_interval=0 --set data.val= --set train.replicas="$1" --set model.bn="$2" |
      sed -n 's/.*(\([0-9.]*\) img\/s)$/\1/p')
    echo "round $r replicas $1 bn $2: $ips img/s"
  done
done
