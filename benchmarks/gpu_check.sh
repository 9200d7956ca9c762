#!/usr/bin/env bash
# The GPU checks, in one run on a CUDA machine (the repository root as working directory):
# the tests marked `gpu` (Triton step compiled for the device, the layer against the
# reference, CUDA-graph capture, torch.compile and autocast on CUDA), then
# `g2lstm bench layer --device cuda` (fp32 and bf16 shapes against cuDNN).
# Writes logs and the benchmark JSON to ${OUT:-gpu-check}/.
set -uo pipefail
out=${OUT:-gpu-check}
mkdir -p "$out"
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 G2LSTM_CPU_KERNEL=0
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
  lscpu | grep 'Model name'
} 2>&1 | tee "$out/env.txt"
timeout "${TEST_TIMEOUT:-240}" python3 -m pytest -q -p no:cacheprovider -m gpu \
  -o addopts="--import-mode=importlib" tests/nn 2>&1 | tail -40 | tee "$out/gpu_tests.txt"
timeout "${BENCH_TIMEOUT:-300}" python3 -m g2lstm.cli bench layer --device cuda --repeats 7 \
  --json "$out/bench_layer_cuda.json" 2>&1 | tee "$out/bench_layer_cuda.txt"
