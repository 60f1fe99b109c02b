#!/usr/bin/env bash
# The README's main job on built-in data, end to end:
#   synth -> shard -> verify -> random init, stage 1 (RGB, MV), stage 2 (cross)
#   -> retrieval and linear probe of every stage and view under one protocol -> report.
# Defaults (motion encoder, 16x64x64 clips) took 13 min 33 s on 2 CPU cores with nothing else
# running; the time depends on the core count and the machine's load (the same 2 cores shared with
# another job: 36 min). Every knob is an environment variable, so the longer runs of the report use
# the same script, e.g.
#   DEMO_DEVICE=cuda DEMO_WORKERS=12 DEMO_EPOCHS=40 DEMO_CROSS_EPOCHS=40 examples/demo.sh demo-long
#   usage: examples/demo.sh [OUT]   (default OUT=demo; BIN=.venv/bin)
set -euo pipefail
OUT=${1:-demo}
BIN=${BIN:-.venv/bin}
EPOCHS=${DEMO_EPOCHS:-6}                  # stage 1, per view
CROSS_EPOCHS=${DEMO_CROSS_EPOCHS:-$EPOCHS}
WORKERS=${DEMO_WORKERS:-2}
DEVICE=${DEMO_DEVICE:-cpu}
VIDEOS=${DEMO_VIDEOS_PER_CLASS:-48}       # 8 classes; groups of 4 clips go wholly to train or test
TEST_GROUPS=${DEMO_TEST_GROUPS:-6}        # 6 of 12 groups: 24 test + 24 train videos per class
LINEAR_EPOCHS=${DEMO_LINEAR_EPOCHS:-30}
SUPERVISED_EPOCHS=${DEMO_SUPERVISED_EPOCHS:-12}  # the labelled ceiling, per view (0: skip it)
SEED=${DEMO_SEED:-0}                      # training seed
DATA_SEED=${DEMO_DATA_SEED:-$SEED}        # seed of the synthetic videos
SCENE_BIAS=${DEMO_SCENE_BIAS:-0}          # compvid synth --scene-bias: share of class-coloured backgrounds
# extra pretrain flags for both stages, e.g. "--lr 3e-3 --queue-size 128"; cross stage only: DEMO_CROSS_FLAGS
read -r -a EXTRA <<< "${DEMO_FLAGS:-}"
read -r -a CROSS_EXTRA <<< "${DEMO_CROSS_FLAGS:-}"
# DEMO_REUSE_STAGE1=DIR: a finished demo whose data, random-init and stage-1 runs (and their results)
# this one shares, so that only the cross stage differs (the lift study varies the cross recipe).
REUSE=${DEMO_REUSE_STAGE1:-}
# DEMO_CROSS_FROM=random: the cross stage starts from the random-init weights instead of stage 1
# (the paper's "no stage 1" ablation); the report still compares it with stage 1 and random init.
CROSS_FROM=${DEMO_CROSS_FROM:-init}
case "$CROSS_FROM" in init|random) ;; *) echo "error: DEMO_CROSS_FROM=$CROSS_FROM; allowed values: init, random" >&2; exit 2 ;; esac
mkdir -p "$OUT/results" "$OUT/runs"
: > "$OUT/results/timings.tsv"
if [ -n "$REUSE" ]; then
    REUSE=$(cd "$REUSE" && pwd)
    for d in data shards cache; do [ -e "$OUT/$d" ] || ln -s "$REUSE/$d" "$OUT/$d"; done
    for r in random-rgb random-mv init-rgb init-mv; do [ -e "$OUT/runs/$r" ] || ln -s "$REUSE/runs/$r" "$OUT/runs/$r"; done
    cp "$REUSE"/results/{retrieve,linear}-{random,init}.json "$REUSE/results/motion-vectors.png" "$OUT/results/"
    for r in supervised-rgb supervised-mv; do [ ! -e "$REUSE/runs/$r" ] || [ -e "$OUT/runs/$r" ] || ln -s "$REUSE/runs/$r" "$OUT/runs/$r"; done
    for f in "$REUSE"/results/{retrieve,linear}-supervised.json; do [ ! -f "$f" ] || cp "$f" "$OUT/results/"; done
fi

# step NAME CMD...: run CMD, log its wall time (seconds) to results/timings.tsv for the report
step() {
    local name=$1 t0=$SECONDS
    shift
    echo "== $name" >&2
    "$@"
    printf '%s\t%s\n' "$name" $((SECONDS - t0)) >> "$OUT/results/timings.tsv"
}

