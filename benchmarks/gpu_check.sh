#!/usr/bin/env bash
# Every GPU check of distmatch, most valuable first, each under its own time limit so that a cut
# run still reports what it did. Two parts of about 7 and 6.5 minutes on one H100/H200, so that
# each fits a 10-minute command (PART=1, PART=2; both by default).
#
#   PART=1 OUT=benchmarks/out/gpu DATA=data bash benchmarks/gpu_check.sh   # on a CUDA machine
#   DRY=1 OUT=/tmp/gpu DATA=../shared/data bash benchmarks/gpu_check.sh    # the same steps, tiny, on the CPU
#
# DATA holds mnist/ (the four IDX files); without it the MNIST training row is skipped. Uses the
# source tree (PYTHONPATH=src) and the installed torch. Writes at most 8 files under OUT:
#   cuda.xml     the CUDA test module (junit: failures are named even if the run is cut)
#   suite.xml    the whole suite with the GPU visible
#   speed.txt    k = 1 step time against a plain step: eager, whole-step CUDA graph, compiled + graph
#   sketch.txt   sketching throughput against the bare product (d = 784 and 2)
#   train.txt    distmatch train on MNIST at k = 1, eager and --cuda-graph (steps/s), and fit-sketch
#                on the spiral (its evaluation's share of the run)
#   log.txt      what ran, for how long, and each exit status
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/out/gpu}
DATA=${DATA:-data}
DRY=${DRY:-}
PART=${PART:-all}
# run folders (OUT keeps only the few files above): a fresh one each time, unless RUNS is given
RUNS=${RUNS:-$(mktemp -d "${TMPDIR:-/tmp}/distmatch-gpu.XXXXXX")}
mkdir -p "$OUT" "$RUNS"
# absolute: tests that start processes in other folders (torchrun, pytest in a subprocess) need it
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
py=${PYTHON:-python}
device=cuda
rounds=9 block=1000 sketch_n=60000 train_steps=10000 suite_limit=180 workers="-n 12"
if [ -n "$DRY" ]; then
    device=cpu rounds=1 block=20 sketch_n=2000 train_steps=200 suite_limit=60 workers=
fi

. benchmarks/gpu_steps.sh  # step NAME LIMIT_S FILE COMMAND...

"$py" -c "import torch; print(torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())" \
    >>"$OUT/log.txt" 2>&1

if [ "$PART" != 2 ]; then
    # 1. The CUDA module: every command end to end on cuda, agreement with the CPU, resume.
    step cuda-tests 240 log.txt "$py" -m pytest -q -rf tests/test_cuda.py -p no:cacheprovider \
        --junitxml="$OUT/cuda.xml"

    # 2. k = 1 at GPU speed (mnist_mlp, n = 64): eager steps, the whole step in one CUDA graph, and
    #    the compiled forward inside that graph.
    speed="$py benchmarks/mow_speed.py --device $device --rounds $rounds --block $block"
    step speed-eager 45 speed.txt $speed
    step speed-graph 45 speed.txt $speed --graph
    step speed-compiled-graph 90 speed.txt $speed --graph --compile --modes plain,cwae,wae,swae
fi

if [ "$PART" != 1 ]; then
    # 3. Sketching throughput against the bare product, eager and compiled.
    step sketch 90 sketch.txt "$py" benchmarks/sketch_throughput.py --device "$device" --n "$sketch_n" \
        --repeats 3 --pycle-n 500 --other-batches 2000,500 --fused

    # 4. Training commands: steps/s of train at k = 1 on MNIST, and fit-sketch's evaluation share.
    if [ -d "$DATA/mnist" ]; then
        step train-mnist 45 train.txt "$py" -m distmatch train --dataset mnist --data-dir "$DATA/mnist" \
            --k 1 --steps "$train_steps" --device "$device" --out "$RUNS/train" --no-progress
        grep -h steps_per_second "$RUNS/train/summary.json" >>"$OUT/train.txt" 2>/dev/null
        step train-mnist-graph 30 train.txt "$py" -m distmatch train --dataset mnist \
            --data-dir "$DATA/mnist" --k 1 --steps "$train_steps" --device "$device" --cuda-graph \
            --out "$RUNS/graph" --no-progress
        grep -h steps_per_second "$RUNS/graph/summary.json" >>"$OUT/train.txt" 2>/dev/null
    else
        echo "train-mnist: skipped (no $DATA/mnist)" | tee -a "$OUT/log.txt"
    fi
    step sketch-spiral 20 train.txt "$py" -m distmatch sketch --dataset spiral --out "$RUNS/spiral.npz" \
        --no-progress
    step fit-sketch-spiral 45 train.txt "$py" -m distmatch fit-sketch "$RUNS/spiral.npz" \
        --device "$device" --out "$RUNS/spiral" --no-progress ${DRY:+--epochs 2}
    "$py" -c "import json, sys; d = json.load(open(sys.argv[1])); print('fit-sketch spiral: wall', d['wall_seconds'], 's, evaluation', d['eval_seconds'], 's,', round(100 * d['eval_seconds'] / d['wall_seconds'], 1), '%')" \
        "$RUNS/spiral/summary.json" >>"$OUT/train.txt" 2>&1

    # 5. The whole suite with the GPU visible (tests not marked cuda must hide it themselves).
    #    A run cut by its limit may print one F at the cut: the TERM reaches a training loop under
    #    test, which takes it as a stop request (its test fails), and pytest goes on until KILL.
    step suite "$suite_limit" log.txt "$py" -m pytest -q -rf $workers tests -p no:cacheprovider \
        --junitxml="$OUT/suite.xml"
fi
cat "$OUT/log.txt"
