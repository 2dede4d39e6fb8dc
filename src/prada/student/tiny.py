"""A tiny random causal LM + tokenizer built in code, for tests and smoke runs (no downloads).

The tokenizer is a byte-level BPE trained on a small built-in corpus (so ``###``, ``-->`` and
``END`` are single tokens, as in real tokenizers); the model is a randomly initialised
``LlamaForCausalLM`` of a few tens of thousands of parameters. Everything is seeded: two calls
write identical folders.

>>> import tempfile
>>> from transformers import AutoModelForCausalLM, AutoTokenizer
>>> with tempfile.TemporaryDirectory() as d:
...     path = save_tiny_model(d)
...     model = AutoModelForCausalLM.from_pretrained(path)
...     tok = AutoTokenizer.from_pretrained(path)
>>> model.config.hidden_size, tok.eos_token, tok.pad_token
(32, '</s>', '<pad>')
"""

from __future__ import annotations

from pathlib import Path

import torch

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"

_CORPUS = [
    "There are 5 apples and 3 oranges in the basket. How many fruits are there? ###",
    " There are 5 apples and 3 oranges, so 5 + 3 = 8 fruits. --> 8 END",
    "Tom had 12 marbles. He gave 4 to Sam. How many marbles does Tom have now? ###",
    " Tom had 12 marbles and gave away 4, so 12 - 4 = 8. --> 8 END",
    "A farmer has 7 cows and buys 6 more. Each cow eats 2 bales of hay. ###",
    " The answer is 26. Therefore, among A through E, the answer is (B). --> B END",
    "Take the last letters of the words in \"Elon Musk\" and concatenate them. ###",
    " The last letter of Elon is n. The last letter of Musk is k. --> nk END",
    "A coin is heads up. Ka flips the coin. Is the coin still heads up? ###",
    " The coin was flipped once, so it is tails up. --> no END",
    "Answer Choices: (A) 12 (B) 15 (C) 18 (D) 21 (E) 24. yes no True False",
    "Q: What is 9 times 7? A: Let's think step by step. 9 * 7 = 63. Therefore, the answer is 63.",
    "0 1 2 3 4 5 6 7 8 9 10 11 20 30 40 50 100 1000 3.5 0.25 $ % = + - * / ( ) [ ] , . ; : ! ? ' \"",
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ the a an of to in is was he she they",
    "how many much more less each total left after before then so because if when what which who",
]


def build_tiny_tokenizer(vocab_size: int = 384):
    """A ``PreTrainedTokenizerFast``: byte-level BPE (all 256 bytes + merges), bos/eos/pad/unk set."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[PAD, BOS, EOS, UNK],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    # Make the markers single tokens whatever the merges turned out to be.
    tok.add_tokens(["###", " ###", "-->", " -->", " END"])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        model_max_length=512,
        padding_side="right",
    )


def build_tiny_model(vocab_size: int, *, seed: int = 0, hidden_size: int = 32, layers: int = 2,
                     tie_embeddings: bool = False):
    """A random ``LlamaForCausalLM`` (4 heads, 2 KV heads, untied embeddings unless
    ``tie_embeddings``, as SmolLM2's are), fp32, eval mode."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=tie_embeddings,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = 0
    model.generation_config.eos_token_id = 2
    model.generation_config.bos_token_id = 1
    return model.eval()


def save_tiny_model(path: str | Path, *, seed: int = 0) -> Path:
    """Write a tiny random causal LM + its tokenizer to ``path`` (loadable by ``from_pretrained``)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer()
    ids = tokenizer.convert_tokens_to_ids([PAD, BOS, EOS])
    if ids != [0, 1, 2]:  # pragma: no cover - fixed by the special-token order above
        raise RuntimeError(f"unexpected special-token ids {ids}")
    model = build_tiny_model(len(tokenizer), seed=seed)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
