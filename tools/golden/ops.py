#!/usr/bin/env python3
"""Golden fixtures for lmdistill's autograd ops -> test/fixtures/golden/ops.json.

Every case: forward output of the op and the gradients of sum(output * grad_output) with respect to
every float input, computed by PyTorch autograd in float32 on 1 CPU thread. Each case draws its random
numbers from its own generator seeded with crc32(case name), so the file is byte-identical on re-runs
and adding a case does not change the others. See tools/golden/README.md for the format.
"""
import json
import math
import os
import zlib

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
torch.set_default_dtype(torch.float32)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "test", "fixtures", "golden", "ops.json")


def enc(t):
    """Tensor -> {"shape", "data"} (row-major). float32 values become exact Python floats."""
    t = t.detach().contiguous()
    if t.dtype.is_floating_point:
        assert t.dtype == torch.float32, t.dtype
        data = [float(v) for v in t.reshape(-1).tolist()]
    else:
        data = [int(v) for v in t.reshape(-1).tolist()]
    return {"shape": list(t.shape), "data": data}


def gen_for(name):
    return torch.Generator().manual_seed(zlib.crc32(name.encode("utf-8")))


def randn(g, *shape):
    return torch.randn(*shape, generator=g, dtype=torch.float32)


def uniform(g, lo, hi, *shape):
    return torch.rand(*shape, generator=g, dtype=torch.float32) * (hi - lo) + lo


def away_from_zero(x, margin=0.05):
    """Shift every value away from 0 by `margin` (keeps the sign) so |x| >= margin."""
    s = torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))
    return x + s * margin


def distinct(g, *shape):
    """Values with pairwise gaps >= ~0.08 (no ties anywhere): a shuffled grid plus tiny noise."""
    n = math.prod(shape)
    perm = torch.randperm(n, generator=g).to(torch.float32)
    vals = (perm - n / 2) * 0.1 + uniform(g, -0.01, 0.01, n)
    return vals.reshape(*shape)


CASES = []
NAMES = set()


def add_case(name, op, params, make_inputs, fn, int_inputs=None, no_grad=()):
    """make_inputs(g) -> list of float tensors; fn(*inputs, **int_inputs) -> output tensor."""
    assert name not in NAMES, name
    NAMES.add(name)
    g = gen_for(name)
    inputs = [t.to(torch.float32).contiguous() for t in make_inputs(g)]
    ints = int_inputs(g) if callable(int_inputs) else (int_inputs or {})
    leaves = []
    for i, t in enumerate(inputs):
        leaf = t.clone()
        if i not in no_grad:
            leaf.requires_grad_(True)
        leaves.append(leaf)
    out = fn(*leaves, **ints)
    assert out.dtype == torch.float32
    gout = randn(g, *out.shape) if out.dim() > 0 else randn(g, 1).reshape(())
    (out * gout).sum().backward()
    grads = []
    for i, leaf in enumerate(leaves):
        if i in no_grad:
            grads.append(None)
        else:
            gr = leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)
            grads.append(enc(gr))
    case = {"name": name, "op": op, "params": params, "inputs": [enc(t) for t in inputs]}
    if ints:
        case["int_inputs"] = {k: enc(v) for k, v in ints.items()}
    case["output"] = enc(out)
    case["grad_output"] = enc(gout)
    case["grads"] = grads
    CASES.append(case)


# ---------------------------------------------------------------- unary
UNARY = {
    "neg": (torch.neg, "normal"),
    "exp": (torch.exp, "normal"),
    "log": (torch.log, "positive"),
    "sqrt": (torch.sqrt, "positive"),
    "tanh": (torch.tanh, "normal"),
    "sigmoid": (torch.sigmoid, "normal"),
    "relu": (torch.relu, "away"),
    "silu": (F.silu, "normal"),
    "abs": (torch.abs, "away"),
    "gelu": (lambda x: F.gelu(x, approximate="tanh"), "normal"),
}
for op, (fn, kind) in UNARY.items():
    def mk(g, kind=kind):
        if kind == "positive":
            return [uniform(g, 0.5, 2.0, 3, 5)]
        x = randn(g, 3, 5)
        return [away_from_zero(x) if kind == "away" else x]
    add_case(f"{op}_3x5", op, {}, mk, fn)

# a couple of larger-magnitude checks for the saturating functions
add_case("tanh_wide_2x4", "tanh", {}, lambda g: [randn(g, 2, 4) * 4], torch.tanh)
add_case("sigmoid_wide_2x4", "sigmoid", {}, lambda g: [randn(g, 2, 4) * 6], torch.sigmoid)
add_case("gelu_wide_2x4", "gelu", {}, lambda g: [randn(g, 2, 4) * 3], lambda x: F.gelu(x, approximate="tanh"))

# ---------------------------------------------------------------- binary with broadcasting
BINARY = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "maximum": torch.maximum}
BSHAPES = [("3x4_3x4", (3, 4), (3, 4)), ("2x3x4_4", (2, 3, 4), (4,)),
           ("2x1x4_3x1", (2, 1, 4), (3, 1)), ("1_2x3", (1,), (2, 3))]
