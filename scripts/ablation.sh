#!/usr/bin/env bash
# The BCCD measurements of docs/ABLATION.md, in one run (about an hour on 2
# idle cores): (1) 2 replicas with synchronized BN against 1 replica of the
# whole batch, 3 seeds, the shipped config at its 20 epochs; (2) the
# cumulative ablation of the tricks, 3 seeds, 20 epochs. A run whose
# eval/eval.json exists is not trained again.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-bin/dettrain}
out=${OUT:-runs/ablation-bccd}
cfg=configs/bccd-yolo-fastest.yaml
seeds=${SEEDS:-1 2 3}
[ -x "$bin" ] || go build -o "$bin" ./cmd/dettrain
mkdir -p "$out/replicas"
train() { # name, then --set overrides
	local dir=$out/replicas/$1; shift
	if [ -f "$dir/eval/eval.json" ]; then echo "have $dir"; return; fi
	rm -rf "$dir"
	/usr/bin/time -v "$bin" train --config "$cfg" --out "$dir" "$@" >"$dir.log" 2>&1 || { tail -20 "$dir.log"; exit 1; }
	grep -E "^mAP@0.5|Elapsed \(wall|Maximum resident" "$dir.log"
}
a=() b=()
for s in $seeds; do
	train "r1-s$s" --set train.seed="$s" --set train.replicas=1
	train "r2sync-s$s" --set train.seed="$s" --set train.replicas=2 --set model.bn=sync
	a+=("$out/replicas/r1-s$s") b+=("$out/replicas/r2sync-s$s")
done
(IFS=,; go run ./scripts/paired -a "${a[*]}" -b "${b[*]}") | tee "$out/replicas/paired.txt"
"$bin" ablate --config "$cfg" --seeds "$(wc -w <<<"$seeds")" --set "train.shapes=[224,256,288,320,352,384,416]" \
	--set train.mixup_off_fraction=0.25 --out "$out/ablate" 2>&1 | tee "$out/ablate.log"
