"""PyTorch peer of the kd-small / kd-wide cases (bench/cases.ts runs our side of the same work).

One step = teacher forward under no_grad + student forward + per-token 0.5*CE + 0.5*tau^2*KL(p_teacher || q_student)
(full vocabulary; tau = 1 in the cases) + backward + clip_grad_norm_(1.0) + AdamW(lr 1e-3). Models are GPT-2
(pre-LN blocks, GELU-tanh MLP, learned positions, tied head) in plain torch modules so Debian's torch 1.13
runs it without transformers. Inputs are fresh random tokens every step from a seeded generator.

With spec "precision": "bf16" the forward passes run under torch.autocast("cpu", dtype=torch.bfloat16)
(linear layers / matmuls / SDPA in bf16, fp32 master weights) and the loss is computed on the logits cast
back to fp32, as our side does; backward runs outside the autocast block, as torch recommends. CPU autocast
with bf16 exists since torch 1.10, so both Debian's 1.13 and the pip 2.x run it.

Prints one JSON line: ms/step, tokens/s, peak RSS, torch version, BLAS and thread settings.
"""
import contextlib
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

import peer_common as pc

HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


class Attention(nn.Module):
    def __init__(self, d, heads, sdpa):
        super().__init__()
        self.h, self.sdpa = heads, sdpa
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)  # [B, T, C] each
        q, k, v = (t.view(B, T, self.h, C // self.h).transpose(1, 2) for t in (q, k, v))  # [B, H, T, D]
        if self.sdpa:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # GPT-2 "eager" attention, the same composition our side uses
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))  # [B, H, T, T]
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
            y = att @ v  # [B, H, T, D]
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    def __init__(self, d, heads, sdpa):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d, eps=1e-5)
        self.attn = Attention(d, heads, sdpa)
        self.ln_2 = nn.LayerNorm(d, eps=1e-5)
        self.c_fc = nn.Linear(d, 4 * d)
        self.c_proj = nn.Linear(4 * d, d)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab, positions, d, layers, heads, sdpa):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(positions, d)
        self.h = nn.ModuleList(Block(d, heads, sdpa) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d, eps=1e-5)
        for name, p in self.named_parameters():  # GPT-2 init (HF _init_weights)
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith("c_proj.weight") else 0.02
                nn.init.normal_(p, std=std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, ids):  # ids [B, T] -> logits [B, T, V]
        T = ids.shape[1]
        x = self.wte(ids) + self.wpe(torch.arange(T, device=ids.device))  # [B, T, C]
        for block in self.h:
            x = block(x)
        return self.ln_f(x) @ self.wte.weight.t()  # tied head


def kd_token_losses(zs, zt, targets, alpha, tau):
    """Per-token (1-alpha)*CE(y, softmax(zs)) + alpha*tau^2*KL(p||q) with p, q softened by tau;
    zs, zt [N, V] (zt without grad), targets [N]. The same composition as bench/kd-loss.ts."""
    logq = F.log_softmax(zs, dim=-1)  # [N, V]
    logq_tau = logq if tau == 1 else F.log_softmax(zs / tau, dim=-1)
    with torch.no_grad():
        logp = F.log_softmax(zt if tau == 1 else zt / tau, dim=-1)
        p = logp.exp()
    kl = (p * (logp - logq_tau)).sum(-1)  # [N]
    ce = -logq.gather(-1, targets[:, None]).squeeze(-1)  # [N]
    return (1 - alpha) * ce + alpha * (tau * tau) * kl


def main():
    a = pc.parse_args("PyTorch peer: KD training step (GPT-2 teacher -> GPT-2 student)")
    pc.setup_threads(a.threads)
    rss_start = pc.kib_to_mib(pc.rusage().ru_maxrss)
    s = a.spec
    V, T, B = s["vocab"], s["seq"], s["batch"]
    sdpa = HAS_SDPA if a.attn == "auto" else a.attn == "sdpa"
    if sdpa and not HAS_SDPA:
        raise SystemExit("--attn sdpa needs torch >= 2.0")
    torch.manual_seed(s["seed"])
    student = GPT(V, T, s["student"]["d"], s["student"]["layers"], s["student"]["heads"], sdpa).train()
    teacher = GPT(V, T, s["teacher"]["d"], s["teacher"]["layers"], s["teacher"]["heads"], sdpa).eval()
    teacher.requires_grad_(False)
    # decay matrices/embeddings only, like src/optim/adamw.ts
    decay = [p for p in student.parameters() if p.dim() >= 2]
    other = [p for p in student.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": other, "weight_decay": 0.0}],
                            lr=s["lr"], betas=(0.9, 0.999), eps=1e-8)
    precision = s.get("precision", "fp32")
    if precision == "bf16":
        def autocast():
            return torch.autocast("cpu", dtype=torch.bfloat16)
    else:
        autocast = contextlib.nullcontext
    gen = torch.Generator().manual_seed(s["seed"])
    timer, losses = pc.Timer(), []
    for i in range(a.warmup + a.steps):
        if i >= a.warmup:
            timer.start()
        tokens = torch.randint(0, V, (B, T + 1), generator=gen)  # drawn inside the step, as on our side
        ids, targets = tokens[:, :-1], tokens[:, 1:].reshape(-1)
        with autocast():
            with torch.no_grad():
                zt = teacher(ids).reshape(B * T, V)  # [N, V]
            zs = student(ids).reshape(B * T, V)  # [N, V]
        # fp32 loss and softmax (a no-op cast in fp32 runs)
        loss = kd_token_losses(zs.float(), zt.float(), targets, s["alpha"], s["tau"]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if i >= a.warmup:
            timer.stop()
    t = pc.summary_with_rate(timer.summary(), "tokens_per_s", B * T)
    pc.emit({
        "case": s["name"],
        "kind": "kd",
        "attention": "sdpa" if sdpa else "eager",
        "precision": precision,
        **t,
        "steps": a.steps,
        "warmup": a.warmup,
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "rss_start_mb": rss_start,
    })


if __name__ == "__main__":
    main()