for op, fn in BINARY.items():
    for tag, sa, sb in BSHAPES:
        def mk(g, op=op, sa=sa, sb=sb):
            a = randn(g, *sa)
            if op == "div":
                b = uniform(g, 0.5, 2.0, *sb) * torch.where(randn(g, *sb) >= 0, 1.0, -1.0)
            else:
                b = randn(g, *sb)
            if op == "maximum":
                # no ties (and no near-ties) between broadcast pairs
                while (a - b).abs().min() < 1e-2:
                    b = randn(g, *sb)
            return [a, b]
        add_case(f"{op}_{tag}", op, {}, mk, fn)

# ---------------------------------------------------------------- pow
add_case("pow_3_3x4", "pow", {"exponent": 3.0}, lambda g: [randn(g, 3, 4)], lambda x: torch.pow(x, 3.0))
add_case("pow_0.5_3x4", "pow", {"exponent": 0.5}, lambda g: [uniform(g, 0.5, 2.0, 3, 4)],
         lambda x: torch.pow(x, 0.5))

# ---------------------------------------------------------------- reductions
for axes in ([2], [0, 2], [1], [0, 1, 2]):
    for keepdim in (True, False):
        tag = "".join(str(a) for a in axes) + ("_keep" if keepdim else "")
        add_case(f"sum_2x3x4_ax{tag}", "sum", {"axes": axes, "keepdim": keepdim},
                 lambda g: [randn(g, 2, 3, 4)],
                 lambda x, axes=axes, keepdim=keepdim: torch.sum(x, dim=axes, keepdim=keepdim))
        add_case(f"max_2x3x4_ax{tag}", "max", {"axes": axes, "keepdim": keepdim},
                 lambda g: [distinct(g, 2, 3, 4)],
                 lambda x, axes=axes, keepdim=keepdim: torch.amax(x, dim=axes, keepdim=keepdim))

# ---------------------------------------------------------------- matmul
for tag, sa, sb in [("3x4_4x5", (3, 4), (4, 5)), ("2x3x4_2x4x5", (2, 3, 4), (2, 4, 5)),
                    ("2x3x4_4x5", (2, 3, 4), (4, 5)), ("2x2x3x4_2x2x4x3", (2, 2, 3, 4), (2, 2, 4, 3))]:
    add_case(f"matmul_{tag}", "matmul", {}, lambda g, sa=sa, sb=sb: [randn(g, *sa), randn(g, *sb)], torch.matmul)

# ---------------------------------------------------------------- shape ops
for tag, si, shape in [("2x3x4_to_6x4", (2, 3, 4), [6, 4]), ("2x3x4_to_4x6", (2, 3, 4), [4, 6]),
                       ("2x3x4_to_24", (2, 3, 4), [24]), ("6x4_to_2x3x2x2", (6, 4), [2, 3, 2, 2])]:
    add_case(f"reshape_{tag}", "reshape", {"shape": shape}, lambda g, si=si: [randn(g, *si)],
             lambda x, shape=shape: x.reshape(shape))
for tag, si, dims in [("2x3x4_102", (2, 3, 4), [1, 0, 2]), ("2x3x4_201", (2, 3, 4), [2, 0, 1]),
                      ("3x4_10", (3, 4), [1, 0]), ("2x3x4x5_0213", (2, 3, 4, 5), [0, 2, 1, 3])]:
    add_case(f"permute_{tag}", "permute", {"dims": dims}, lambda g, si=si: [randn(g, *si)],
             lambda x, dims=dims: x.permute(dims))


def do_slice(x, starts, ends):
    idx = tuple(slice(s, e) for s, e in zip(starts, ends))
    return x[idx]


for tag, si, starts, ends in [("4x5_10_34", (4, 5), [1, 0], [3, 4]),
                              ("2x3x4_011_234", (2, 3, 4), [0, 1, 1], [2, 3, 4]),
                              ("2x3x4_100_231", (2, 3, 4), [1, 0, 0], [2, 3, 1])]:
    add_case(f"slice_{tag}", "slice", {"starts": starts, "ends": ends}, lambda g, si=si: [randn(g, *si)],
             lambda x, starts=starts, ends=ends: do_slice(x, starts, ends))
for tag, shapes, axis in [("ax0_2x3_1x3", [(2, 3), (1, 3)], 0),
                          ("ax1_2x1_2x3_2x2", [(2, 1), (2, 3), (2, 2)], 1),
                          ("ax2_2x3x1_2x3x4", [(2, 3, 1), (2, 3, 4)], 2),
                          ("ax1_2x2x4_2x1x4_2x3x4", [(2, 2, 4), (2, 1, 4), (2, 3, 4)], 1)]:
    add_case(f"concat_{tag}", "concat", {"axis": axis}, lambda g, shapes=shapes: [randn(g, *s) for s in shapes],
             lambda *xs, axis=axis: torch.cat(xs, dim=axis))

# ---------------------------------------------------------------- gather (embedding lookup)
add_case("gather_10x4_ids2x3", "gather", {}, lambda g: [randn(g, 10, 4)],
         lambda table, ids: F.embedding(ids, table),
         int_inputs={"ids": torch.tensor([[3, 7, 3], [0, 9, 7]], dtype=torch.int64)})

