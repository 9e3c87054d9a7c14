#!/usr/bin/env python3
"""Golden forward/backward and pinned-training fixtures for the committed gpt2-tiny checkpoint.

Writes
  test/fixtures/golden/gpt-train.json            loss/logits at the initial weights + 10 pinned AdamW steps
  test/fixtures/golden/gpt2-tiny-grads.safetensors  d loss / d parameter for every parameter (HF names)
Reads the weights from test/fixtures/hf/gpt2-tiny (run hf_models.py first). See tools/golden/README.md.
"""
import json
import math
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import GPT2LMHeadModel
from transformers.utils import logging as hf_logging

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
torch.set_default_dtype(torch.float32)
hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL_DIR = os.path.join(ROOT, "test", "fixtures", "hf", "gpt2-tiny")
OUT_JSON = os.path.join(ROOT, "test", "fixtures", "golden", "gpt-train.json")
OUT_GRADS = os.path.join(ROOT, "test", "fixtures", "golden", "gpt2-tiny-grads.safetensors")

CONFIG = {
    "model": "test/fixtures/hf/gpt2-tiny",
    "data_seed": 1234,
    "batch_size": 4,
    "seq_len": 16,
    "vocab_size": 64,
    "steps": 10,
    "peak_lr": 3e-3,
    "warmup_steps": 3,
    "total_steps": 10,
    "min_lr": 3e-4,
    "betas": [0.9, 0.95],
    "eps": 1e-8,
    "weight_decay": 0.1,
    "weight_decay_rule": "0.1 for parameters with ndim >= 2, 0.0 for ndim < 2 (biases, LayerNorm)",
    "grad_clip": 1.0,
    "grad_clip_rule": "torch.nn.utils.clip_grad_norm_ over all grads (global L2), before each step",
    "lr_schedule": "s<warmup: peak*(s+1)/warmup; else min_lr+0.5*(peak-min_lr)*(1+cos(pi*(s-warmup)/(total-warmup)))",
    "loss": "mean cross-entropy over all batch_size*seq_len positions; inputs=ids[:, :16], targets=ids[:, 1:]",
    "accum_micro_batches": 2,
    "accum_rule": "micro-batches of 2 sequences; micro mean-loss weighted by its tokens/total tokens; grads summed",
}


def enc(t):
    t = t.detach().contiguous()
    if t.dtype.is_floating_point:
        return {"shape": list(t.shape), "data": [float(v) for v in t.to(torch.float32).reshape(-1).tolist()]}
    return {"shape": list(t.shape), "data": [int(v) for v in t.reshape(-1).tolist()]}


def load_model():
    model = GPT2LMHeadModel.from_pretrained(MODEL_DIR, attn_implementation="eager", dtype=torch.float32)
    model.eval()  # all dropout probabilities are 0 anyway
    return model


def lr_at(s):
    peak, warmup, total, min_lr = CONFIG["peak_lr"], CONFIG["warmup_steps"], CONFIG["total_steps"], CONFIG["min_lr"]
    if s < warmup:
        return peak * (s + 1) / warmup
    progress = (s - warmup) / (total - warmup)
    return min_lr + 0.5 * (peak - min_lr) * (1 + math.cos(math.pi * progress))


def loss_fn(model, inputs, targets):
    logits = model(inputs).logits
    V = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1)), logits


def make_optimizer(model):
    params = [p for _, p in model.named_parameters()]  # tied wte/lm_head appears once
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": CONFIG["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=CONFIG["peak_lr"], betas=tuple(CONFIG["betas"]), eps=CONFIG["eps"], foreach=False)
    return params, opt


def train(inputs, targets, micro_batches):
    """10 pinned AdamW steps on the fixed batch. Returns (losses, lrs, grad_norms, final_loss)."""
    model = load_model()
    params, opt = make_optimizer(model)
    total_tokens = targets.numel()
    losses, lrs, norms = [], [], []
    for s in range(CONFIG["steps"]):
        opt.zero_grad(set_to_none=True)
        step_loss = 0.0
        for mi, mt in zip(inputs.chunk(micro_batches, 0), targets.chunk(micro_batches, 0)):
            loss, _ = loss_fn(model, mi, mt)
            w = mt.numel() / total_tokens
            (loss * w).backward()
            step_loss += float(loss.detach()) * w
        norm = torch.nn.utils.clip_grad_norm_(params, CONFIG["grad_clip"], foreach=False)
        lr = lr_at(s)
        for gr in opt.param_groups:
            gr["lr"] = lr
        opt.step()
        losses.append(step_loss)
        lrs.append(lr)
        norms.append(float(norm))
    with torch.no_grad():
        final_loss, _ = loss_fn(model, inputs, targets)
    return losses, lrs, norms, float(final_loss)


def main():
    g = torch.Generator().manual_seed(CONFIG["data_seed"])
    ids = torch.randint(0, CONFIG["vocab_size"], (CONFIG["batch_size"], CONFIG["seq_len"] + 1),
                        generator=g, dtype=torch.int64)
    inputs, targets = ids[:, :-1].contiguous(), ids[:, 1:].contiguous()

    # ---- forward/backward at the initial weights
    model = load_model()
    loss, logits = loss_fn(model, inputs, targets)
    loss.backward()
    grads = {}
    for name, p in model.named_parameters():  # lm_head.weight is tied to transformer.wte.weight
        assert p.grad is not None, name
        grads[name] = p.grad.detach().clone().contiguous()
    assert "transformer.wte.weight" in grads and "lm_head.weight" not in grads
    save_file(grads, OUT_GRADS, metadata={"format": "pt"})

    # ---- pinned training, full batch and with gradient accumulation
    losses, lrs, norms, final_loss = train(inputs, targets, 1)
    a_losses, _, a_norms, a_final = train(inputs, targets, CONFIG["accum_micro_batches"])
    assert abs(losses[0] - float(loss.detach())) < 1e-6, (losses[0], float(loss.detach()))
    max_d = max(abs(a - b) for a, b in zip(losses, a_losses))

    out = {
        "config": CONFIG,
        "input_ids": enc(ids),
        "loss": float(loss.detach()),
        "logits": enc(logits),
        "losses": losses,
        "lrs": lrs,
        "grad_norms": norms,
        "accum_losses": a_losses,
        "accum_grad_norms": a_norms,
        "final_loss": final_loss,
    }
    with open(OUT_JSON, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print("loss", float(loss.detach()))
    print("losses", [round(x, 5) for x in losses], "final", round(final_loss, 5))
    print("lrs", lrs)
    print("grad_norms", [round(x, 5) for x in norms])
    print("max |losses - accum_losses| = %.3g, max |norms - accum_norms| = %.3g" %
          (max_d, max(abs(a - b) for a, b in zip(norms, a_norms))))
    for p in (OUT_JSON, OUT_GRADS):
        print(f"wrote {os.path.relpath(p, ROOT)} ({os.path.getsize(p)} bytes)")


if __name__ == "__main__":
    main()
