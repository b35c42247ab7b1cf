#!/usr/bin/env bash
# bash tools/dist_test.sh CONFIG CHECKPOINT N [test.py options]: tools/test.py
# on N processes of this machine (N GPUs, or N CPU processes with gloo when no
# GPU is visible). Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT as with
# MMDetection's script (tools/dist_run.sh).
set -e
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
exec bash "$(dirname "$0")/dist_run.sh" test.py "$NPROC" "$CONFIG" "$CHECKPOINT" "${@:4}"
