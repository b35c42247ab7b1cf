#!/usr/bin/env bash
# The main job, from a fresh machine: install everything (once), turn the real
# CRIC Cervix fields in ../shared/data (CRIC's expert nucleus points) into a
# COCO detection set split per field, make cervdet's own DINO starting point
# on unlabeled tiles of the training fields (once), train the CPU RetinaNet
# from it, evaluate it on the held-out test fields (COCO AP/AP50/AP75/AR,
# per-class AP and the point metric: abnormal recall / precision / F1, FROC)
# and draw its predictions next to the marked cells of a real field.
# Each run writes to a new work_dirs/quickstart/<timestamp>/.
#   CERVDET_SHARED_DATA  the shared data folder (default ../shared/data)
#   CONFIG               the detector config (default: the CPU RetinaNet
#                        started from the DINO backbone)
#   NO_DINO=1            skip the DINO step and train from scratch
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/setup_env.sh
PY="$(bash tools/setup_env.sh --print-venv)/bin/python"
export PYTHON="$PY"

stage() { echo "[quickstart] $1: $((SECONDS - T0)) s" | tee -a "$TIMES"; T0=$SECONDS; }
mkdir -p work_dirs/quickstart
TIMES=work_dirs/quickstart/stage_times.txt
echo "[quickstart] run of $(date -u +%FT%TZ), $(nproc) cores" >> "$TIMES"
T0=$SECONDS

SHARED="${CERVDET_SHARED_DATA:-$ROOT/../shared/data}"
DATA=data/cric-cervix
if [[ ! -f "$DATA/annotations/test.json" ]]; then
  "$PY" tools/dataset_converters/cric_to_coco.py \
    --csv "$SHARED/cric_cervix/classifications.csv" \
    --img-dir "$SHARED/cric_cervix/images" --img-dir "$SHARED/cric_cervix/native" \
    --out-dir "$DATA"
fi
"$PY" tools/dataset_converters/check_coco.py "$DATA/annotations/train.json" \
  --img-dir "$DATA/images"
stage "data (convert + check)"

if [[ "${NO_DINO:-0}" == "1" ]]; then
  CONFIG="${CONFIG:-configs/retinanet/retinanet_r18-w32_fpn_adam-12e_1xb4_cric-cervix-512.py}"
else
  bash tools/cric_dino_init.sh
  stage "DINO starting point (skipped if it exists)"
  CONFIG="${CONFIG:-configs/retinanet/retinanet_r18-w32_fpn_dino-init_adam-12e_1xb4_cric-cervix-512.py}"
fi

RUN="work_dirs/quickstart/$(date +%Y%m%d_%H%M%S)"
"$PY" tools/train.py "$CONFIG" --work-dir "$RUN"
stage "train $(basename "$CONFIG")"
CKPT="$(ls -t "$RUN"/epoch_*.pth | head -n1)"
"$PY" tools/test.py "$CONFIG" "$CKPT" --work-dir "$RUN/test" \
  --out "$RUN/test/predictions.pkl" --show-dir show
"$PY" tools/analysis_tools/draw_pred_vs_gt.py "$CONFIG" "$RUN/test/predictions.pkl" \
  --out-file "$RUN/pred_vs_gt.png"
stage "test + pictures"
echo "quickstart done: checkpoint $CKPT, picture $RUN/pred_vs_gt.png"