[ -f "$OUT/data/classInd.txt" ] || step synth "$BIN/compvid" synth "$OUT/data" --videos-per-class "$VIDEOS" \
    --test-groups "$TEST_GROUPS" --seed "$DATA_SEED" --scene-bias "$SCENE_BIAS"
[ -f "$OUT/shards/index.json" ] || step shard "$BIN/compvid" shard "$OUT/data" --out "$OUT/shards" --max-count 16
step verify "$BIN/compvid" verify "$OUT/shards" --source "$OUT/data"
# Shard URLs as WebDataset brace patterns, e.g. demo/shards/train-{000000..000002}.tar
urls() { local n; n=$(ls "$OUT"/shards/"$1"-*.tar | wc -l); printf '%s/shards/%s-{000000..%06d}.tar' "$OUT" "$1" $((n - 1)); }
TRAIN=$(urls train)
TEST=$(urls test)

# No flips: the synthetic classes are mirror-sensitive (a flip turns MoveLeft into MoveRight and
# clockwise into counter-clockwise), so flipped clips carry the wrong label and, flipped apart,
# a positive pair moves in mirrored directions.
# --overwrite: a re-run of the demo into the same OUT trains every stage again.
common=(--preset tiny-cpu --data "$TRAIN" --workers "$WORKERS" --device "$DEVICE" --seed "$SEED" --flip-p 0
        --overwrite "${EXTRA[@]}")
for view in rgb mv; do
    [ -n "$REUSE" ] || step "random init $view" "$BIN/mvcgc" pretrain --stage init --view "$view" --steps 0 \
        --out "$OUT/runs/random-$view" "${common[@]}"
done
for view in rgb mv; do
    [ -n "$REUSE" ] || step "stage 1 $view" "$BIN/mvcgc" pretrain --stage init --view "$view" --epochs "$EPOCHS" \
        --out "$OUT/runs/init-$view" "${common[@]}"
done
step "stage 2 cross" "$BIN/mvcgc" pretrain --stage cross --epochs "$CROSS_EPOCHS" "${CROSS_EXTRA[@]}" \
    --init-rgb "$OUT/runs/$CROSS_FROM-rgb/last.pt" --init-mv "$OUT/runs/$CROSS_FROM-mv/last.pt" --out "$OUT/runs/cross" "${common[@]}"
# The ceiling: the same encoders trained from random weights WITH the labels, on the same clips.
if [ -z "$REUSE" ] && [ "$SUPERVISED_EPOCHS" -gt 0 ]; then
    for view in rgb mv; do
        step "supervised $view" "$BIN/mvcgc" pretrain --stage supervised --view "$view" --epochs "$SUPERVISED_EPOCHS" \
            --out "$OUT/runs/supervised-$view" "${common[@]}"
    done
fi

# One protocol for every row: centre crop of 16-frame sliding windows; linear probe on frozen features.
# results/{retrieve,linear}-<stage>.json are the names `mvcgc report` reads (mvcgc.results.result_name).
eval_common=(--train "$TRAIN" --test "$TEST" --workers "$WORKERS" --device "$DEVICE" --cache-dir "$OUT/cache"
             --view both)
stages=(random init cross)
[ -f "$OUT/runs/supervised-rgb/last.pt" ] && stages+=(supervised)
[ -z "$REUSE" ] || stages=(cross)
for stage in "${stages[@]}"; do
    if [ "$stage" = cross ]; then ckpts=(--ckpt "$OUT/runs/cross/last.pt")
    elif [ "$stage" = supervised ]; then ckpts=(--ckpt "$OUT/runs/supervised-rgb/last.pt" --ckpt "$OUT/runs/supervised-mv/last.pt")
    else ckpts=(--ckpt "$OUT/runs/$stage-rgb/last.pt" --ckpt "$OUT/runs/$stage-mv/last.pt"); fi
    step "retrieve $stage" "$BIN/mvcgc" retrieve "${ckpts[@]}" "${eval_common[@]}" \
        --json "$OUT/results/retrieve-$stage.json"
    step "linear $stage" "$BIN/mvcgc" linear "${ckpts[@]}" "${eval_common[@]}" --epochs "$LINEAR_EPOCHS" \
        --test-crops center --json "$OUT/results/linear-$stage.json"
done
[ -n "$REUSE" ] || step inspect "$BIN/compvid" inspect "$(ls "$OUT"/data/*/*.mp4 | head -n 1)" --png "$OUT/results/motion-vectors.png" \
    > /dev/null
"$BIN/mvcgc" report "$OUT" --title "mvcgc demo ($DEVICE, ${EPOCHS}+${CROSS_EPOCHS} epochs)"
echo "demo finished: report in $OUT/report/report.md, runs in $OUT/runs"
