#!/usr/bin/env bash
# cervdet's own CPU starting point for the CRIC detectors (no ImageNet
# weights can be downloaded here): DINO on unlabeled 128 px tiles of the
# CRIC training and validation fields (never the test fields), then the
# teacher backbone converted for the *_dino-init_* detector configs.
# Each step is skipped when its output exists (resumable).
#   bash tools/cric_dino_init.sh            # after cric_to_coco.py
# Output: data/pretrained/dino_r18-w32_cric-tiles.pth
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$(bash tools/setup_env.sh --print-venv)/bin/python}"
DATA=data/cric-cervix
TILES=data/cric-tiles
WORK=work_dirs/dino_r18-w32_cric-tiles
OUT=data/pretrained/dino_r18-w32_cric-tiles.pth
DINO_CFG=configs/ssl/dino_resnet18-w32_sgd-6e_cric-tiles.py
DET_CFG=configs/retinanet/retinanet_r18-w32_fpn_adam-12e_1xb4_cric-cervix-512.py
if [[ -f "$OUT" ]]; then
  echo "[cric_dino_init] $OUT exists: nothing to do"; exit 0
fi
if [[ ! -f "$DATA/splits.csv" ]]; then
  echo "error: $DATA/splits.csv not found: run tools/dataset_converters/cric_to_coco.py first" >&2
  exit 2
fi
if [[ ! -f "$TILES/tiles.json" ]]; then
  # the half-size JPEG fields of the train and val splits (test never seen)
  mapfile -t FIELDS < <(awk -F, 'NR>1 && $2!="test" && $1 ~ /\.jpg$/ {print "'"$DATA"'/images/"$1}' "$DATA/splits.csv")
  "$PY" tools/ssl/extract_tiles.py "${FIELDS[@]}" --out-dir "$TILES" \
    --tile-size 128 --stride 128 --min-tissue 0.1 --resume --no-progress | tail -n 1
fi
CKPT="$WORK/epoch_6.pth"
if [[ ! -f "$CKPT" ]]; then
  RESUME=()
  [[ -f "$WORK/last_checkpoint" ]] && RESUME=(--resume)
  "$PY" tools/train.py "$DINO_CFG" --work-dir "$WORK" "${RESUME[@]}"
fi
mkdir -p "$(dirname "$OUT")"
"$PY" tools/ssl/convert_backbone.py "$CKPT" --out "$OUT" --source teacher \
  --check-config "$DET_CFG"
echo "[cric_dino_init] wrote $OUT"
