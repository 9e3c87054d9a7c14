#!/usr/bin/env python3
"""Encode text with Hugging Face `tokenizers` (the Rust library) as the reference for our BPE.

Usage: check_hf_tokenizer.py TOKENIZER_JSON TEXT_FILE OUT_JSON

TEXT_FILE is UTF-8; it is split on "\\n" only (so "\\r", U+0085, U+2028 stay inside lines, unlike
Python's splitlines). Writes OUT_JSON:
  {"tokenizers_version": str, "lines": [str], "ids": [[int]], "text_ids": [int]}
where ids[i] encodes lines[i] and text_ids encodes the whole file content (newlines included).
Special tokens are not added (add_special_tokens=False); added tokens in the text are still matched.
"""
import json
import sys

import tokenizers
from tokenizers import Tokenizer


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    tokenizer_json, text_file, out_json = sys.argv[1:]
    tok = Tokenizer.from_file(tokenizer_json)
    with open(text_file, encoding="utf-8", newline="") as f:
        text = f.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # a trailing newline ends the last line; it does not start an empty one
    ids = [enc.ids for enc in tok.encode_batch(lines, add_special_tokens=False)]
    text_ids = tok.encode(text, add_special_tokens=False).ids
    with open(out_json, "w", encoding="utf-8") as f:
        json.dump(
            {"tokenizers_version": tokenizers.__version__, "lines": lines, "ids": ids, "text_ids": text_ids},
            f,
            ensure_ascii=False,
        )
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
