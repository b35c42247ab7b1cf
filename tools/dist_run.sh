#!/usr/bin/env bash
# Shared launcher of dist_train.sh and dist_test.sh:
#   dist_run.sh SCRIPT NPROC ARGS...  runs tools/SCRIPT on NPROC processes of
# this machine with torch.distributed.run (N GPUs, or N CPU processes with
# gloo when no GPU is visible), appending `--launcher pytorch`. Multi-node: set
# NNODES, NODE_RANK, MASTER_ADDR, PORT as with MMDetection's scripts.
set -e
SCRIPT=$1
NPROC=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
"$PYTHON" -m torch.distributed.run \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --nproc_per_node=$NPROC \
    --master_port=$PORT \
    "$(dirname "$0")/$SCRIPT" \
    "${@:3}" \
    --launcher pytorch
