#!/usr/bin/env bash
# bash tools/dist_train.sh CONFIG N [train.py options]: tools/train.py on N
# processes of this machine (N GPUs, or N CPU processes with gloo when no GPU
# is visible). Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT as with
# MMDetection's script (tools/dist_run.sh).
set -e
CONFIG=$1
NPROC=$2
exec bash "$(dirname "$0")/dist_run.sh" train.py "$NPROC" "$CONFIG" "${@:3}"
