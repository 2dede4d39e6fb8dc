from __future__ import annotations

import torch

from prada.evaluation.generate import greedy_generate

from .helpers import make_markov_student

QUESTIONS = [
    "There are 5 apples and 3 oranges in the basket. How many fruits are there? ###",
    "Tom had 12 marbles. ###",
    "A coin is heads up. Ka flips the coin. Is the coin still heads up? ###",
    "hi ###",
    "Take the last letters of the words in \"Elon Musk\" and concatenate them. ###",
]


def _prompts(tok) -> list[list[int]]:
    return [tok(q)["input_ids"] for q in QUESTIONS]


def test_batched_equals_one_at_a_time_and_hf_generate(tiny_student) -> None:
    prompts = _prompts(tiny_student.tokenizer)
    batched, stats = greedy_generate(tiny_student, prompts, max_new_tokens=12, batch_size=4)
    assert stats.batches == 2 and stats.generated_tokens == sum(g.num_tokens for g in batched)
    for p, g in zip(prompts, batched):
        [single], _ = greedy_generate(tiny_student, [p], max_new_tokens=12, batch_size=1)
        assert g == single
        # Reference: Hugging Face generate (greedy) on the same prompt alone.
        ids = torch.tensor([p])
        ref = tiny_student.generate(ids, torch.ones_like(ids), max_new_tokens=12)[0].tolist()
        assert ref[: len(g.token_ids)] == list(g.token_ids)
    # Compaction of finished rows and sorting change nothing.
    same, _ = greedy_generate(tiny_student, prompts, max_new_tokens=12, batch_size=5, compact=False,
                              sort_by_length=False)
    assert same == batched


def test_stops_at_eos_and_at_stop_pattern_per_row(tiny_student) -> None:
    prompts = _prompts(tiny_student.tokenizer)
    free, _ = greedy_generate(tiny_student, prompts, max_new_tokens=10, batch_size=5)
    # Make the 4th generated token of row 0 an EOS: row 0 must end there, the others go on.
    eos = free[0].token_ids[3]
    out, _ = greedy_generate(tiny_student, prompts, max_new_tokens=10, batch_size=5, eos_ids=[eos])
    assert out[0].stop_reason == "eos" and out[0].token_ids == free[0].token_ids[:3]
    for f, o in zip(free[1:], out[1:]):
        if eos not in f.token_ids:
            assert o == f and o.stop_reason == "length" and len(o.token_ids) == 10


def test_markov_script_end_eos_length_and_compaction(tiny_tokenizer) -> None:
    tok = tiny_tokenizer
    t = lambda s: tok.convert_tokens_to_ids(tok.tokenize(s))  # noqa: E731
    end = t(" END")
    assert len(end) == 1
    a, b, c = t("a")[0], t("b")[0], t("c")[0]
    seven, eight, nine, x = t("7")[0], t("8")[0], t("9")[0], t("x")[0]
    arrow = t(" -->")
    assert len(arrow) == 1
    arrow = arrow[0]
    eos = tok.eos_token_id
    chains = [[a, seven, arrow, nine, end[0], x], [b, eight, eos], [c, c]]
    student = make_markov_student(tok, chains, loop_token=x)
    prompts = [t("q") + [a], t("q") + [b], t("q") + [c]]
    gens, stats = greedy_generate(student, prompts, max_new_tokens=6, batch_size=3, stop=("END",))
    assert gens[0].stop_reason == "stop" and gens[0].text.endswith("END") and "-->" in gens[0].text
    assert gens[0].token_ids == (seven, arrow, nine, end[0])
    assert gens[1].stop_reason == "eos" and gens[1].token_ids == (eight,) and gens[1].num_tokens == 2
    assert gens[2].stop_reason == "length" and gens[2].token_ids == (c,) * 6
    assert stats.generated_tokens == 4 + 2 + 6
    # Finished rows leave the batch: prefill 3 rows, then 3, 2 (after the EOS), 2, 1 (after END), 1.
    assert student.causal_lm.calls == [3, 3, 2, 2, 1, 1]


def test_per_row_sampling_draws_from_the_tempered_top_p_distribution() -> None:
    from prada.evaluation.generate import PerRowSampling

    logits = torch.tensor([[0.0, 1.0, 2.0, -1e9]] * 3)  # (3, V=4); the last token is impossible
    n = 6000
    counts = torch.zeros(3, 4)
    sampler = PerRowSampling([1.0, 0.5, 0.0], [1.0, 1.0, 1.0], [0, 1, 2])
    for _ in range(n):
        counts[torch.arange(3), sampler(logits, [0, 1, 2])] += 1
    for row, t in ((0, 1.0), (1, 0.5)):
        expected = torch.softmax(logits[row] / t, dim=-1)
        assert torch.allclose(counts[row] / n, expected, atol=0.02), (row, counts[row] / n, expected)
    assert counts[2].tolist() == [0, 0, n, 0]  # temperature 0: greedy
    # top-p 0.8: {2: 0.665, 1: 0.245} reach it, token 0 (0.09) is cut
    nucleus = PerRowSampling([1.0], [0.8], [0])
    drawn = {int(nucleus(logits[:1], [0])[0]) for _ in range(500)}
    assert drawn == {1, 2}


