#!/usr/bin/env python3
"""Tiny Hugging Face reference checkpoints -> test/fixtures/hf/{gpt2-tiny,llama-tiny,llama-tiny-tied}/.

Each folder holds what `save_pretrained(dir, safe_serialization=True)` writes (config.json +
model.safetensors; generation_config.json is removed) plus expected.json with logits of
model(input_ids) in eval mode (eager attention, float32). All parameters are perturbed with noise after
the default init, so LayerNorm/RMSNorm weights are not 1 and biases are not 0, so that wrong wiring
(swapped weights, missing bias, wrong norm) changes the logits.
"""
import json
import os
import shutil

import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM
from transformers.utils import logging as hf_logging

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
torch.set_default_dtype(torch.float32)
hf_logging.disable_progress_bar()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HF_DIR = os.path.join(ROOT, "test", "fixtures", "hf")
INPUT_SEED = 4321
T = 16


def enc(t):
    t = t.detach().contiguous().to(torch.float32)
    return {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1).tolist()]}


@torch.no_grad()
def perturb(model, seed):
    """Add 0.1*N(0,1) noise to every parameter (shared/tied parameters once). The default init
    (std 0.02, norms 1, biases 0) gives near-uniform attention; with the noise the attention rows are
    clearly non-uniform, so errors in masking / RoPE / head layout change the logits visibly."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():  # named_parameters() de-duplicates tied weights
        p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.1)


def save(model, name, vocab):
    out = os.path.join(HF_DIR, name)
    if os.path.isdir(out):
        shutil.rmtree(out)
    model.eval()
    model.save_pretrained(out, safe_serialization=True)
    gc = os.path.join(out, "generation_config.json")
    if os.path.exists(gc):
        os.remove(gc)
    g = torch.Generator().manual_seed(INPUT_SEED)
    input_ids = torch.randint(0, vocab, (2, T), generator=g, dtype=torch.int64)
    with torch.no_grad():
        logits = model(input_ids).logits
    assert logits.shape == (2, T, vocab), logits.shape
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump({"input_ids": input_ids.tolist(), "logits": enc(logits)}, f, separators=(",", ":"))
        f.write("\n")
    files = sorted(os.listdir(out))
    print(f"{name}: " + ", ".join(f"{fn} ({os.path.getsize(os.path.join(out, fn))} B)" for fn in files))


def gpt2_tiny():
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=64, n_positions=32, n_embd=32, n_layer=2, n_head=4,
                     activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                     layer_norm_epsilon=1e-5,
                     # GPT2Config defaults bos/eos to 50256, outside the tiny vocab (transformers warns)
                     bos_token_id=63, eos_token_id=63)
    cfg._attn_implementation = "eager"
    model = GPT2LMHeadModel(cfg)
    perturb(model, 100)
    return model


def llama_tiny(tied):
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=tied,
                      attention_bias=False, hidden_act="silu")
    cfg._attn_implementation = "eager"
    model = LlamaForCausalLM(cfg)
    perturb(model, 200 if not tied else 300)
    return model


def main():
    save(gpt2_tiny(), "gpt2-tiny", 64)
    save(llama_tiny(False), "llama-tiny", 64)
    save(llama_tiny(True), "llama-tiny-tied", 64)


if __name__ == "__main__":
    main()
