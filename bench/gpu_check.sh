#!/usr/bin/env bash
# One-shot GPU check, run once on a lent CUDA machine (figures go into the README's GPU section):
#   1. training-step throughput of S3D at the paper's clip (32x128x128, batch 32): bf16 vs fp32
#      (bench_train.py: plain MoCo vs cross step, videos/s of each stage);
#   2. the data loader: clips/s of the pretraining stream with N workers (bench_data.py), and an
#      end-to-end cross-stage run from shards whose videos/s is compared with the GPU-only rate;
#   3. a longer demo (examples/demo.sh, same data and protocol as the CPU demo, more epochs).
# Each part has its own time limit so one slow part cannot starve the rest.
#   usage: bash bench/gpu_check.sh OUT        (GPU_CHECK_SMOKE=1: tiny sizes on the CPU, to test the script;
#          GPU_CHECK_PARTS="e2e demo-long": only those parts; GPU_CHECK_COPY=DIR: copy each log there when done)
set -uo pipefail
OUT=${1:-gpu-check}
PY=${PY:-python3}
WORKERS=${GPU_CHECK_WORKERS:-$(( $(nproc) > 2 ? $(nproc) - 2 : 1 ))}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
# console scripts without installing the project: thin wrappers around the CLIs of this checkout
BIN="$OUT/bin"
mkdir -p "$BIN"
for tool in compvid mvcgc; do
    printf '#!/bin/sh\nexec %s -c "from cli.%s import main; main()" "$@"\n' "$PY" "$tool" > "$BIN/$tool"
    chmod +x "$BIN/$tool"
done
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

if [ "${GPU_CHECK_SMOKE:-0}" = 1 ]; then
    DEV=cpu; ARCH=tiny; T=8; S=32; B=4; Q=16; STEPS=2; VIDS=16; E2E_STEPS=4
    DEMO_ENV=(DEMO_VIDEOS_PER_CLASS=8 DEMO_TEST_GROUPS=1 DEMO_EPOCHS=1 DEMO_CROSS_EPOCHS=1 DEMO_LINEAR_EPOCHS=2)
    LIMIT_TRAIN=300; LIMIT_DATA=300; LIMIT_E2E=300; LIMIT_DEMO=600
else
    DEV=cuda; ARCH=s3d; T=32; S=128; B=32; Q=2048; STEPS=10; VIDS=96; E2E_STEPS=40
    DEMO_ENV=(DEMO_EPOCHS=${GPU_DEMO_EPOCHS:-40} DEMO_CROSS_EPOCHS=${GPU_DEMO_EPOCHS:-40})
    LIMIT_TRAIN=100; LIMIT_DATA=80; LIMIT_E2E=${GPU_E2E_LIMIT:-120}; LIMIT_DEMO=${GPU_DEMO_LIMIT:-270}
fi
PARTS=" ${GPU_CHECK_PARTS:-train-bf16 train-fp32 data e2e demo-long} "  # run only some, e.g. to retry one
part() {  # part NAME LIMIT_S CMD...: run CMD with a time limit, log to OUT/NAME.log, say how it ended
    local name=$1 limit=$2 t0=$SECONDS rc
    shift 2
    [[ $PARTS == *" $name "* ]] || return 0
    echo "=== $name (limit ${limit}s)"
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    tail -n 25 "$OUT/$name.log"
    echo "=== $name: rc=$rc in $((SECONDS - t0))s" | tee -a "$OUT/$name.log"
    [ -z "${GPU_CHECK_COPY:-}" ] || cp "$OUT/$name.log" "$GPU_CHECK_COPY/"  # what comes back if the rest is cut off
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
  "$PY" -c "import torch, torchvision, av, numpy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
torch.cuda.get_device_name() if torch.cuda.is_available() else '', 'torchvision', torchvision.__version__,
'av', av.__version__, 'numpy', numpy.__version__)"
  echo "cpus $(nproc), loader workers $WORKERS"; } | tee "$OUT/env.txt"

part train-bf16 "$LIMIT_TRAIN" "$PY" bench/bench_train.py --arch "$ARCH" --device "$DEV" --frames "$T" --size "$S" \
    --batch "$B" --queue-size "$Q" --steps "$STEPS"
part train-fp32 "$LIMIT_TRAIN" "$PY" bench/bench_train.py --arch "$ARCH" --device "$DEV" --frames "$T" --size "$S" \
    --batch "$B" --queue-size "$Q" --steps "$STEPS" --no-amp
part data "$LIMIT_DATA" "$PY" bench/bench_data.py --frames "$T" --size "$S" --videos "$VIDS" --workers "$WORKERS" \
    --views both --batch "$B" --repeat 1

# End to end: the cross stage reading shards of 320x240 synthetic videos with WORKERS loader processes.
e2e() {
    "$BIN/compvid" synth "$OUT/e2e/data" --videos-per-class $((VIDS / 8)) --size 320x240 --frames 64 \
        --codecs h264,mpeg4 --test-groups 0 --workers 8 &&
    "$BIN/compvid" shard "$OUT/e2e/data" --out "$OUT/e2e/shards" --max-count 4 &&
    "$BIN/mvcgc" pretrain --stage cross --arch "$ARCH" --data "$(ls "$OUT"/e2e/shards/*.tar | paste -sd " " -)" \
        --num-frames "$T" --size "$S" --batch-size "$B" --queue-size "$Q" --steps "$E2E_STEPS" \
        --workers "$WORKERS" --device "$DEV" --out "$OUT/e2e/run" &&
    "$PY" - "$OUT/e2e/run/metrics.jsonl" <<'EOF'
import json, statistics, sys
rates = [r["samples_per_s"] for r in map(json.loads, open(sys.argv[1])) if r["event"] == "step"]
steady = rates[len(rates) // 4:]  # past the loader's warm-up
print(f"end-to-end cross stage: {statistics.median(steady):.1f} videos/s (median of steps {len(rates) - len(steady) + 1}-{len(rates)})")
EOF
}
export OUT BIN PY VIDS ARCH T S B Q E2E_STEPS WORKERS DEV
export -f e2e
part e2e "$LIMIT_E2E" bash -c e2e

part demo-long "$LIMIT_DEMO" env "${DEMO_ENV[@]}" DEMO_DEVICE="$DEV" DEMO_WORKERS="$WORKERS" BIN="$BIN" \
    bash examples/demo.sh "$OUT/demo-long"
if [ -f "$OUT/demo-long/report/report.md" ]; then
    head -n 40 "$OUT/demo-long/report/report.md"
    [ -z "${GPU_CHECK_COPY:-}" ] || cp "$OUT/demo-long/report/report.md" "$OUT/demo-long/report/results.png" "$GPU_CHECK_COPY/"
fi
[ -z "${GPU_CHECK_COPY:-}" ] || cp "$OUT/env.txt" "$GPU_CHECK_COPY/"
echo "gpu check done: $OUT"
