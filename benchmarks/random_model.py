"""Save a randomly initialised copy of a model folder: same architecture, tokenizer and dtype
layout, seeded weights. For throughput and memory figures on a machine that has the code but not
the weights (a lent GPU cannot download them); accuracy from such a model means nothing.

    python benchmarks/random_model.py ~/.cache/prada/models/smollm2-135m-instruct /tmp/smollm2-random
    python benchmarks/random_model.py SRC OUT --config-only   # config + tokenizer (a few MB) to carry

``SRC`` needs ``config.json`` and the tokenizer files; a folder written with ``--config-only`` is
a valid ``SRC`` on the other machine.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                   "generation_config.json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--config-only", action="store_true", help="copy config and tokenizer, no weights")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", *TOKENIZER_FILES):
        if (args.src / name).is_file():
            shutil.copy2(args.src / name, args.out / name)
    if args.config_only:
        print(f"config and tokenizer of {args.src} copied to {args.out}")
        return

    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(args.seed)
    config = AutoConfig.from_pretrained(args.src)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(args.out)
    n = sum(p.numel() for p in model.parameters())
    print(f"random {config.model_type} with {n / 1e6:.1f} M parameters saved to {args.out}")


if __name__ == "__main__":
    main()