# ---------------------------------------------------------------- softmax family
add_case("softmax_2x3x7", "softmax", {}, lambda g: [randn(g, 2, 3, 7) * 3], lambda x: torch.softmax(x, dim=-1))
add_case("log_softmax_2x3x7", "log_softmax", {}, lambda g: [randn(g, 2, 3, 7) * 3],
         lambda x: torch.log_softmax(x, dim=-1))

# ---------------------------------------------------------------- norms
add_case("layer_norm_2x3x8", "layer_norm", {"eps": 1e-5},
         lambda g: [randn(g, 2, 3, 8) * 2 + 0.5, 1 + 0.3 * randn(g, 8), 0.3 * randn(g, 8)],
         lambda x, w, b: F.layer_norm(x, (8,), w, b, eps=1e-5))


def rms_norm(x, w, eps=1e-6):
    # LlamaRMSNorm: x * rsqrt(mean(x^2, -1) + eps) * weight
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


add_case("rms_norm_2x3x8", "rms_norm", {"eps": 1e-6},
         lambda g: [randn(g, 2, 3, 8) * 2 + 0.5, 1 + 0.3 * randn(g, 8)],
         lambda x, w: rms_norm(x, w, 1e-6))

# ---------------------------------------------------------------- cross entropy
add_case("cross_entropy_6x11_ignore", "cross_entropy", {"ignore_index": -100},
         lambda g: [randn(g, 6, 11) * 2],
         lambda logits, targets: F.cross_entropy(logits, targets, ignore_index=-100),
         int_inputs={"targets": torch.tensor([3, 10, -100, 0, 7, 3], dtype=torch.int64)})

add_case("linear_2x3x4_to_5", "linear", {}, lambda g: [randn(g, 2, 3, 4), randn(g, 5, 4), randn(g, 5)], F.linear)
add_case("linear_conv1d_7x6_to_9", "linear_conv1d", {}, lambda g: [randn(g, 7, 6), randn(g, 6, 9), randn(g, 9)],
         lambda x, w, b: torch.addmm(b, x, w))


# ---------------------------------------------------------------- attention
def attention(q, k, v, causal=True):
    B, Hq, T, D = q.shape
    Hk = k.shape[1]
    rep = Hq // Hk
    if rep > 1:  # query head h uses kv head h // rep
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
    s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(D)
    if causal:
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        s = s.masked_fill(mask, float("-inf"))
    return torch.matmul(torch.softmax(s, dim=-1), v)


add_case("attention_causal_2x3x5x4", "attention", {"causal": True},
         lambda g: [randn(g, 2, 3, 5, 4), randn(g, 2, 3, 5, 4), randn(g, 2, 3, 5, 4)], attention)
add_case("attention_gqa_causal_q1x4x5x4_kv1x2x5x4", "attention", {"causal": True},
         lambda g: [randn(g, 1, 4, 5, 4), randn(g, 1, 2, 5, 4), randn(g, 1, 2, 5, 4)], attention)


def attention_qkv(qkv, heads, kv_heads, causal=True):
    # packed projection [B, T, (H + 2*Hkv)*D] (q heads, then k, then v) -> [B, T, H*D], GPT-2's layout
    B, T, W = qkv.shape
    D = W // (heads + 2 * kv_heads)
    q, k, v = qkv.split([heads * D, kv_heads * D, kv_heads * D], dim=2)
    q, k, v = (t.reshape(B, T, -1, D).transpose(1, 2) for t in (q, k, v))
    return attention(q, k, v, causal).transpose(1, 2).reshape(B, T, heads * D)


add_case("attention_qkv_causal_2x5x(3+3+3)x4", "attention_qkv", {"heads": 3, "kv_heads": 3, "causal": True},
         lambda g: [randn(g, 2, 5, 36)], lambda x: attention_qkv(x, 3, 3))
add_case("attention_qkv_gqa_1x6x(4+2+2)x3", "attention_qkv", {"heads": 4, "kv_heads": 2, "causal": True},
         lambda g: [randn(g, 1, 6, 24)], lambda x: attention_qkv(x, 4, 2))


# ---------------------------------------------------------------- rope
def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rope(x, theta=10000.0, offset=0):
    # Same arithmetic as transformers' LlamaRotaryEmbedding (default rope type), all in float32.
    T, D = x.shape[-2], x.shape[-1]
    inv_freq = 1.0 / (theta ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
    pos = torch.arange(offset, offset + T, dtype=torch.int64).float()
    freqs = pos[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return x * emb.cos() + rotate_half(x) * emb.sin()


add_case("rope_1x2x5x8", "rope", {"theta": 10000.0}, lambda g: [randn(g, 1, 2, 5, 8)], lambda x: rope(x, 10000.0, 0))
add_case("rope_1x2x5x8_offset3", "rope", {"theta": 10000.0, "offset": 3}, lambda g: [randn(g, 1, 2, 5, 8)],
         lambda x: rope(x, 10000.0, 3))


def main():
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"cases": CASES}, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(CASES)} cases to {os.path.relpath(OUT, ROOT)} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
