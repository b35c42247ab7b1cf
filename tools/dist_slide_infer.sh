#!/usr/bin/env bash
# bash tools/dist_slide_infer.sh CONFIG CHECKPOINT SLIDE_OR_FOLDER N [slide_infer.py options]:
# tools/slide_infer.py on N processes of this machine (N GPUs, or N CPU
# processes with gloo when no GPU is visible). The tiles of each slide are
# split over the processes; rank 0 merges and writes the outputs.
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT (tools/dist_run.sh).
set -e
CONFIG=$1
CHECKPOINT=$2
SLIDES=$3
NPROC=$4
exec bash "$(dirname "$0")/dist_run.sh" slide_infer.py "$NPROC" "$CONFIG" "$CHECKPOINT" "$SLIDES" "${@:5}"
