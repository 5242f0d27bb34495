#!/usr/bin/env bash
# make bench: dettrain's CPU benchmark table, interleaved with the PyTorch peer
# (../shared/bench/torch_yolov3.py) when /usr/bin/python3 has torch, written
# to docs/BENCHMARKS.md. Same model, input size, batch, class count and thread
# count on both sides; each workload alternates dettrain and PyTorch ROUNDS
# times and reports medians. Usage: scripts/bench.sh [ROUNDS] (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
threads=${THREADS:-$(nproc)}
bin=bin/dettrain
peer=../shared/bench/torch_yolov3.py
out=docs/BENCHMARKS.md
have_torch=0
if [ -f "$peer" ] && /usr/bin/python3 -c 'import torch' 2>/dev/null; then have_torch=1; fi
[ "$have_torch" = 1 ] || echo "bench: no PyTorch peer (apt-get install python3-torch; $peer); dettrain only"

# workload: name model-cfg torch-model size batch mode iters
workloads=(
  "yolov3-tiny train 256 b8|configs/models/yolov3-tiny.cfg|tiny|256|8|train|6"
  "yolov3-tiny train 416 b8|configs/models/yolov3-tiny.cfg|tiny|416|8|train|4"
  "yolov3-tiny infer 416 b8|configs/models/yolov3-tiny.cfg|tiny|416|8|infer|6"
  "yolov3 train 416 b2|configs/models/yolov3.cfg|yolov3|416|2|train|3"
)
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
# Both sides print "IPS <median> ... peakMiB <rss>".
field() { awk -v k="$1" '{for (i=1;i<NF;i++) if ($i==k) print $(i+1)}'; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# Other processes using the CPU while the table runs change the numbers: name them.
busy=$(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 > 20 {printf "%s%s (%s%% CPU)", sep, $2, $1; sep=", "}')
rows=""
for w in "${workloads[@]}"; do
  IFS='|' read -r name cfg tmodel size batch mode iters <<<"$w"
  d_ips=(); d_rss=(); t_ips=(); t_rss=()
  for r in $(seq "$rounds"); do
    line=$($bin bench --model "$cfg" --size "$size" --batch "$batch" --mode "$mode" --classes 20 --threads "$threads" --iters "$iters" --warmup 2)
    echo "dettrain $name: $line"
    d_ips+=("$(echo "$line" | field IPS)"); d_rss+=("$(echo "$line" | field peakMiB)")
    if [ "$have_torch" = 1 ]; then
      tm=$mode; [ "$mode" = infer ] && tm=eval
      line=$(/usr/bin/python3 "$peer" --model "$tmodel" --size "$size" --batch "$batch" --mode "$tm" --classes 20 --threads "$threads" --iters "$iters" --warmup 2)
      echo "pytorch  $name: $line"
      t_ips+=("$(echo "$line" | field IPS)"); t_rss+=("$(echo "$line" | field peakMiB)")
    fi
  done
  di=$(printf '%s\n' "${d_ips[@]}" | median); dr=$(printf '%s\n' "${d_rss[@]}" | median)
  if [ "$have_torch" = 1 ]; then
    ti=$(printf '%s\n' "${t_ips[@]}" | median); tr=$(printf '%s\n' "${t_rss[@]}" | median)
    ratio=$(awk -v a="$di" -v b="$ti" 'BEGIN {printf "%.2f", a/b}')
    rows+="| $name | $di | $ti | $ratio | $dr | $tr |"$'\n'
  else
    rows+="| $name | $di | - | - | $dr | - |"$'\n'
  fi
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
# Everything from the notes marker on in the old file (the analysis written by
# hand from profiles) is kept below the new table.
marker='<!-- notes: kept by scripts/bench.sh -->'
notes=""
if [ -f "$out" ] && grep -qF "$marker" "$out"; then
  notes=$(awk -v m="$marker" 'index($0, m) {f = 1} f' "$out")
fi
torchv=$([ "$have_torch" = 1 ] && /usr/bin/python3 -c 'import torch; print(torch.__version__)' || echo none)
cat > "$out" <<MD
# Benchmarks

Written by \`make bench\` (scripts/bench.sh, $rounds interleaved rounds per workload, medians)
on $(date -u +%Y-%m-%d): $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')),
$threads threads on both sides, 20 classes, synthetic input; dettrain $(git rev-parse --short HEAD)
with $($bin version | sed 's/^dettrain //'); PyTorch $torchv (../shared/bench/torch_yolov3.py).
img/s is images per second of a whole training step (forward, backward, SGD update) or of
inference; peak RSS is each process's high-water mark.

| workload | dettrain img/s | PyTorch img/s | ratio | dettrain peak MiB | PyTorch peak MiB |
|---|---|---|---|---|---|
$rows
Machine load: load average $load_before before, $load_after after; other busy processes at
the start: ${busy:-none}.

Rerun: \`make bench\` (or \`scripts/bench.sh 5\` for 5 rounds). Other load on the machine
changes the absolute numbers; the ratios come from interleaved runs.

${notes}
MD
echo "bench: wrote $out"
