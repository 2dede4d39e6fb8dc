#!/usr/bin/env bash
# The GPU checks and figures, on a CUDA machine (CI has none): the gpu-marked tests, training-step
# time and peak GPU memory (fp32 and bf16 autocast, batch 8 and 32 × 256 tokens), batched
# generation throughput, then the quickstart end to end under bf16 with evaluation on the GPU.
#
#   bash benchmarks/gpu_suite.sh [MODEL] [LOG_DIR] [RUN_DIR]
#
# MODEL defaults to the packaged smollm2-135m-instruct; a folder written by
# benchmarks/random_model.py gives the same architecture without the weights (figures only).
# Each step has its own time limit, so one hang does not hide the others; the exit status is
# the number of steps that failed.
set -uo pipefail
model=${1:-smollm2-135m-instruct}
logs=${2:-runs/gpu_suite}
runs=${3:-runs/gpu_suite}
py=${PYTHON:-python}
mkdir -p "$logs" "$runs"
failed=0
step() {  # step LOG SECONDS CMD...: run CMD under a time limit, appending its output to LOG
    local log=$1 limit=$2
    shift 2
    echo "\$ $*" >>"$logs/$log"
    timeout "$limit" "$@" 2>&1 | tee -a "$logs/$log"
    local status=$?
    if [ "$status" -ne 0 ]; then
        failed=$((failed + 1))
        echo "FAILED (exit $status$([ "$status" -eq 124 ] && echo ", over ${limit} s")): $*" | tee -a "$logs/$log"
    fi
}

$py -c "import torch; assert torch.cuda.is_available()" 2>/dev/null || { echo "gpu_suite: no CUDA device is visible"; exit 1; }

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  $py -c "import torch, transformers, peft, accelerate; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'| transformers', transformers.__version__, '| peft', peft.__version__, '| accelerate', accelerate.__version__)"
} 2>&1 | tee "$logs/env.txt"

step tests_gpu.log 240 $py -m pytest -q -m gpu tests
for precision in no bf16; do
    for batch in 8 32; do
        step bench_train.log 120 $py benchmarks/bench_train_step.py --model "$model" --device cuda \
            --mixed-precision "$precision" --batch "$batch" --seq 256 --steps 10 --warmup 3
    done
done
for batch in 16 64; do
    step bench_eval.log 90 $py benchmarks/bench_eval_batching.py --model "$model" --device cuda \
        --questions 128 --max-new-tokens 128 --batch-size "$batch" --batched-only
done
step quickstart.log 300 $py -m prada.cli run configs/quickstart.yaml "student.model=$model" \
    train.mixed_precision=bf16 train.eval_checkpoints=false "output_dir=$runs/quickstart"
echo "gpu_suite: $failed step(s) failed" | tee -a "$logs/env.txt"
exit "$failed"
