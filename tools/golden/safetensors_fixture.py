"""Writes test/fixtures/safetensors/py-mixed.safetensors (+ .json with the expected values) using the
reference Python `safetensors` + torch, so test/io/safetensors.test.ts can check that our reader decodes
exactly what PyTorch wrote, and that our F16/BF16 encoders round exactly like torch's `.to(dtype)`.

Run: .venv/bin/python tools/golden/safetensors_fixture.py
"""
import json
import math
import pathlib

import torch
from safetensors.torch import save_file

F8_BYTES = torch.tensor([0x00, 0x01, 0x03, 0x04, 0x07, 0x08, 0x0F, 0x10, 0x38, 0x3C, 0x40, 0x55, 0x77, 0x78, 0x7B,
                         0x7C, 0x7D, 0x7E, 0x7F, 0x80, 0x81, 0xB8, 0xF7, 0xFB, 0xFC, 0xFD, 0xFE, 0xFF], dtype=torch.uint8)
OUT = pathlib.Path(__file__).resolve().parents[2] / "test" / "fixtures" / "safetensors"


def as_json(values):
    """Float lists with non-finite values spelled as strings (JSON has no inf/nan)."""
    out = []
    for v in values:
        if math.isnan(v):
            out.append("nan")
        elif math.isinf(v):
            out.append("inf" if v > 0 else "-inf")
        else:
            out.append(v)
    return out


def main():
    g = torch.Generator().manual_seed(1234)
    # Values that exercise F16 subnormals, the largest finite, overflow to inf, signed zero and NaN.
    f16_special = torch.tensor(
        [0.0, -0.0, 1.0, -2.5, 65504.0, float("inf"), float("-inf"), float("nan"),
         2.0**-24, 3 * 2.0**-24, 2.0**-14, 1023 * 2.0**-24, -5 * 2.0**-24, 0.1, 1.0 / 3.0, 1e-5],
        dtype=torch.float32,
    )
    # Rounding probes: random normals at several scales, plus exact f16/bf16 ties (halfway between two
    # representable values) so round-to-nearest-even is pinned, plus values near overflow/underflow.
    rnd = torch.randn(96, generator=g) * torch.tensor([1e-6, 1e-3, 1.0, 300.0]).repeat(24)
    ties16 = torch.tensor([1 + 2.0**-11, 1 + 3 * 2.0**-11, 2048 + 1, 2048 + 3, 2.0**-25, 3 * 2.0**-25,
                           65519.0, 65520.0, 2.0**-26, -(1 + 2.0**-11)], dtype=torch.float32)
    ties_bf = torch.tensor([1 + 2.0**-8, 1 + 3 * 2.0**-8, 256 + 1, 256 + 3, 3.3895e38, 3.4e38], dtype=torch.float32)
    probe = torch.cat([rnd, ties16, ties_bf, f16_special])

    tensors = {
        "f32.matrix": (torch.arange(12, dtype=torch.float32).reshape(3, 4) - 5.5) / 3,
        "f16.special": f16_special.to(torch.float16),
        "bf16.vec": torch.tensor([1.0, -3.140625, 1e-20, 3e38, float("inf"), 0.0078125], dtype=torch.bfloat16),
        "i64.ids": torch.tensor([[0, 1, -1], [2**40, -(2**62), 7]], dtype=torch.int64),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
        "probe.f32": probe,
        "probe.f16": probe.to(torch.float16),
        "probe.bf16": probe.to(torch.bfloat16),
        # FP8 bit patterns covering zero, subnormals, normals, max finite, inf (E5M2) and NaN.
        "f8.e4m3": F8_BYTES.clone().view(torch.float8_e4m3fn),
        "f8.e5m2": F8_BYTES.clone().view(torch.float8_e5m2),
    }
    metadata = {"format": "pt", "note": "lmdistill golden fixture", "unicode": "Ishmael \u2014 \u00e9"}
    OUT.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(OUT / "py-mixed.safetensors"), metadata=metadata)

    expected = {"metadata": metadata, "tensors": {}}
    for name, t in tensors.items():
        if t.dtype == torch.int64:
            values = [str(v) for v in t.flatten().tolist()]  # strings: 2**62 is not a safe JS number
        else:
            values = as_json(t.float().flatten().tolist())
        expected["tensors"][name] = {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape), "values": values}
    (OUT / "py-mixed.json").write_text(json.dumps(expected, indent=None, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
