#!/usr/bin/env bash
# The MoW paper's CIFAR-10 and CelebA rows on a GPU, and the memory of FFHQ 1024² steps: a second
# device run after benchmarks/gpu_check.sh, about 9 minutes on one H100/H200. Each step has its own time
# limit. Runs are run folders under RUNS (default: a temporary folder, so that OUT keeps only the
# few files a device run brings back); on a machine that keeps RUNS, a later call resumes them and
# the tables grow (raise EPOCHS).
#
#   OUT=benchmarks/out/tables DATA=data EPOCHS=2 bash benchmarks/gpu_tables.sh
#   BUDGET=240 OUT=benchmarks/out/tables DATA=data bash benchmarks/gpu_tables.sh  # within 240 s
#   DRY=1 OUT=/tmp/tables DATA=../shared/data bash benchmarks/gpu_tables.sh   # tiny, on the CPU
#
# DATA holds cifar10/cifar10-jpg-q75-test10k-train10k.zip, celeba/celeba-aligned-89x109-000001-008000.zip
# and ffhq/ (the partial copies of ../shared/data: 10,000 CIFAR-10 and 7,200 CelebA training
# images, so the rows are not the paper's data sets in full). Writes under OUT: log.txt,
# paper.md (the reference's window and rates, `distmatch reproduce mow`), unbiased.md (the
# defaults: unbiased window, rate rule, refresh; benchmarks/k1_quality.py), ffhq.txt (memory).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/out/tables}
DATA=${DATA:-data}
DRY=${DRY:-}
EPOCHS=${EPOCHS:-2}
RUNS=${RUNS:-${TMPDIR:-/tmp}/distmatch-tables}
mkdir -p "$OUT" "$RUNS"
# absolute: tests that start processes in other folders (torchrun, pytest in a subprocess) need it
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
py=${PYTHON:-python}
device=cuda ks=64,32,1 ffhq_size=1024 ffhq_ks=1,16,64 limit=150
if [ -n "$DRY" ]; then
    device=cpu ks=64 EPOCHS=1 ffhq_size=256 ffhq_ks=1 limit=600
fi
cifar="$DATA/cifar10/cifar10-jpg-q75-test10k-train10k.zip"
celeba="$DATA/celeba/celeba-aligned-89x109-000001-008000.zip"

. benchmarks/gpu_steps.sh  # step NAME LIMIT_S FILE COMMAND...

for dataset in cifar10 celeba; do
    dir=$cifar
    [ "$dataset" = celeba ] && dir=$celeba
    step "$dataset-paper" "$limit" paper.md "$py" -m distmatch reproduce mow --dataset "$dataset" \
        --data-dir "$dir" --k "$ks" --epochs "$EPOCHS" --jobs 3 --device "$device" \
        --out "$RUNS/paper-$dataset" --no-progress
    step "$dataset-unbiased" "$limit" unbiased.md "$py" benchmarks/k1_quality.py \
        --data-root "$DATA" --datasets "$dataset" --models cwae,wae,swae --ks "$ks" \
        --epochs "$EPOCHS" --jobs 3 --device "$device" --out "$RUNS/unbiased-$dataset"
done

# FFHQ at 1024², k = 1: the memory of a step against a plain one. (A training run needs the data
# set: the two FFHQ images here are too few for its test split.)
step ffhq-memory 120 ffhq.txt "$py" benchmarks/mow_memory.py --arch ffhq_conv --size "$ffhq_size" \
    --k "$ffhq_ks" --modes plain,mow,classical --device "$device"
cat "$OUT/log.txt"
