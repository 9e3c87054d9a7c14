#!/usr/bin/env bash
# Regenerates docs/report-example.html and docs/report-screenshot.png from the README's distillation runs
# (train them first: configs/tiny-gpt.yaml, configs/distill-fkl.yaml, configs/distill-ce.yaml).
#   bash tools/report/make-example.sh [TEACHER=runs/tiny-gpt/final]
set -euo pipefail
cd "$(dirname "$0")/../.."
teacher=${1:-runs/tiny-gpt/final}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lmdistill-example-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for run in distill-fkl distill-ce; do
  node --import tsx src/cli/main.ts eval --model "runs/$run/final" --teacher "$teacher" \
    --spec-prompts 64 --spec-tokens 48 --gamma 4 --out "$tmp/$run.eval.json"
done
node --import tsx tools/report/write-report.ts runs/distill-fkl runs/distill-ce \
  --eval "$tmp/distill-fkl.eval.json" "$tmp/distill-ce.eval.json" \
  --title "lmdistill: forward-KL vs cross-entropy distillation of tiny-gpt" --out docs/report-example.html
bash tools/report/render.sh docs/report-example.html docs/report-screenshot.png 1200 1900
ls -l docs/report-example.html docs/report-screenshot.png
