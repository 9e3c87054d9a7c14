#!/usr/bin/env python3
"""The pinned gpt2-tiny training run of gpt_train.py (same model, data, AdamW, clipping, schedule: see
tools/golden/README.md) under torch.autocast("cpu", dtype=torch.bfloat16) -> test/fixtures/golden/bf16-train.json.

The forward runs under autocast, the cross-entropy on the logits cast back to fp32 and backward outside the
autocast block (torch's recipe; fp32 master weights, AdamW and clipping are untouched).
test/train/bf16-training.test.ts checks our train.precision: bf16 run of the same 10 steps against
`autocast_losses`, and both against the fp32 `losses`.

{"torch": version, "losses": [10 floats, fp32 run], "autocast_losses": [10 floats, bf16 autocast run]}
"""
import json
import os

import torch
import torch.nn.functional as F

import gpt_train as gt  # same folder: model, data, optimizer and schedule of the pinned fp32 run

OUT = os.path.join(gt.ROOT, "test", "fixtures", "golden", "bf16-train.json")


def train_autocast(inputs, targets):
    model = gt.load_model()
    params, opt = gt.make_optimizer(model)
    losses = []
    for s in range(gt.CONFIG["steps"]):
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(inputs).logits
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, gt.CONFIG["grad_clip"], foreach=False)
        for gr in opt.param_groups:
            gr["lr"] = gt.lr_at(s)
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def main():
    g = torch.Generator().manual_seed(gt.CONFIG["data_seed"])
    ids = torch.randint(0, gt.CONFIG["vocab_size"], (gt.CONFIG["batch_size"], gt.CONFIG["seq_len"] + 1),
                        generator=g, dtype=torch.int64)
    inputs, targets = ids[:, :-1].contiguous(), ids[:, 1:].contiguous()
    losses, _, _, _ = gt.train(inputs, targets, 1)
    ac = train_autocast(inputs, targets)
    with open(OUT, "w") as f:
        json.dump({"torch": torch.__version__, "losses": losses, "autocast_losses": ac}, f, separators=(",", ":"))
        f.write("\n")
    print("fp32    ", [round(x, 5) for x in losses])
    print("autocast", [round(x, 5) for x in ac])
    print("max |fp32 - autocast| = %.3g" % max(abs(a - b) for a, b in zip(losses, ac)))


if __name__ == "__main__":
    main()
