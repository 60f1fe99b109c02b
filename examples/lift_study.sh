#!/usr/bin/env bash
# Does cross guidance teach the RGB encoder motion? Re-runs ONLY the cross stage of a finished demo
# with other recipes (same data, same random-init and stage-1 runs, same protocol) and prints, per
# recipe, the paired change of RGB (and MV) from stage 1 to stage 2 with its 95 % interval.
#   usage: examples/lift_study.sh BASE_DEMO_DIR [OUT]     (BIN=.venv/bin; default OUT=BASE/study)
# Recipes are "name|cross-stage flags[|cross-stage start: init or random]"; override with STUDY_RECIPES
# (newline-separated). The defaults are the paper's ablations: union instead of intersection, no
# stage 1 (cross guidance from random init), and the number of mined neighbours k.
set -euo pipefail
BASE=${1:?usage: examples/lift_study.sh BASE_DEMO_DIR [OUT]}
OUT=${2:-$BASE/study}
BIN=${BIN:-.venv/bin}
EPOCHS=${DEMO_CROSS_EPOCHS:-6}
RECIPES=${STUDY_RECIPES:-"union|--mode union
no-stage-1|--mode intersection|random
k=1|--topk 1
k=10|--topk 10
k=20|--topk 20"}
[ -f "$BASE/runs/init-rgb/last.pt" ] || { echo "error: $BASE has no finished demo (runs/init-rgb/last.pt); run examples/demo.sh $BASE first" >&2; exit 1; }
# The cross stage trains with the base demo's seed (DEMO_SEED), so each recipe differs from the base only in its flags.
if [ -z "${DEMO_SEED:-}" ]; then
    DEMO_SEED=$("$BIN/python" -c '
import json, sys
try:
    print(int(json.load(open(sys.argv[1]))["config"]["seed"]))
except (OSError, ValueError, KeyError, TypeError) as e:
    sys.exit(f"error: no training seed in {sys.argv[1]} ({e!r}); set DEMO_SEED to the base run'"'"'s seed")' \
        "$BASE/runs/init-rgb/config.json")
    export DEMO_SEED
fi
echo "base demo $BASE, training seed $DEMO_SEED"
mkdir -p "$OUT"
while IFS='|' read -r name flags from; do
    [ -n "$name" ] || continue
    echo "=== recipe $name: cross stage with $flags, from ${from:-init}"
    DEMO_REUSE_STAGE1="$BASE" DEMO_CROSS_FLAGS="$flags" DEMO_CROSS_FROM="${from:-init}" BIN="$BIN" \
        bash examples/demo.sh "$OUT/$name" > "$OUT/$name.log" 2>&1 \
        || { echo "recipe $name failed; see $OUT/$name.log" >&2; continue; }
done <<< "$RECIPES"
echo
echo "| recipe | view | measure | change | points [95 % CI] |"
echo "|---|---|---|---|---|"
for report in "$BASE/report/report.md" "$OUT"/*/report/report.md; do
    [ -f "$report" ] || continue
    name=$(basename "$(dirname "$(dirname "$report")")")
    [ "$report" = "$BASE/report/report.md" ] && name="base (demo)"
    grep -E '^\| (rgb|mv) \| (R@1|linear top-1) \| stage 2 \(cross\) − (stage 1 \(init\)|random init)' "$report" \
        | awk -F'|' -v n="$name" '{sub(/ \(cross\)/, "", $4); sub(/ \(init\)/, "", $4); printf "| %s |%s|%s|%s|%s|\n", n, $2, $3, $4, $5}'
done
