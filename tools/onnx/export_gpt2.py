#!/usr/bin/env python3
"""test/fixtures/hf/gpt2-tiny -> test/fixtures/onnx/gpt2-tiny.onnx (+ expected.json).

Exports the same weights our LocalTeacher loads, so the ONNX teacher test can compare both engines on
one model:
  input  `input_ids` int64 [batch, sequence]   (both axes dynamic)
  output `logits`    float32 [batch, sequence, vocab]
The dynamo exporter is used (needs `onnx` + `onnxscript`): the legacy TorchScript exporter fails on the
`aten::diff` in transformers 5's mask construction. The per-node debug metadata it records (stack traces,
~200 KB) is stripped so the fixture stays small, and the model's position limit is stored as the
`max_positions` metadata entry, which OnnxTeacher checks (a longer sequence would index past wpe).

expected.json holds the PyTorch logits for two fixed inputs of different shapes (so the dynamic axes are
exercised) and is checked here against onnxruntime (Python) before anything is written.

Run: .venv/bin/python tools/onnx/export_gpt2.py   (needs torch, transformers, onnx, onnxscript; onnxruntime optional)
"""
import json
import os

import torch
from transformers import GPT2LMHeadModel
from transformers.utils import logging as hf_logging

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
hf_logging.disable_progress_bar()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SRC = os.path.join(ROOT, "test", "fixtures", "hf", "gpt2-tiny")
OUT = os.path.join(ROOT, "test", "fixtures", "onnx")
ONNX = os.path.join(OUT, "gpt2-tiny.onnx")
SEED = 2024
SHAPES = [(2, 16), (3, 7)]  # [B, T]; n_positions = 32


class LogitsOnly(torch.nn.Module):
    """input_ids [B, T] -> logits [B, T, V] (no KV cache, no attention mask: full causal rows)."""

    def __init__(self, lm):
        super().__init__()
        self.lm = lm

    def forward(self, input_ids):
        return self.lm(input_ids=input_ids, use_cache=False).logits


def enc(t):
    t = t.detach().contiguous().to(torch.float32)
    return {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1).tolist()]}


def main():
    lm = GPT2LMHeadModel.from_pretrained(SRC, attn_implementation="eager").eval()
    model = LogitsOnly(lm).eval()
    V = lm.config.vocab_size
    os.makedirs(OUT, exist_ok=True)
    example = torch.zeros((2, 8), dtype=torch.int64)
    max_pos = lm.config.n_positions
    batch = torch.export.Dim("batch", min=1, max=4096)
    seq = torch.export.Dim("sequence", min=1, max=max_pos)
    with torch.no_grad():
        torch.onnx.export(
            model, (example,), ONNX, dynamo=True, external_data=False,
            input_names=["input_ids"], output_names=["logits"], dynamic_shapes=({0: batch, 1: seq},),
        )
    import onnx

    m = onnx.load(ONNX)
    for node in m.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    del m.metadata_props[:]
    m.metadata_props.add(key="max_positions", value=str(max_pos))
    m.doc_string = "gpt2-tiny (test/fixtures/hf/gpt2-tiny) exported by tools/onnx/export_gpt2.py"
    onnx.checker.check_model(m)
    onnx.save(m, ONNX)

    g = torch.Generator().manual_seed(SEED)
    cases = []
    for (B, T) in SHAPES:
        ids = torch.randint(0, V, (B, T), generator=g, dtype=torch.int64)
        with torch.no_grad():
            logits = model(ids)
        assert logits.shape == (B, T, V), logits.shape
        cases.append({"input_ids": ids.tolist(), "logits": enc(logits)})

    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime (Python) not installed: skipped the ONNX-vs-PyTorch check")
    else:
        sess = ort.InferenceSession(ONNX, providers=["CPUExecutionProvider"])
        for c in cases:
            (got,) = sess.run(["logits"], {"input_ids": np.array(c["input_ids"], dtype=np.int64)})
            want = np.array(c["logits"]["data"], dtype=np.float32).reshape(c["logits"]["shape"])
            err = float(np.abs(got - want).max())
            assert err < 1e-4, f"onnxruntime differs from PyTorch by {err}"
            print(f"onnxruntime vs PyTorch {list(want.shape)}: max |diff| {err:.2e}")

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump({"model": "test/fixtures/hf/gpt2-tiny", "vocab_size": V, "cases": cases}, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {ONNX} ({os.path.getsize(ONNX)} bytes) and expected.json")


if __name__ == "__main__":
    main()
