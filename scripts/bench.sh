#!/usr/bin/env bash
# make bench: dettrain's CPU benchmark table, interleaved with the PyTorch peer
# (../shared/bench/torch_yolov3.py) when /usr/bin/python3 has torch, written
# to docs/BENCHMARKS.md. Same model, input size, batch, class count and thread
# count on both sides; each workload alternates dettrain and PyTorch ROUNDS
# times and reports medians (the ratio is the median of the rounds' ratios,
# each from two runs side by side in time). Usage: scripts/bench.sh [ROUNDS]
# (default 3). docs/BENCHMARKS.md keeps its hand-written notes (from the
# notes marker) and its GPU section (from a line "## GPU" on) below the table.
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
# (iterations: ~10 s of timed steps per run where affordable; a step's time
# varies by 10-20% on a shared 2-core VM, so short runs give noisy medians)
workloads=(
  "yolov3-tiny train 256 b8|configs/models/yolov3-tiny.cfg|tiny|256|8|train|20"
  "yolov3-tiny train 416 b8|configs/models/yolov3-tiny.cfg|tiny|416|8|train|8"
  "yolov3-tiny infer 416 b8|configs/models/yolov3-tiny.cfg|tiny|416|8|infer|12"
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
  d_ips=(); d_rss=(); t_ips=(); t_rss=(); ratios=()
  for r in $(seq "$rounds"); do
    line=$($bin bench --model "$cfg" --size "$size" --batch "$batch" --mode "$mode" --classes 20 --threads "$threads" --iters "$iters" --warmup 2)
    echo "dettrain $name: $line"
    d_ips+=("$(echo "$line" | field IPS)"); d_rss+=("$(echo "$line" | field peakMiB)")
    if [ "$have_torch" = 1 ]; then
      tm=$mode; [ "$mode" = infer ] && tm=eval
      line=$(/usr/bin/python3 "$peer" --model "$tmodel" --size "$size" --batch "$batch" --mode "$tm" --classes 20 --threads "$threads" --iters "$iters" --warmup 2)
      echo "pytorch  $name: $line"
      t_ips+=("$(echo "$line" | field IPS)"); t_rss+=("$(echo "$line" | field peakMiB)")
      ratios+=("$(awk -v a="${d_ips[-1]}" -v b="${t_ips[-1]}" 'BEGIN {printf "%.2f", a/b}')")
    fi
  done
  di=$(printf '%s\n' "${d_ips[@]}" | median); dr=$(printf '%s\n' "${d_rss[@]}" | median)
  if [ "$have_torch" = 1 ]; then
    ti=$(printf '%s\n' "${t_ips[@]}" | median); tr=$(printf '%s\n' "${t_rss[@]}" | median)
    ratio=$(printf '%s\n' "${ratios[@]}" | median | awk '{printf "%.2f", $1}')
    rows+="| $name | $di | $ti | $ratio | $(IFS=,; echo "${ratios[*]}" | sed 's/,/, /g') | $dr | $tr |"$'\n'
  else
    rows+="| $name | $di | - | - | - | $dr | - |"$'\n'
  fi
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
# Kept from the old file, below the new table: the notes written by hand from
# profiles (from the marker up to the GPU section) and the GPU section (from a
# line "## GPU" to the end), which another command's results fill.
marker='<!-- notes: kept by scripts/bench.sh -->'
notes=""; gpu=""
if [ -f "$out" ]; then
  gpu=$(awk '/^## GPU/ {f = 1} f' "$out")
  if grep -qF "$marker" "$out"; then
    notes=$(awk -v m="$marker" 'index($0, m) {f = 1} /^## GPU/ {f = 0} f' "$out")
  fi
fi
torchv=$([ "$have_torch" = 1 ] && /usr/bin/python3 -c 'import torch; print(torch.__version__)' || echo none)
cat > "$out" <<MD
# Benchmarks

Written by \`make bench\` (scripts/bench.sh, $rounds interleaved rounds per workload, medians)
on $(date -u +%Y-%m-%d): $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')),
$threads threads on both sides, 20 classes, synthetic input; dettrain $(git rev-parse --short HEAD)
with $($bin version | sed 's/^dettrain //'); PyTorch $torchv (../shared/bench/torch_yolov3.py).
img/s is images per second of a whole training step (forward, backward, SGD update) or of
inference: each run's median step (20 timed steps at 256, 8 at 416, 12 inference, 3 for yolov3,
after 2 warm-up steps), then the median over the rounds; ratio is the median over the rounds of
dettrain's img/s over PyTorch's run right after it. Peak RSS is each process's high-water mark.

| workload | dettrain img/s | PyTorch img/s | ratio | ratio per round | dettrain peak MiB | PyTorch peak MiB |
|---|---|---|---|---|---|---|
$rows
Machine load: load average $load_before before, $load_after after; other busy processes at
the start: ${busy:-none}.

Rerun: \`make bench\` (or \`scripts/bench.sh 5\` for 5 rounds). Other load on the machine
changes the absolute numbers; the ratios come from interleaved runs.

${notes}
MD
if [ -n "$gpu" ]; then
  printf '\n%s\n' "$gpu" >> "$out"
fi
echo "bench: wrote $out"
