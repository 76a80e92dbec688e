#!/usr/bin/env bash
# Every GPU check of distmatch in one run, most valuable first, each under its own time limit and
# all within BUDGET seconds (default 540 on a GPU), so that a device session of 15 minutes has room
# for the machine's start and one short rerun. A cut step still reports what it did.
#
#   OUT=benchmarks/out/gpu DATA=data bash benchmarks/gpu_check.sh             # on a CUDA machine
#   ONLY=speed,train OUT=benchmarks/out/gpu DATA=data bash benchmarks/gpu_check.sh  # a rerun of some
#   DRY=1 OUT=/tmp/gpu DATA=../shared/data bash benchmarks/gpu_check.sh      # the same, tiny, on a CPU
#
# ONLY: a comma-separated choice of the groups below (default: all), in this order:
#   cuda    the CUDA test module, 4 workers (junit: failures are named even if the run is cut)
#   speed   k = 1 step time against a plain step: eager, whole-step CUDA graph, compiled + graph
#   train   distmatch train on MNIST at k = 1, --cuda-graph and eager (steps/s); the loop's host work
#   sketch  sketching throughput against the bare product (d = 784 and 2), with the fused kernel
#   fit     fit-sketch on the spiral (its evaluation's share of the run)
#   suite   the rest of the suite with the GPU visible, 12 workers, in whatever time is left
# DATA holds mnist/ (the four IDX files); without it the MNIST training row is skipped. Uses the
# source tree (src on PYTHONPATH) and the installed torch. Writes at most 8 files under OUT:
# cuda.xml, suite.xml (junit), suite.txt (each test's result as it ends), speed.txt, train.txt,
# sketch.txt, log.txt (what ran, for how long, each exit status; the CUDA tests' results).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/out/gpu}
DATA=${DATA:-data}
DRY=${DRY:-}
ONLY=${ONLY:-cuda,speed,train,sketch,fit,suite}
# run folders (OUT keeps only the few files above): a fresh one each time, unless RUNS is given
RUNS=${RUNS:-$(mktemp -d "${TMPDIR:-/tmp}/distmatch-gpu.XXXXXX")}
mkdir -p "$OUT" "$RUNS"
# absolute: tests that start processes in other folders (torchrun, pytest in a subprocess) need it
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
py=${PYTHON:-python}
device=cuda sketch_n=60000 eager_steps=5000 graph_steps=10000 workers="-n 12" cuda_workers="-n 4"
loop_steps="--steps 5000 --real-steps 2000"
eager="--rounds 9 --block 200 --max-seconds 25" graphed="--rounds 9 --block 1000 --max-seconds 20"
BUDGET=${BUDGET:-540}
if [ -n "$DRY" ]; then
    device=cpu sketch_n=2000 eager_steps=200 graph_steps=200 workers= cuda_workers=
    loop_steps="--steps 200 --real-steps 50"
    eager="--rounds 1 --block 20" graphed="--rounds 1 --block 20"
    BUDGET=${BUDGET_DRY:-}  # no deadline unless asked for (BUDGET_DRY=60 tries the cut)
fi

. benchmarks/gpu_steps.sh  # step NAME LIMIT_S FILE COMMAND...; the deadline starts here

wanted() { [[ ",$ONLY," == *",$1,"* ]]; }

"$py" -c "import torch; print(torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())" \
    >>"$OUT/log.txt" 2>&1

# 1. The CUDA module: every command end to end on cuda, agreement with the CPU, resume.
if wanted cuda; then
    step cuda-tests 200 log.txt "$py" -m pytest -v -rf $cuda_workers tests/test_cuda.py \
        -p no:cacheprovider --junitxml="$OUT/cuda.xml"
fi

# 2. k = 1 at GPU speed (mnist_mlp, n = 64): eager steps, the whole step in one CUDA graph, and the
#    compiled forward inside that graph (its compilation is most of that step's time).
if wanted speed; then
    speed="$py benchmarks/mow_speed.py --device $device"
    step speed-eager 45 speed.txt $speed $eager
    step speed-graph 45 speed.txt $speed $graphed --graph
    step speed-compiled-graph 120 speed.txt $speed $graphed --graph --compile --modes plain,cwae,wae,swae
fi

# 3. Steps/s of train at k = 1 on MNIST, with the whole step in a CUDA graph, then eagerly.
if wanted train; then
    if [ -d "$DATA/mnist" ]; then
        mnist=("$py" -m distmatch train --dataset mnist --data-dir "$DATA/mnist" --k 1 --device "$device" --no-progress)
        step train-mnist-graph 30 train.txt "${mnist[@]}" --steps "$graph_steps" --cuda-graph --out "$RUNS/graph"
        grep -h steps_per_second "$RUNS/graph/summary.json" >>"$OUT/train.txt" 2>/dev/null
        step train-mnist 40 train.txt "${mnist[@]}" --steps "$eager_steps" --out "$RUNS/train"
        grep -h steps_per_second "$RUNS/train/summary.json" >>"$OUT/train.txt" 2>/dev/null
        # the loop's own host work per step (the step replaced by nothing), beside graphed steps
        step loop-host 30 train.txt "$py" benchmarks/loop_host.py --dataset mnist --data-dir "$DATA/mnist" \
            --device "$device" --rounds 1 $loop_steps
    else
        echo "train-mnist: skipped (no $DATA/mnist)" | tee -a "$OUT/log.txt"
    fi
fi

# 4. Sketching throughput against the bare product, eager, compiled and fused.
if wanted sketch; then
    step sketch 60 sketch.txt "$py" benchmarks/sketch_throughput.py --device "$device" --n "$sketch_n" \
        --repeats 3 --pycle-n 500 --other-batches 2000,500 --fused
fi

# 5. fit-sketch on the spiral: its evaluation's share of the run's wall time.
if wanted fit; then
    step sketch-spiral 20 train.txt "$py" -m distmatch sketch --dataset spiral --out "$RUNS/spiral.npz" \
        --no-progress
    step fit-sketch-spiral 45 train.txt "$py" -m distmatch fit-sketch "$RUNS/spiral.npz" \
        --device "$device" --out "$RUNS/spiral" --no-progress ${DRY:+--epochs 2}
    "$py" -c "import json, sys; d = json.load(open(sys.argv[1])); print('fit-sketch spiral: wall', d['wall_seconds'], 's, evaluation', d['eval_seconds'], 's,', round(100 * d['eval_seconds'] / d['wall_seconds'], 1), '%')" \
        "$RUNS/spiral/summary.json" >>"$OUT/train.txt" 2>&1
fi

# 6. The rest of the suite with the GPU visible (tests not marked cuda must hide it themselves).
#    Verbose, so that each test's result is written as it ends: a cut run writes no junit file when
#    the INT reaches a training loop under test (which takes it as a stop request and fails that
#    test) and pytest goes on until the KILL.
if wanted suite; then
    step suite 300 suite.txt "$py" -m pytest -v -rf $workers tests --ignore=tests/test_cuda.py \
        -p no:cacheprovider --junitxml="$OUT/suite.xml"
fi
cat "$OUT/log.txt"
