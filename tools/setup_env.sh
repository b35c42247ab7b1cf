#!/usr/bin/env bash
# Create (once) and update the cervdet Python environment.
#
# Usage: bash tools/setup_env.sh            # prints nothing but progress; idempotent
#        source "$(bash tools/setup_env.sh --print-venv)/bin/activate"
#
# The environment is a virtualenv outside the checkout, reused by every clone:
#   CERVDET_VENV        (default: ~/.cache/cervdet/venv-<stack tag>)
#   CERVDET_WHEEL_CACHE (default: ~/.cache/cervdet/wheels) holds the compiled mmcv
#                       wheel, so mmcv is built once per machine (~30 min on 2 cores)
#   CERVDET_PYTHON      (default: python3.11, else python3)
# A second run only re-installs cervdet in editable mode (seconds).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=/dev/null
source "$ROOT/requirements/stack.env"
STACK_TAG="py311-torch${TORCH_VERSION}-mmcv${MMCV_VERSION}-mmdet${MMDET_VERSION}"
CACHE="${CERVDET_CACHE:-$HOME/.cache/cervdet}"
VENV="${CERVDET_VENV:-$CACHE/venv-$STACK_TAG}"
WHEELS="${CERVDET_WHEEL_CACHE:-$CACHE/wheels}"

if [[ "${1:-}" == "--print-venv" ]]; then
  echo "$VENV"
  exit 0
fi

log() { echo "[setup_env] $*" >&2; }

PY="${CERVDET_PYTHON:-}"
if [[ -z "$PY" ]]; then
  if command -v python3.11 >/dev/null 2>&1; then PY=python3.11; else PY=python3; fi
fi

STAMP="$VENV/.cervdet-stack-ok"
# The stamp records the requirement files it was made from: edit one and the
# next run installs what changed (pip skips what is already there).
REQ_HASH=$(cat "$ROOT/requirements/stack.env" "$ROOT/requirements/runtime.txt" \
  "$ROOT/requirements/tests.txt" | sha256sum | cut -d' ' -f1)
if [[ "$(cat "$STAMP" 2>/dev/null)" != "$REQ_HASH" ]]; then
  if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV with $($PY --version)"
    "$PY" -m venv "$VENV"
  fi
  # Every step below is idempotent: an interrupted set-up resumes where it stopped.
  VPIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
  # setuptools < 81 still ships pkg_resources (mmcv's setup.py and mmengine's
  # `mmdet::` config lookups import it).
  "${VPIP[@]}" install -q --upgrade pip "setuptools<81" wheel
  log "installing torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION"
  "${VPIP[@]}" install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
  "${VPIP[@]}" install -q -r "$ROOT/requirements/runtime.txt"

  mkdir -p "$WHEELS"
  MMCV_WHL=$(ls "$WHEELS"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n1 || true)
  if [[ -z "$MMCV_WHL" ]]; then
    log "building mmcv==$MMCV_VERSION with ops (once per machine; 30 min measured on 2 busy cores)"
    BUILD="$(mktemp -d)"
    "${VPIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV_VERSION" -d "$BUILD"
    tar -xzf "$BUILD"/mmcv-"$MMCV_VERSION".tar.gz -C "$BUILD"
    # torch >= 2.10 headers need C++20; mmcv 2.1.0 hard-codes -std=c++17.
    sed -i 's/-std=c++17/-std=c++20/g' "$BUILD/mmcv-$MMCV_VERSION/setup.py"
    MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
      "${VPIP[@]}" wheel -q --no-build-isolation --no-deps \
      "$BUILD/mmcv-$MMCV_VERSION" -w "$BUILD/dist"
    cp "$BUILD"/dist/mmcv-*.whl "$WHEELS"/
    rm -rf "$BUILD"
    MMCV_WHL=$(ls "$WHEELS"/mmcv-"$MMCV_VERSION"-*.whl | head -n1)
  else
    log "using cached $MMCV_WHL"
  fi
  "${VPIP[@]}" install -q "$MMCV_WHL"
  "${VPIP[@]}" install -q "mmengine==$MMENGINE_VERSION" "mmdet==$MMDET_VERSION" \
    "mmpretrain==$MMPRETRAIN_VERSION"
  "${VPIP[@]}" install -q -r "$ROOT/requirements/tests.txt"
  "$VENV/bin/python" -c "import mmcv.ops, mmdet, mmpretrain, torch; print('stack ok: torch', torch.__version__, 'mmcv', mmcv.__version__, 'mmdet', mmdet.__version__, 'mmpretrain', mmpretrain.__version__)"
  echo "$REQ_HASH" > "$STAMP"
fi

# cervdet itself: editable, without touching the pinned stack.
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e "$ROOT"
log "environment ready: $VENV"
