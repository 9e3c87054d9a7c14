#!/usr/bin/env bash
# Regenerates every golden fixture (test/fixtures/golden/**, test/fixtures/hf/**) and checks the HF
# folders round-trip through transformers. Output is deterministic: re-running gives identical files.
# Usage (from anywhere): bash tools/pyenv.sh && bash tools/golden/generate_all.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-.venv/bin/python}"
export PYTHONHASHSEED=0 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false

"$PY" tools/golden/ops.py
"$PY" tools/golden/hf_models.py
"$PY" tools/golden/gpt_train.py   # reads test/fixtures/hf/gpt2-tiny written by hf_models.py
"$PY" tools/golden/objectives.py  # distillation objectives: loss + grad w.r.t. student logits
"$PY" tools/golden/bf16_matmul.py  # bf16 matmul (autocast) and its gradients, plus torch.autocast results
"$PY" tools/golden/bf16_train.py    # the pinned gpt_train.py run under torch.autocast(bfloat16)
"$PY" tools/golden/safetensors_fixture.py
for d in test/fixtures/hf/gpt2-tiny test/fixtures/hf/llama-tiny test/fixtures/hf/llama-tiny-tied; do
  printf '%s: ' "$d"
  "$PY" tools/golden/hf_check_roundtrip.py "$d"
done
echo "golden fixtures regenerated"
