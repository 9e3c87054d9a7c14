#!/usr/bin/env python3
"""Check that a model folder loads in transformers and reproduces the expected logits.

Usage: hf_check_roundtrip.py DIR

Loads DIR with AutoModelForCausalLM.from_pretrained(DIR) (eager attention, float32), runs the
input_ids from DIR/expected.json and prints one JSON line
  {"max_abs_diff": x, "missing_keys": [...], "unexpected_keys": [...], "mismatched_keys": [...]}
comparing the logits with expected.json's logits. Exit code 0 if max_abs_diff < 1e-4 and no
parameter was missing from the checkpoint (a missing one would be randomly initialised), else 1.
If the folder cannot be loaded or run, prints {"max_abs_diff": null, "error": "..."} and exits 1.
"""
import json
import math
import os
import sys

TOL = 1e-4


def main(argv):
    if len(argv) != 2:
        print("usage: hf_check_roundtrip.py DIR", file=sys.stderr)
        return 2
    d = argv[1]
    try:
        import torch
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        torch.set_num_threads(1)
        torch.use_deterministic_algorithms(True)

        with open(os.path.join(d, "expected.json")) as f:
            exp = json.load(f)
        model, info = AutoModelForCausalLM.from_pretrained(
            d, attn_implementation="eager", dtype=torch.float32, output_loading_info=True)
        model.eval()
        ids = torch.tensor(exp["input_ids"], dtype=torch.int64)
        with torch.no_grad():
            logits = model(ids).logits.to(torch.float32)
        want = torch.tensor(exp["logits"]["data"], dtype=torch.float32).reshape(exp["logits"]["shape"])
        if tuple(logits.shape) != tuple(want.shape):
            raise ValueError(f"logits shape {list(logits.shape)} != expected {list(want.shape)}")
        diff = float((logits - want).abs().max())
        missing = sorted(info.get("missing_keys", []))
        unexpected = sorted(info.get("unexpected_keys", []))
        mismatched = sorted(str(k[0] if isinstance(k, (tuple, list)) else k)
                            for k in info.get("mismatched_keys", []))
        print(json.dumps({"max_abs_diff": diff, "missing_keys": missing, "unexpected_keys": unexpected,
                          "mismatched_keys": mismatched}))
        ok = math.isfinite(diff) and diff < TOL and not missing and not mismatched
        return 0 if ok else 1
    except Exception as e:  # noqa: BLE001 - report any load/run failure as a failed check
        print(json.dumps({"max_abs_diff": None, "error": f"{type(e).__name__}: {e}"}))
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
