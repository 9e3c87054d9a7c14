#!/usr/bin/env bash
# Creates .venv with torch (CPU), transformers, safetensors and tokenizers from pip's configured local
# wheel store (offline). Used by the golden-fixture scripts and the live interop checks; `npm test`
# never needs it (the fixtures it produces are committed).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ] && .venv/bin/python -c 'import torch, transformers, safetensors, tokenizers' 2>/dev/null; then exit 0; fi
python3 -m venv .venv
idx=$(pip config get global.extra-index-url 2>/dev/null | awk '{print $1}')
args=()
if [ -n "$idx" ]; then args+=(--index-url "$idx"); for u in $(pip config get global.extra-index-url | cut -d' ' -f2-); do args+=(--extra-index-url "$u"); done; fi
.venv/bin/pip install -q "${args[@]}" torch transformers safetensors tokenizers numpy
