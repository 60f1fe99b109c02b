#!/usr/bin/env bash
# The README's main job on built-in data, end to end on CPU:
#   synth -> shard -> verify -> stage 1 (RGB, MV) -> stage 2 (cross) -> retrieval + linear probe.
# A short schedule (DEMO_EPOCHS per stage, tiny encoder) so it runs in minutes on 2 cores; the
# lift study of issue 6 (longer runs, noise of every row) builds on it.
#   usage: examples/demo.sh [OUT]   (default OUT=demo; BIN=.venv/bin)
set -euo pipefail
OUT=${1:-demo}
BIN=${BIN:-.venv/bin}
EPOCHS=${DEMO_EPOCHS:-4}
WORKERS=${DEMO_WORKERS:-2}
mkdir -p "$OUT"

[ -f "$OUT/data/classInd.txt" ] || "$BIN/compvid" synth "$OUT/data"
[ -f "$OUT/shards/index.json" ] || "$BIN/compvid" shard "$OUT/data" --out "$OUT/shards" --max-count 64
"$BIN/compvid" verify "$OUT/shards" --source "$OUT/data"
# Shard URLs as WebDataset brace patterns, e.g. demo/shards/train-{000000..000002}.tar
urls() { local n; n=$(ls "$OUT"/shards/"$1"-*.tar | wc -l); printf '%s/shards/%s-{000000..%06d}.tar' "$OUT" "$1" $((n - 1)); }
TRAIN=$(urls train)
TEST=$(urls test)

common=(--preset tiny-cpu --data "$TRAIN" --workers "$WORKERS" --device cpu --epochs "$EPOCHS")
"$BIN/mvcgc" pretrain --stage init --view rgb --out "$OUT/runs/init-rgb" "${common[@]}"
"$BIN/mvcgc" pretrain --stage init --view mv --out "$OUT/runs/init-mv" "${common[@]}"
"$BIN/mvcgc" pretrain --stage cross --init-rgb "$OUT/runs/init-rgb/last.pt" --init-mv "$OUT/runs/init-mv/last.pt" \
    --out "$OUT/runs/cross" "${common[@]}"

mkdir -p "$OUT/results"
eval_common=(--train "$TRAIN" --test "$TEST" --workers "$WORKERS" --device cpu --cache-dir "$OUT/cache")
for view in rgb mv; do
    "$BIN/mvcgc" retrieve --ckpt "$OUT/runs/init-$view/last.pt" --view "$view" "${eval_common[@]}" \
        --json "$OUT/results/retrieve-init-$view.json"
done
for view in rgb mv both; do
    "$BIN/mvcgc" retrieve --ckpt "$OUT/runs/cross/last.pt" --view "$view" "${eval_common[@]}" \
        --json "$OUT/results/retrieve-cross-$view.json"
done
"$BIN/mvcgc" linear --ckpt "$OUT/runs/cross/last.pt" --view rgb --epochs 30 "${eval_common[@]}" \
    --json "$OUT/results/linear-cross-rgb.json"
"$BIN/compvid" inspect "$(ls "$OUT"/data/*/*.mp4 | head -n 1)" --png "$OUT/results/motion-vectors.png"
echo "demo finished: results in $OUT/results, runs in $OUT/runs"
