#!/usr/bin/env python3
"""Golden fixtures for lmdistill's bf16 matmul (autocast('bf16')) -> test/fixtures/golden/bf16-matmul.json.

Per case (all four transposition variants at 13x11x17, 37x29x53, a batched case, k = 300):
  output     = torch.matmul(op(a).bfloat16().float(), op(b).bfloat16().float())   (fp32 accumulation)
  grads      = [g_r @ op(b)_r^T, op(a)_r^T @ g_r] mapped back to a's / b's storage layout, where x_r =
               x.bfloat16().float() and g = grad_output: the gradient GEMMs with bf16 operands, which is
               what our matmul backward does under autocast (torch autocast does the same GEMMs)
  autocast_output / autocast_grads = the same product and gradients under
               torch.autocast("cpu", dtype=torch.bfloat16): bf16 results, i.e. the above rounded to bf16
               (up to accumulation order) -- the direct comparison with PyTorch's own bf16 path
Inputs are N(0,1), float32, 1 thread, seeded per case with crc32(name); byte-identical on re-runs.
"""
import json
import os
import zlib

import numpy as np  # noqa: F401  (float32 repr via tensor.numpy())
import torch

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "test", "fixtures", "golden", "bf16-matmul.json")


def enc(t):
    """Tensor -> {"shape", "data"}; each float32 as its shortest round-trip decimal (numpy float32 str), which
    a Float32Array turns back into the same bits -- half the size of the full double decimal."""
    t = t.detach().contiguous().float()
    return {"shape": list(t.shape), "data": [float(str(v)) for v in t.reshape(-1).numpy()]}


def r(x):
    return x.bfloat16().float()


def tr(x):
    return x.transpose(-2, -1)


CASES = []


def add_case(name, batch, m, n, k, trans_a, trans_b):
    g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    a = torch.randn(*batch, *((k, m) if trans_a else (m, k)), generator=g)  # storage layout
    b = torch.randn(*batch, *((n, k) if trans_b else (k, n)), generator=g)
    gout = torch.randn(*batch, m, n, generator=g)
    opa = lambda x: tr(x) if trans_a else x  # noqa: E731
    opb = lambda x: tr(x) if trans_b else x  # noqa: E731
    out = torch.matmul(r(opa(a)), r(opb(b)))
    ga = torch.matmul(r(gout), tr(r(opb(b))))  # d/d op(a), [.., m, k]
    gb = torch.matmul(tr(r(opa(a))), r(gout))  # d/d op(b), [.., k, n]
    grads = [tr(ga) if trans_a else ga, tr(gb) if trans_b else gb]

    la, lb = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ac = torch.matmul(opa(la), opb(lb))
    assert ac.dtype == torch.bfloat16, ac.dtype
    (ac.float() * gout).sum().backward()
    CASES.append({
        "name": name, "trans_a": trans_a, "trans_b": trans_b,
        "inputs": [enc(a), enc(b)], "grad_output": enc(gout),
        "output": enc(out), "grads": [enc(x) for x in grads],
        "autocast_output": enc(ac), "autocast_grads": [enc(la.grad), enc(lb.grad)],
    })


for ta in (False, True):
    for tb in (False, True):
        add_case(f"13x11x17_tA{int(ta)}_tB{int(tb)}", (), 13, 11, 17, ta, tb)
add_case("37x29x53_tA0_tB1", (), 37, 29, 53, False, True)  # odd sizes across several micro-tiles
add_case("batched_2x5x7x16", (2,), 5, 7, 16, False, False)
add_case("k300_3x5x300_tB1", (), 3, 5, 300, False, True)  # k beyond one native KC block (256)


def main():
    with open(OUT, "w") as f:
        json.dump({"torch": torch.__version__, "cases": CASES}, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(CASES)} cases to {os.path.relpath(OUT, ROOT)} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
