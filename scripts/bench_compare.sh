#!/usr/bin/env bash
# bench_compare.sh OLD NEW [ROUNDS]: dettrain's CPU bench of two commits,
# interleaved (old, new, old, new, ... for every workload, ROUNDS rounds,
# default 3), so that both see the same machine load; prints one row per
# workload: the medians of img/s and peak MiB, new/old per round and its
# median (docs/BENCHMARKS.md, "Issue 18", was made with
# `scripts/bench_compare.sh b72ab1f f00150f`). Builds each commit from a
# temporary git worktree. Run on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?usage: scripts/bench_compare.sh OLD NEW [ROUNDS]} new=${2:?usage: scripts/bench_compare.sh OLD NEW [ROUNDS]}
rounds=${3:-3}
threads=${THREADS:-$(nproc)}
tmp=$(mktemp -d)
trap 'git worktree remove --force "$tmp/old" 2>/dev/null; git worktree remove --force "$tmp/new" 2>/dev/null; rm -rf "$tmp"' EXIT
for side in old new; do
  ref=${!side}
  git worktree add -q --detach "$tmp/$side" "$ref"
  (cd "$tmp/$side" && go build -o "$tmp/dettrain-$side" ./cmd/dettrain)
done
fastest=../shared/models/yolo-fastest-1.1-coco/yolo-fastest-1.1.cfg
workloads=(
  "yolov3-tiny train 256 b8|configs/models/yolov3-tiny.cfg|256|8|train|20"
  "yolov3-tiny train 416 b8|configs/models/yolov3-tiny.cfg|416|8|train|8"
  "yolov3-tiny infer 416 b8|configs/models/yolov3-tiny.cfg|416|8|infer|12"
  "yolov3 train 416 b2|configs/models/yolov3.cfg|416|2|train|3"
)
[ -f "$fastest" ] && workloads+=("Yolo-Fastest 1.1 train 320 b16|$fastest|320|16|train|6")
field() { awk -v k="$1" '{for (i=1;i<NF;i++) if ($i==k) print $(i+1)}'; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
raw=$tmp/raw.txt
for r in $(seq "$rounds"); do
  for w in "${workloads[@]}"; do
    IFS='|' read -r name cfg size batch mode iters <<<"$w"
    for side in old new; do
      line=$("$tmp/dettrain-$side" bench --model "$cfg" --size "$size" --batch "$batch" --mode "$mode" --classes 20 --threads "$threads" --iters "$iters" --warmup 2 2>/dev/null)
      echo "$r|$name|$side|$(echo "$line" | field IPS)|$(echo "$line" | field peakMiB)" | tee -a "$raw" >&2
    done
  done
done
echo "| workload | $old img/s | $new img/s | ratio | ratio per round | $old peak MiB | $new peak MiB |"
echo "|---|---|---|---|---|---|---|"
for w in "${workloads[@]}"; do
  name=${w%%|*}
  col() { awk -F'|' -v n="$name" -v s="$1" -v c="$2" '$2==n && $3==s {print $c}' "$raw"; }
  ratios=$(paste -d' ' <(col old 4) <(col new 4) | awk '{printf "%.2f\n", $2/$1}')
  printf '| %s | %s | %s | %.2f | %s | %s | %s |\n' "$name" "$(col old 4 | median)" "$(col new 4 | median)" \
    "$(echo "$ratios" | median)" "$(echo "$ratios" | paste -sd, | sed 's/,/, /g')" "$(col old 5 | median)" "$(col new 5 | median)"
done
