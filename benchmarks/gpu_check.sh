#!/usr/bin/env bash
# The GPU check (issue 13): CUDA-marked tests, the training-loop benchmark on a
# GPT-2-small-sized random model (pairs/s, tokens/s, MFU), a few steps of the
# fine-tuning preset, and (issue 18) all-mpnet-base-v2 fine-tuned end to end in bf16 on
# the pretrained pair (MiniLM-head teacher): accuracies and seconds per pair; writes
# one JSON. Needs only torch and transformers (plus this repository's light
# dependencies and the model packages of requirements-mpnet.txt), no network. Under 8
# minutes on one H100/H200.
#
#   bash benchmarks/gpu_check.sh [--out gpu_check.json] [--peak-tflops X]
#   bash benchmarks/gpu_check.sh --dry-run     # the same code, tiny sizes, on the CPU
#
# PYTHON selects the interpreter (default: python, else python3).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$(command -v python || command -v python3)}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# the whole check is cut at 8 minutes; each stage records its own failure in the JSON
exec timeout --kill-after=10 480 "$PY" "$ROOT/benchmarks/gpu_check.py" "$@"
