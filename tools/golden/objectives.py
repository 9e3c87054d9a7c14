#!/usr/bin/env python3
"""Golden fixtures for lmdistill's distillation objectives -> test/fixtures/golden/objectives.json.

An independent PyTorch implementation of every objective, written from docs methods.md (sections 0, 2a,
"Sparse top-k teacher logits and the missing mass", 2c) and, for gjsd, mirroring the math of TRL's
`generalized_jsd_loss` (log-space mixture via logsumexp over a stack, log1p(-beta), beta == 0 / 1
special-cased to forward / reverse KL). Each case stores the token-mean loss over unmasked positions
(mask AND labels != -100), the per-token losses of all positions, and the gradient of the loss w.r.t.
the student logits by PyTorch autograd (float32, 1 thread). Feature cases (hidden-state MSE/cosine with
a projection and layer map, attention-map KL, TRG relations) store gradients w.r.t. the student tensors.

Conventions shared with the TypeScript side (they are part of the spec, see src/distill/**):
- vocabulary entries where the student's or the teacher's logit is -inf contribute nothing
  (DistiLLM's inf_mask);
- a sparse teacher row becomes k+1 categories: its k ids and a tail bucket; the student's tail mass is
  r_S = sum of q outside the ids (q over the full vocabulary); 'renormalize': teacher renormalised over
  its ids and 0 in the tail; 'tail': teacher tail r_T = max(1 - sum p_k, 1e-6); at temperature tau the
  teacher categories are p^(1/tau) renormalised;
- divergences are KL forms (0 for identical inputs), tau^2 on by default except for gjsd and tvd.
Run: .venv/bin/python tools/golden/objectives.py  (deterministic, byte-identical output)
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
OUT = os.path.join(ROOT, "test", "fixtures", "golden", "objectives.json")
NEG_INF = float("-inf")
TAIL_FLOOR = 1e-6


def enc(t):
    t = t.detach().contiguous()
    if t.dtype.is_floating_point:
        assert t.dtype == torch.float32
        data = [float(v) for v in t.reshape(-1).tolist()]
    else:
        data = [int(v) for v in t.reshape(-1).tolist()]
    return {"shape": list(t.shape), "data": data}


def enc_logits(t):
    """Like enc, but -inf entries are written as 0 and listed by flat index (JSON has no -inf)."""
    flat = t.detach().reshape(-1)
    neg = [i for i, v in enumerate(flat.tolist()) if v == NEG_INF]
    clean = torch.where(torch.isinf(t), torch.zeros_like(t), t)
    return enc(clean), neg


def gen_for(name):
    return torch.Generator().manual_seed(zlib.crc32(name.encode("utf-8")))


# ----------------------------------------------------------------------------- distributions


def dense_dists(zs, zt, tau):
    """p, log p, q, log q over the vocabulary; entries with a -inf logit on either side are dropped."""
    keep = torch.isfinite(zs) & torch.isfinite(zt)
    logq = F.log_softmax(zs / tau, dim=-1)
    logp = F.log_softmax(zt / tau, dim=-1)
    logq = torch.where(keep, logq, torch.zeros_like(logq))
    logp = torch.where(keep, logp, torch.zeros_like(logp))
    q = torch.where(keep, logq.exp(), torch.zeros_like(logq))
    p = torch.where(keep, logp.exp(), torch.zeros_like(logp))
    return p, logp, q, logq, keep


def sparse_dists(zs, ids, lps, tau, mode):
    """The k+1 categories (ids + tail bucket) of a sparse teacher, per methods.md / DistillKit."""
    V, k = zs.shape[-1], ids.shape[-1]
    logq_full = F.log_softmax(zs / tau, dim=-1)
    logq_k = logq_full.gather(-1, ids)
    in_k = torch.zeros_like(zs, dtype=torch.bool).scatter(-1, ids, True)
    log_rs = torch.logsumexp(torch.where(in_k, torch.full_like(logq_full, NEG_INF), logq_full), dim=-1, keepdim=True)
    logq = torch.cat([logq_k, log_rs], dim=-1)
    a = lps.double() / tau
    if mode == "renormalize":
        logp_k = a - torch.logsumexp(a, dim=-1, keepdim=True)
        logp_tail = torch.full_like(a[..., :1], NEG_INF)
    else:
        r_t = torch.clamp(1.0 - lps.double().exp().sum(-1, keepdim=True), min=TAIL_FLOOR)
        tail = torch.log(r_t) / tau
        z = torch.logsumexp(torch.cat([a, tail], dim=-1), dim=-1, keepdim=True)
        logp_k, logp_tail = a - z, tail - z
    logp = torch.cat([logp_k, logp_tail], dim=-1).float()
    keep = torch.cat([torch.isfinite(lps) & torch.isfinite(zs.gather(-1, ids)),
                      torch.isfinite(log_rs) & torch.tensor(k < V)], dim=-1)
    logq = torch.where(keep, logq, torch.zeros_like(logq))
    logp = torch.where(keep, logp, torch.zeros_like(logp))
    q = torch.where(keep, logq.exp(), torch.zeros_like(logq))
    p = torch.where(keep, logp.exp(), torch.zeros_like(logp))
    return p, logp, q, logq, keep


def plogp_minus(p, logp, x, keep):
    """sum p (log p - x) over kept entries with 0 log 0 = 0."""
    ok = keep & (p > 0)
    safe_logp = torch.where(ok, logp, torch.zeros_like(logp))
    return torch.where(ok, p * (safe_logp - x), torch.zeros_like(p)).sum(-1)


def fkl(p, logp, q, logq, keep):
    return plogp_minus(p, logp, logq, keep)


def rkl(p, logp, q, logq, keep):
    return torch.where(keep, q * (logq - logp), torch.zeros_like(q)).sum(-1)


def gjsd(p, logp, q, logq, keep, beta):
    # TRL generalized_jsd_loss math: beta == 0 -> KL(p||q); beta == 1 -> KL(q||p); else mixture in log space
    if beta == 0:
        return fkl(p, logp, q, logq, keep)
    if beta == 1:
        return rkl(p, logp, q, logq, keep)
    b = torch.tensor(beta, dtype=logq.dtype)
    mixture = torch.logsumexp(torch.stack([logq + torch.log1p(-b), logp + torch.log(b)]), dim=0)
    kl_teacher = plogp_minus(p, logp, mixture, keep)
    kl_student = torch.where(keep, q * (logq - mixture), torch.zeros_like(q)).sum(-1)
    return beta * kl_teacher + (1 - beta) * kl_student


def tvd(p, logp, q, logq, keep):
    return 0.5 * torch.where(keep, (p - q).abs(), torch.zeros_like(p)).sum(-1)


def skew_fkl(p, logp, q, logq, keep, alpha):
    m = alpha * p + (1 - alpha) * q  # DistiLLM: mixture in probability space
    logm = torch.log(torch.where(keep, m, torch.ones_like(m)))
    return plogp_minus(p, logp, logm, keep)


def skew_rkl(p, logp, q, logq, keep, alpha):
    m = (1 - alpha) * p + alpha * q
    logm = torch.log(torch.where(keep, m, torch.ones_like(m)))
    return torch.where(keep, q * (logq - logm), torch.zeros_like(q)).sum(-1)


def taid(p, logp, q, logq, keep, t):
    lq = logq.detach()
    if t == 0:
        a = lq
    else:
        a = (1 - t) * lq + t * torch.where(p > 0, logp, torch.full_like(logp, NEG_INF))
    a = torch.where(keep, a, torch.full_like(a, NEG_INF))
    logr = F.log_softmax(a, dim=-1)
    r = logr.exp()
    return plogp_minus(r, logr, logq, keep & (r > 0))


def entropy_weights(p, logp, q, logq, keep):
    hp = -torch.where(keep & (p > 0), p * logp, torch.zeros_like(p)).sum(-1)
    hq = -torch.where(keep, q * logq, torch.zeros_like(q)).sum(-1)
    s = hp + hq
    wr = torch.where(s > 1e-12, hp / torch.where(s > 1e-12, s, torch.ones_like(s)), torch.full_like(s, 0.5))
    return (1 - wr).detach(), wr.detach()


def akl_weights(p, q, keep, mu):
    # head = top teacher tokens (stable sort, descending) while the mass before them is < mu
    pk = torch.where(keep, p, torch.full_like(p, -1.0))
    sp, order = torch.sort(pk, dim=-1, descending=True, stable=True)
    before = torch.cumsum(sp.clamp(min=0), dim=-1) - sp.clamp(min=0)
    head_sorted = (before < mu) & (sp >= 0)
    head = torch.zeros_like(head_sorted).scatter(-1, order, head_sorted) & keep
    gap = torch.where(keep, (p - q).abs(), torch.zeros_like(p))
    hg = (gap * head).sum(-1)
    tg = (gap * (~head)).sum(-1)
    s = hg + tg + 1e-12
    return hg / s, tg / s


def pld_rows(zs, labels, k, gold_first, dense_zt=None, sparse=None):
    """Per-position PLD losses (python loops over rows for the ranking, torch for the math)."""
    B, T, V = zs.shape
    out = []
    for b in range(B):
        for s in range(T):
            y = int(labels[b, s]) if (gold_first and labels is not None) else -100
            cand, gold_w = [], 0.0
            if dense_zt is not None:
                pt = torch.softmax(dense_zt[b, s].double(), -1)
                for v in range(V):
                    if v == y:
                        gold_w = float(pt[v])
                    else:
                        cand.append((-float(dense_zt[b, s, v]), v, float(pt[v])))
            else:
                ids, lps = sparse
                for j in range(ids.shape[-1]):
                    v, lp = int(ids[b, s, j]), float(lps[b, s, j])
                    if v == y:
                        gold_w = math.exp(lp)
                    else:
                        cand.append((-lp, v, math.exp(lp)))
            cand.sort()
            items, w = ([y], [gold_w]) if y >= 0 else ([], [])
            for _, v, pw in cand:
                if len(items) >= k:
                    break
                items.append(v)
                w.append(pw)
            sc = zs[b, s, items]
            lse = torch.logcumsumexp(sc.flip(0), 0).flip(0)
            out.append((torch.tensor(w, dtype=torch.float32) * (lse - sc)).sum())
    return torch.stack(out).reshape(B, T)


def per_token(name, opts, zs, zt, sparse, labels):
    """Per-position losses [B, T] of objective `name`."""
    if name == "ce":
        B, T, V = zs.shape
        return F.cross_entropy(zs.reshape(-1, V), labels.reshape(-1), ignore_index=-100, reduction="none").reshape(B, T)
    if name == "pld":
        return pld_rows(zs, labels, opts.get("k", 16), opts.get("gold_first", True), dense_zt=zt, sparse=sparse)
    tau = opts.get("temperature", 1.0)
    if sparse is not None:
        d = sparse_dists(zs, sparse[0], sparse[1], tau, opts.get("sparse", "renormalize"))
    else:
        d = dense_dists(zs, zt, tau)
    p, logp, q, logq, keep = d
    if name == "fkl":
        l = fkl(*d)
    elif name == "rkl":
        l = rkl(*d)
    elif name == "gjsd":
        l = gjsd(*d, opts.get("beta", 0.5))
    elif name == "tvd":
        l = tvd(*d)
    elif name == "skew_fkl":
        l = skew_fkl(*d, opts.get("alpha", 0.1))
    elif name == "skew_rkl":
        l = skew_rkl(*d, opts.get("alpha", 0.1))
    elif name == "taid":
        l = taid(*d, opts.get("t", opts.get("t_start", 0.4)))
    elif name == "bdkd":
        if opts.get("weighting", "entropy") == "akl":
            wf, wr = akl_weights(p, q, keep, opts.get("mu", 0.5))
            wf, wr = wf.detach(), wr.detach()
        else:
            wf, wr = entropy_weights(*d)
        l = wf * fkl(*d) + wr * rkl(*d)
    elif name == "akl":
        wf, wr = akl_weights(p, q, keep, opts.get("mu", 0.5))
        if opts.get("detach_weights", False):
            wf, wr = wf.detach(), wr.detach()
        l = wf * fkl(*d) + wr * rkl(*d)
    else:
        raise ValueError(name)
    default_t2 = name not in ("gjsd", "tvd")
    if opts.get("tau_squared", default_t2):
        l = l * tau * tau
    return l


# ----------------------------------------------------------------------------- cases


def make_case(name, objective, opts, V=9, k=None, neg_inf=None, mask=True, ignore=True, teacher_scale=2.0):
    g = gen_for(name)
    B, T = 2, 3
    zs = torch.randn(B, T, V, generator=g) * 1.5
    zt = torch.randn(B, T, V, generator=g) * teacher_scale + 0.5 * zs
    labels = torch.randint(0, V, (B, T), generator=g)
    if ignore:
        labels[1, 2] = -100
    m = torch.ones(B, T)
    if mask:
        m[0, 0] = 0
    if neg_inf == "both":  # a masked vocabulary entry in both models
        zs[..., V - 1] = NEG_INF
        zt[..., V - 1] = NEG_INF
    elif neg_inf == "teacher":  # the teacher alone forbids a token
        zt[0, 1, 2] = NEG_INF
        zt[1, 0, 5] = NEG_INF
    sparse = None
    if k is not None:
        logp_t = F.log_softmax(zt, dim=-1)
        top = torch.topk(logp_t, k, dim=-1)
        perm = torch.randperm(k, generator=g)  # ids in no particular order
        sparse = (top.indices[..., perm].contiguous(), top.values[..., perm].contiguous())
    leaf = zs.clone().requires_grad_(True)
    l = per_token(objective, opts, leaf, None if sparse is not None else zt, sparse, labels)
    counted = (m > 0) & (labels != -100)
    loss = torch.where(counted, l, torch.zeros_like(l)).sum() / counted.sum()
    loss.backward()
    student, s_neg = enc_logits(zs)
    case = {
        "name": name, "objective": objective, "options": opts, "B": B, "T": T, "V": V,
        "student": student, "labels": enc(labels), "mask": enc(m),
        "loss": float(loss.detach()), "per_token": enc(l.detach()), "grad": enc(leaf.grad),
    }
    if sparse is not None:
        case["sparse"] = {"ids": enc(sparse[0].to(torch.int32)), "logprobs": enc(sparse[1]), "k": k}
        t_neg = []
    else:
        case["teacher"], t_neg = enc_logits(zt)
    if s_neg or t_neg:
        case["neg_inf"] = {"student": s_neg, "teacher": t_neg}
    assert torch.isfinite(loss) and torch.isfinite(leaf.grad).all(), name
    return case


def logit_cases():
    c = []
    add = lambda name, obj, opts, **kw: c.append(make_case(name, obj, opts, **kw))
    add("ce", "ce", {}, V=7)
    add("ce no mask", "ce", {}, V=11, mask=False, ignore=False)
    add("fkl t1", "fkl", {}, V=7)
    add("fkl t2", "fkl", {"temperature": 2.0}, V=9)
    add("fkl t0.7 no tau2", "fkl", {"temperature": 0.7, "tau_squared": False}, V=11)
    add("fkl -inf both", "fkl", {"temperature": 2.0}, V=9, neg_inf="both")
    add("fkl -inf teacher", "fkl", {}, V=9, neg_inf="teacher")
    add("rkl t1", "rkl", {}, V=8)
    add("rkl t2", "rkl", {"temperature": 2.0}, V=10)
    add("rkl -inf both", "rkl", {}, V=9, neg_inf="both")
    for beta in (0.0, 0.1, 0.5, 0.9, 1.0):
        add(f"gjsd beta{beta}", "gjsd", {"beta": beta}, V=9)
    add("gjsd beta0.5 t2", "gjsd", {"beta": 0.5, "temperature": 2.0}, V=10)
    add("gjsd beta0.5 t2 tau2", "gjsd", {"beta": 0.5, "temperature": 2.0, "tau_squared": True}, V=8)
    add("gjsd -inf both", "gjsd", {"beta": 0.3}, V=9, neg_inf="both")
    add("tvd t1", "tvd", {}, V=7)
    add("tvd t2", "tvd", {"temperature": 2.0}, V=9)
    add("tvd -inf teacher", "tvd", {}, V=9, neg_inf="teacher")
    for alpha in (0.1, 0.5):
        add(f"skew_fkl a{alpha}", "skew_fkl", {"alpha": alpha}, V=9)
        add(f"skew_rkl a{alpha}", "skew_rkl", {"alpha": alpha}, V=9)
    add("skew_fkl a0.1 t2", "skew_fkl", {"alpha": 0.1, "temperature": 2.0}, V=11)
    add("skew_rkl a0.1 t2", "skew_rkl", {"alpha": 0.1, "temperature": 2.0}, V=11)
    add("taid t0.4", "taid", {"t": 0.4}, V=9)
    add("taid t0.8 tau2", "taid", {"t": 0.8, "temperature": 2.0}, V=10)
    add("taid default t", "taid", {"t_start": 0.25}, V=8)
    add("bdkd entropy", "bdkd", {}, V=9)
    add("bdkd entropy t2", "bdkd", {"temperature": 2.0}, V=10)
    add("bdkd akl weighting", "bdkd", {"weighting": "akl"}, V=9)
    add("akl", "akl", {}, V=9)
    add("akl mu0.3 t2", "akl", {"mu": 0.3, "temperature": 2.0}, V=11)
    add("akl detached", "akl", {"detach_weights": True}, V=8)
    add("pld k4 gold", "pld", {"k": 4}, V=9)
    add("pld k3 no gold", "pld", {"k": 3, "gold_first": False}, V=10)
    add("pld k20 gold", "pld", {"k": 20}, V=7)
    # sparse top-k teachers, both treatments of the missing mass
    for mode in ("renormalize", "tail"):
        s = {"sparse": mode}
        add(f"sparse {mode} fkl", "fkl", dict(s), V=9, k=4)
        add(f"sparse {mode} fkl t2", "fkl", dict(s, temperature=2.0), V=11, k=3)
        add(f"sparse {mode} gjsd beta0.5", "gjsd", dict(s, beta=0.5), V=9, k=4)
        add(f"sparse {mode} gjsd beta0", "gjsd", dict(s, beta=0.0), V=9, k=4)
        add(f"sparse {mode} tvd", "tvd", dict(s), V=9, k=4)
        add(f"sparse {mode} skew_fkl", "skew_fkl", dict(s, alpha=0.1), V=10, k=5)
        add(f"sparse {mode} skew_rkl", "skew_rkl", dict(s, alpha=0.5), V=10, k=5)
        add(f"sparse {mode} taid", "taid", dict(s, t=0.6, temperature=2.0), V=9, k=4)
    add("sparse tail rkl", "rkl", {"sparse": "tail"}, V=9, k=4)
    add("sparse tail rkl t2", "rkl", {"sparse": "tail", "temperature": 2.0}, V=8, k=2)
    add("sparse tail gjsd beta1", "gjsd", {"sparse": "tail", "beta": 1.0}, V=9, k=4)
    add("sparse tail bdkd", "bdkd", {"sparse": "tail"}, V=9, k=4)
    add("sparse tail akl", "akl", {"sparse": "tail"}, V=9, k=4)
    add("sparse pld gold", "pld", {"k": 4}, V=9, k=4)
    add("sparse k1 renormalize fkl", "fkl", {}, V=7, k=1)
    return c


# ----------------------------------------------------------------------------- feature cases


def cos_rows(a, b, eps=1e-12):
    return (a * b).sum(-1) / (torch.sqrt((a * a).sum(-1) + eps) * torch.sqrt((b * b).sum(-1) + eps))


def feature_cases():
    cases = []
    B, T = 2, 4
    mask = torch.ones(B, T)
    mask[1, 3] = 0
    counted = mask > 0

    def token_mean(l):
        return torch.where(counted, l, torch.zeros_like(l)).sum() / counted.sum()

    # hidden states, student 2 layers of width 5, teacher 4 layers of width 6; uniform map 0<-1, 1<-3
    for kind in ("mse", "cosine"):
        name = f"hidden {kind} projected"
        g = gen_for(name)
        hs = [torch.randn(B, T, 5, generator=g).requires_grad_(True) for _ in range(2)]
        ht = [torch.randn(B, T, 6, generator=g) for _ in range(4)]
        W = [(torch.randn(6, 5, generator=g) * 0.4).requires_grad_(True) for _ in range(2)]
        pairs = [(0, 1), (1, 3)]
        per = 0
        for i, (s, t) in enumerate(pairs):
            ps = hs[s] @ W[i].T
            if kind == "mse":
                per = per + ((ps - ht[t]) ** 2).sum(-1) / 6
            else:
                per = per + (1 - cos_rows(ps, ht[t]))
        per = per / len(pairs)
        loss = token_mean(per)
        loss.backward()
        cases.append({"name": name, "kind": "hidden", "loss_kind": kind, "options": {"layer_map": "uniform"},
                      "map": pairs, "mask": enc(mask), "student": [enc(h) for h in hs], "teacher": [enc(h) for h in ht],
                      "W": [enc(w) for w in W], "loss": float(loss.detach()), "per_token": enc(per.detach().reshape(-1)),
                      "grad_student": [enc(h.grad) for h in hs], "grad_W": [enc(w.grad) for w in W]})
    name = "hidden cosine same width"
    g = gen_for(name)
    hs = [torch.randn(B, T, 6, generator=g).requires_grad_(True) for _ in range(3)]
    ht = [torch.randn(B, T, 6, generator=g) for _ in range(3)]
    per = sum(1 - cos_rows(hs[i], ht[i]) for i in range(3)) / 3
    loss = token_mean(per)
    loss.backward()
    cases.append({"name": name, "kind": "hidden", "loss_kind": "cosine", "options": {"layer_map": [[0, 0], [1, 1], [2, 2]]},
                  "map": [(0, 0), (1, 1), (2, 2)], "mask": enc(mask), "student": [enc(h) for h in hs], "teacher": [enc(h) for h in ht],
                  "W": [], "loss": float(loss.detach()), "per_token": enc(per.detach().reshape(-1)),
                  "grad_student": [enc(h.grad) for h in hs], "grad_W": []})

    # attention maps: causal softmax rows [B, H, T, T]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for heads, hs_n, ht_n in (("match", 2, 2), ("average", 2, 3)):
        name = f"attention kl {heads}"
        g = gen_for(name)
        sc_s = torch.randn(B, hs_n, T, T, generator=g) * 2
        sc_t = torch.randn(B, ht_n, T, T, generator=g) * 2
        a_s = torch.softmax(sc_s.masked_fill(~causal, NEG_INF), -1).detach().requires_grad_(True)
        a_t = torch.softmax(sc_t.masked_fill(~causal, NEG_INF), -1)
        xs, xt = (a_s.mean(1, keepdim=True), a_t.mean(1, keepdim=True)) if heads == "average" else (a_s, a_t)
        pos = xt > 0
        kl = torch.where(pos, xt * (torch.log(torch.where(pos, xt, torch.ones_like(xt))) - torch.log(torch.where(pos, xs, torch.ones_like(xs)))), torch.zeros_like(xt))
        per = kl.sum(-1).mean(1)  # [B, T]
        loss = token_mean(per)
        loss.backward()
        cases.append({"name": name, "kind": "attention", "options": {"heads": heads}, "mask": enc(mask),
                      "student": enc(a_s), "teacher": enc(a_t), "loss": float(loss.detach()),
                      "per_token": enc(per.detach().reshape(-1)), "grad_student": enc(a_s.grad)})

    # TRG: relation graph (+ top-k neighbours, + contextual InfoNCE through a projection)
    for name, top_k, ctx_w in (("trg relations", 0, 0.0), ("trg top2 ctx", 2, 0.5)):
        g = gen_for(name)
        T2 = 5
        m2 = torch.ones(B, T2)
        m2[0, 4] = 0
        hs = torch.randn(B, T2, 5, generator=g).requires_grad_(True)
        ht = torch.randn(B, T2, 6, generator=g)
        W = (torch.randn(6, 5, generator=g) * 0.4).requires_grad_(True)
        ns = hs / torch.sqrt((hs * hs).sum(-1, keepdim=True) + 1e-12)
        nt = ht / torch.sqrt((ht * ht).sum(-1, keepdim=True) + 1e-12)
        es, et = ns @ ns.transpose(1, 2), nt @ nt.transpose(1, 2)
        per = torch.zeros(B, T2)
        rows = []
        for b in range(B):
            for i in range(T2):
                js = [j for j in range(T2) if j != i and m2[b, j] > 0]
                if top_k > 0:
                    js = sorted(js, key=lambda j: (-float(et[b, i, j]), j))[:top_k]
                val = sum((es[b, i, j] - et[b, i, j]) ** 2 for j in js) / len(js)
                if ctx_w > 0:
                    ps = hs[b] @ W.T
                    nps = ps / torch.sqrt((ps * ps).sum(-1, keepdim=True) + 1e-12)
                    logits = (nps[i] @ nt[b].T) / 0.1
                    allowed = torch.tensor([j == i or bool(m2[b, j] > 0) for j in range(T2)])
                    logits = torch.where(allowed, logits, torch.full_like(logits, NEG_INF))
                    val = val - ctx_w * F.log_softmax(logits, -1)[i]
                rows.append(val)
        per = torch.stack(rows).reshape(B, T2)
        cnt = m2 > 0
        loss = torch.where(cnt, per, torch.zeros_like(per)).sum() / cnt.sum()
        loss.backward()
        cases.append({"name": name, "kind": "trg", "options": {"top_k": top_k, "ctx_weight": ctx_w, "ctx_temperature": 0.1},
                      "mask": enc(m2), "student": enc(hs), "teacher": enc(ht), "W": enc(W), "loss": float(loss.detach()),
                      "per_token": enc(per.detach().reshape(-1)), "grad_student": enc(hs.grad),
                      "grad_W": enc(W.grad) if ctx_w > 0 else None})
    return cases


def main():
    out = {"logit_cases": logit_cases(), "feature_cases": feature_cases()}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print(f"wrote {OUT}: {len(out['logit_cases'])} logit cases, {len(out['feature_cases'])} feature cases, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
