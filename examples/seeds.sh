#!/usr/bin/env bash
# The demo under several training seeds (DEMO_SEED = 0 .. N-1; the data stay the same), then one
# table: per seed the paired change of RGB and MV from stage 1 and from random init to stage 2
# (95 % intervals over the test videos) and the mean over seeds.
#   usage: examples/seeds.sh [OUT] [N]     (default OUT=demo-seeds, N=3; BIN=.venv/bin)
# Every DEMO_* knob of examples/demo.sh applies. Seed 0's data, shards and decoded windows are
# shared by the others (the data do not depend on the training seed).
set -euo pipefail
OUT=${1:-demo-seeds}
N=${2:-3}
BIN=${BIN:-.venv/bin}
mkdir -p "$OUT"
for seed in $(seq 0 $((N - 1))); do
    run="$OUT/seed-$seed"
    if [ "$seed" -gt 0 ]; then
        mkdir -p "$run"
        for d in data shards cache; do [ -e "$run/$d" ] || ln -s "$(cd "$OUT/seed-0" && pwd)/$d" "$run/$d"; done
    fi
    echo "=== seed $seed -> $run"
    DEMO_SEED=$seed DEMO_DATA_SEED=0 BIN="$BIN" bash examples/demo.sh "$run" > "$run.log" 2>&1 \
        || { echo "seed $seed failed; see $run.log" >&2; exit 1; }
done
"$BIN/mvcgc" seeds "$OUT"/seed-* --out "$OUT/seeds.md"