def test_sampled_rows_do_not_depend_on_their_batch(tiny_student) -> None:
    from prada.evaluation.generate import PerRowSampling, generate

    prompts = _prompts(tiny_student.tokenizer)
    temps, top_ps, seeds = [1.0, 0.0, 0.7, 1.0, 0.9], [1.0, 1.0, 0.9, 0.95, 1.0], [11, 12, 13, 14, 15]
    together, _ = generate(tiny_student, prompts, max_new_tokens=10, batch_size=5,
                           choose=PerRowSampling(temps, top_ps, seeds))
    for i, p in enumerate(prompts):
        [alone], _ = generate(tiny_student, [p], max_new_tokens=10, batch_size=1,
                              choose=PerRowSampling([temps[i]], [top_ps[i]], [seeds[i]]))
        assert alone == together[i]
    greedy, _ = greedy_generate(tiny_student, prompts, max_new_tokens=10, batch_size=5)
    assert together[1] == greedy[1]  # the temperature-0 row is greedy
    assert together != greedy


def test_continuous_batching_refills_finished_rows_without_changing_outputs(tiny_student) -> None:
    prompts = _prompts(tiny_student.tokenizer) * 2  # 10 prompts
    free, _ = greedy_generate(tiny_student, prompts[:5], max_new_tokens=10, batch_size=5)
    eos = {free[0].token_ids[2], free[3].token_ids[5]}  # rows end at different steps
    out, stats = greedy_generate(tiny_student, prompts, max_new_tokens=10, batch_size=4, eos_ids=eos)
    assert len({g.num_tokens for g in out}) > 1
    assert stats.batches > 3  # batches of 4 would prefill 3 times: finished rows were replaced
    for p, g in zip(prompts, out):
        [single], _ = greedy_generate(tiny_student, [p], max_new_tokens=10, batch_size=1, eos_ids=eos)
        assert g == single
    # One batch at a time (no compaction, no refill) gives the same generations.
    plain, plain_stats = greedy_generate(tiny_student, prompts, max_new_tokens=10, batch_size=4, eos_ids=eos,
                                         compact=False)
    assert plain == out and plain_stats.batches == 3
    # Sampled rows too: each keeps its own generator, whichever rows it joins.
    from prada.evaluation.generate import PerRowSampling, generate

    def sampler(rows: list[int]) -> PerRowSampling:
        return PerRowSampling([1.0] * len(rows), [0.95] * len(rows), [100 + i for i in rows])

    every_4th = range(0, len(tiny_student.tokenizer), 4)  # a near-uniform sample ends with p ~ 1/4 a step
    streamed, stats = generate(tiny_student, prompts, max_new_tokens=10, batch_size=3, eos_ids=every_4th,
                               choose=sampler(list(range(len(prompts)))))
    assert stats.batches > 4 and len({g.num_tokens for g in streamed}) > 1
    for i, p in enumerate(prompts):
        [alone], _ = generate(tiny_student, [p], max_new_tokens=10, batch_size=1, eos_ids=every_4th,
                              choose=sampler([i]))
        assert alone == streamed[i]


def test_markov_refill_takes_the_place_of_a_finished_row(tiny_tokenizer) -> None:
    tok = tiny_tokenizer
    t = lambda s: tok.convert_tokens_to_ids(tok.tokenize(s))  # noqa: E731
    a, b, c, d = t("a")[0], t("b")[0], t("c")[0], t("d")[0]
    seven, eight, x = t("7")[0], t("8")[0], t("x")[0]
    eos = tok.eos_token_id
    student = make_markov_student(tok, [[a, seven, eos], [b, c, c], [d, eight, eos]], loop_token=x)
    prompts = [t("q") + [a], t("q") + [b], t("q") + [d]]
    finished: list[int] = []
    gens, stats = greedy_generate(student, prompts, max_new_tokens=4, batch_size=2,
                                  on_finished=lambda done: finished.append(len(done)))
    assert [g.token_ids for g in gens] == [(seven,), (c, c, c, c), (eight,)]
    assert [g.stop_reason for g in gens] == ["eos", "length", "eos"]
    # prefill a+b, step, (a ends: b alone) step, prefill d into the free place, step with b and d.
    assert student.causal_lm.calls == [2, 2, 1, 1, 2]
    assert stats.batches == 2 and finished == [1, 2]


def test_a_wide_batch_is_prefilled_in_groups_of_similar_length(tiny_student) -> None:
    from prada.evaluation.generate import PREFILL_ROWS

    prompts = _prompts(tiny_student.tokenizer) * 8  # 40 prompts of 5 lengths
    assert PREFILL_ROWS < len(prompts)
    out, stats = greedy_generate(tiny_student, prompts, max_new_tokens=6, batch_size=len(prompts))
    assert stats.batches == 2  # 32 + 8 rows, one batch
    once, _ = greedy_generate(tiny_student, prompts[:5], max_new_tokens=6, batch_size=5)
    assert out == once * 8
