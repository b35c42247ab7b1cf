#!/usr/bin/env bash
# Install everything (once; later runs reuse the cached environment) and run
# the test suite. Extra arguments go to pytest, e.g. `bash tools/run_tests.sh -k dataset`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup_env.sh"
VENV="$(bash "$ROOT/tools/setup_env.sh" --print-venv)"
cd "$ROOT"
# One OpenMP thread per process: the suite runs multi-process jobs, and
# oversubscribed OpenMP threads stall each other (docs/distributed.md).
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
# No arguments: every test under tests/ (setup.cfg testpaths).
exec "$VENV/bin/python" -m pytest "$@"
