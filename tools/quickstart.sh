#!/usr/bin/env bash
# The main job, from a fresh machine: install everything (once), build a
# 512x512 cervical mosaic detection set from the real crops in ../shared/data,
# train the CPU-sized RetinaNet on it, evaluate it on the test split (COCO
# AP/AP50/AP75/AR and per-class AP) and draw predictions next to the ground
# truth. Each run writes to a new work_dirs/quickstart/<timestamp>/.
#   CERVDET_SHARED_DATA  the shared data folder (default ../shared/data)
#   CONFIG               the config to train (default: the CPU RetinaNet)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/setup_env.sh
PY="$(bash tools/setup_env.sh --print-venv)/bin/python"

SHARED="${CERVDET_SHARED_DATA:-$ROOT/../shared/data}"
CONFIG="${CONFIG:-configs/retinanet/retinanet_r18_fpn_adam-cpu_cervical-mosaic-bethesda-512.py}"
MOSAIC=data/cervical-mosaic-bethesda-512
if [[ ! -f "$MOSAIC/annotations/test.json" ]]; then
  "$PY" tools/dataset_converters/build_mosaic.py --source bethesda --preset 512 \
    --data-root "$SHARED" --out-dir "$MOSAIC"
fi
"$PY" tools/dataset_converters/check_coco.py "$MOSAIC/annotations/train.json" \
  --img-dir "$MOSAIC/images/train"

RUN="work_dirs/quickstart/$(date +%Y%m%d_%H%M%S)"
"$PY" tools/train.py "$CONFIG" --work-dir "$RUN"
CKPT="$(cat "$RUN/last_checkpoint")"
"$PY" tools/test.py "$CONFIG" "$CKPT" --work-dir "$RUN/test" \
  --out "$RUN/test/predictions.pkl" --show-dir show
"$PY" tools/analysis_tools/draw_pred_vs_gt.py "$CONFIG" "$RUN/test/predictions.pkl" \
  --out-file "$RUN/pred_vs_gt.png"
echo "quickstart done: checkpoint $CKPT, picture $RUN/pred_vs_gt.png"
