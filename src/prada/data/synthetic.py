"""Synthetic symbolic tasks that need no data directory (the offline quickstart).

A source/target pair per family, with a domain shift in length and wording:

| task | domain | question |
| --- | --- | --- |
| ``synth_last_letters`` | source | 2 names, ``Take the last letters of each word in "Elon Musk" and concatenate them.`` |
| ``synth_last_letters_long`` | target | 4 common words, ``Join the final letter of every word in "..." into one string.`` |
| ``synth_coin_flip`` | source | 2 people flip or do not flip a coin |
| ``synth_coin_flip_long`` | target | 4 people |

Every example carries a short programmatic gold rationale, e.g.
``The last letter of "Elon" is "n". The last letter of "Musk" is "k". Concatenating them is "nk".``
Generation is deterministic given (task, split, seed): a ``random.Random`` seeded with a string.
Test questions never repeat a train question.

>>> ex = generate("synth_last_letters", "train", seed=0)[0]
>>> ex.answer == "".join(w[-1] for w in ex.meta["words"]).lower()
True
"""

from __future__ import annotations

import random

from prada.data.example import AnswerType, Category, Example

__all__ = ["SYNTHETIC_TASKS", "SYNTH_TRAIN_SIZE", "SYNTH_TEST_SIZE", "generate", "SyntheticSpec"]

SYNTH_TRAIN_SIZE = 500
"""Examples in each synthetic task's train split."""
SYNTH_TEST_SIZE = 100
"""Examples in each synthetic task's test split."""

FIRST_NAMES = tuple("""
Aaron Abby Adam Adrian Aiden Alan Albert Alex Alice Alicia Allen Alma Amber Amy Andre Andrea Andrew
Angel Angela Anita Ann Anna Anne Annie Anthony Antonio Arthur Ashley Austin Barbara Barry Ben Benito
Bernard Beth Betty Beverly Bill Billy Bob Bonnie Brad Brandon Brenda Brian Bruce Bryan Caleb Calvin
Carl Carla Carlos Carmen Carol Caroline Carrie Casey Cathy Cecil Chad Chanel Charles Charlie Chase
Chris Christina Chuck Cindy Claire Clara Clayton Clifford Connie Craig Crystal Curtis Cynthia Dale
Dan Dana Daniel Danny Darlene Darren Dave David Dawn Dean Debbie Deborah Denise Dennis Derek Diana
Diane Dolores Don Donald Donna Doris Dorothy Doug Duane Dustin Dwayne Earl Eddie Edgar Edith Edna
Edward Eileen Elaine Eleazar Elena Elizabeth Ella Ellen Elon Emily Emma Eric Erika Erin Ernest Ethan
Eugene Eva Evan Evelyn Felix Fernando Florence Floyd Frances Francis Frank Fred Gabriel Gail Gary
Gene Geneva George Gerald Gina Giselle Glen Gloria Gordon Grace Greg Hannah Harold Harry Hazel
Heather Helen Henry Herbert Holly Howard Ian Ida Irene Isaac Ivan Jack Jackie Jacob Jamal Jamie Jane
Janet Janice Jason Jay Jean Jeff Jen Jenny Jeremy Jerry Jesse Jessica Jill Jim Joan Joe Joel John
Jon Jordan Jose Joseph Josh Joy Joyce Juan Judy Julia Julian Julie June Justin Karen Karl Kate Katie
Kay Keith Kelly Ken Kent Kevin Kim Kirk Kyle Lance Larry Laura Lauren Lee Leo Leon Leslie Lewis
Lily Linda Lisa Lloyd Lois Lola Lorenzo Louis Lucas Lucy Luis Luke Lynn Marcus Margaret Maria Marie
Mario Mark Martha Martin Marvin Mary Mason Matt Maya Megan Melissa Mia Michael Michelle Mike Milton
Mireya Molly Monica Nancy Naomi Nathan Neil Nick Nina Noah Noel Nora Norma Oliver Olivia Omar Oscar
Owen Pablo Pam Patrick Paul Paula Pearl Peggy Penny Peter Phil Phyllis Rachel Ralph Ramon Randy Ray
Rebecca Rena Rex Rhonda Ricardo Rick Rita Robert Robin Rod Roger Ron Rosa Rose Ross Roy Ruby Russell
Ruth Ryan Sally Sam Samuel Sandra Sara Scott Sean Seth Shane Sharon Shawn Sheila Shelly Sherry
Silvia Sofia Sonia Stan Stella Steve Stuart Sue Susan Sylvia Tara Ted Teresa Terry Thelma Theo Tim
Tina Todd Tom Tony Tracy Travis Troy Tyler Vanessa Vera Vernon Vicky Victor Vincent Viola Violet
Virgil Wade Wallace Walter Wanda Warren Wayne Wendy Wesley Whitney Will Willie Wilma Xavier Yvonne
Zachary Zoe
""".split())
"""Common first names (Last Letter / Coin Flip style)."""

SURNAMES = tuple("""
Adams Allen Baker Bell Brooks Brown Bryant Butler Campbell Carter Clark Collins Cook Cooper Cox
Davis Diaz Edwards Evans Fisher Flores Foster Garcia Gomez Gonzalez Gray Green Griffin Hall Harris
Hayes Hill Howard Hughes Jackson James Jenkins Johnson Jones Kelly Kim King Lee Lewis Long Lopez
Martin Martinez Miller Mitchell Moore Morgan Morris Murphy Musk Myers Nelson Nguyen Parker Patel
Perez Perry Peterson Phillips Powell Price Ramirez Reed Reyes Richardson Rivera Roberts Robinson
Rogers Ross Russell Sanchez Sanders Scott Smith Stewart Sullivan Taylor Thomas Thompson Torres Turner
Walker Ward Watson White Williams Wilson Wood Wright Young
""".split())
"""Common surnames (the second word of a source Last Letter question)."""

COMMON_WORDS = tuple("""
apple river stone cloud garden window pencil orange silver forest candle rocket mirror planet
bridge castle dragon engine falcon guitar harbor island jacket kettle ladder magnet needle ocean
pepper quilt rabbit saddle tiger umbrella violin wagon yellow zebra anchor basket cactus desert
eagle feather glove hammer iceberg jungle kitten lemon meadow nectar onion parrot quartz ribbon
shadow tunnel valley walnut blanket button carpet cherry cookie copper cotton crystal dinner
doctor dollar donkey doorway dream drum elbow empire fabric farmer fence finger flower forest
fountain galaxy ginger giraffe glass grape honey horizon insect iron jelly jewel kingdom lantern
letter library lizard marble market melon monkey morning motor mountain napkin nickel noodle
number oyster paddle palace panda paper pebble pickle pillow pirate pocket potato prism puzzle
radio rain robot rocket salad sandal school shell shovel spider spoon square statue summer
sunset table teacher thunder ticket tomato tower travel tree trumpet turtle velvet village
wallet water whistle winter wizard wolf yogurt zipper
""".split())
"""Common English words (the target Last Letter questions)."""


class SyntheticSpec:
    """How one synthetic task writes a question, its answer and its gold rationale."""

    def __init__(self, name: str, family: str, n_items: int, answer_type: AnswerType, trigger: str,
                 description: str) -> None:
        self.name, self.family, self.n_items = name, family, n_items
        self.answer_type, self.trigger, self.description = answer_type, trigger, description

    def make(self, rng: random.Random) -> tuple[str, str, str, dict]:
        if self.family == "last_letters":
            return _last_letters(rng, self.n_items, long=self.n_items > 2)
        return _coin_flip(rng, self.n_items)


def _last_letters(rng: random.Random, n: int, long: bool) -> tuple[str, str, str, dict]:
    if long:
        words = rng.sample(COMMON_WORDS, n)
        question = f'Join the final letter of every word in "{" ".join(words)}" into one string.'
    else:
        words = [rng.choice(FIRST_NAMES), rng.choice(SURNAMES)][:n]
        question = f'Take the last letters of each word in "{" ".join(words)}" and concatenate them.'
    answer = "".join(w[-1] for w in words).lower()
    steps = " ".join(f'The last letter of "{w}" is "{w[-1].lower()}".' for w in words)
    rationale = f'{steps} Concatenating them is "{answer}".'
    return question, answer, rationale, {"words": words}


def _coin_flip(rng: random.Random, n: int) -> tuple[str, str, str, dict]:
    people = rng.sample(FIRST_NAMES, n)
    flips = [rng.random() < 0.5 for _ in people]
    sentences = [f"{p} flips the coin." if f else f"{p} does not flip the coin." for p, f in zip(people, flips, strict=True)]
    question = ("A coin is heads up. " + " ".join(sentences)
                + ' Is the coin still heads up? Note that "flip" here means "reverse".')
    heads = True
    steps = []
    for p, f in zip(people, flips, strict=True):
        if f:
            heads = not heads
            steps.append(f"{p} flips it, so it is {'heads' if heads else 'tails'} up.")
        else:
            steps.append(f"{p} does not, so it stays {'heads' if heads else 'tails'} up.")
    answer = "yes" if heads else "no"
    rationale = "The coin starts heads up. " + " ".join(steps)
    return question, answer, rationale, {"people": people, "flips": flips}


_LL_TRIGGER = "Therefore, the answer is"
_CF_TRIGGER = "Therefore, the answer (Yes or No) is"

SYNTHETIC_TASKS: dict[str, SyntheticSpec] = {
    s.name: s
    for s in (
        SyntheticSpec("synth_last_letters", "last_letters", 2, AnswerType.STRING, _LL_TRIGGER,
                      "last letters of a 2-word name (source)"),
        SyntheticSpec("synth_last_letters_long", "last_letters", 4, AnswerType.STRING, _LL_TRIGGER,
                      "last letters of 4 common words, worded differently (target)"),
        SyntheticSpec("synth_coin_flip", "coin_flip", 2, AnswerType.YES_NO, _CF_TRIGGER,
                      "coin flips by 2 people (source)"),
        SyntheticSpec("synth_coin_flip_long", "coin_flip", 4, AnswerType.YES_NO, _CF_TRIGGER,
                      "coin flips by 4 people (target)"),
    )
}


def generate(name: str, split: str, seed: int = 0, *, train_size: int | None = None,
             test_size: int | None = None) -> list[Example]:
    """The ``split`` ("train"/"test") of synthetic task ``name``; deterministic given ``seed``."""
    spec = SYNTHETIC_TASKS[name]
    train_size = SYNTH_TRAIN_SIZE if train_size is None else train_size
    test_size = SYNTH_TEST_SIZE if test_size is None else test_size
    # One stream: train first, then test, so test can exclude every train question.
    rng = random.Random(f"prada-synthetic/{name}/{seed}")
    seen: set[str] = set()
    parts: dict[str, list[Example]] = {"train": [], "test": []}
    for part, size in (("train", train_size), ("test", test_size)):
        attempts = 0
        while len(parts[part]) < size:
            attempts += 1
            if attempts > 50 * size + 1000:  # bounded: the name lists are large, this never trips
                raise RuntimeError(f"{name}: cannot draw {size} distinct questions")
            question, answer, rationale, meta = spec.make(rng)
            if question in seen:
                continue
            seen.add(question)
            i = len(parts[part])
            parts[part].append(Example(
                id=f"{name}/{part}/{i}", dataset=name, category=Category.SYMBOLIC,
                answer_type=spec.answer_type, question=question, answer=answer,
                rationale=rationale, meta=meta,
            ))
        if part == split:
            return parts[part]
    raise ValueError(f"synthetic tasks have splits 'train' and 'test', not {split!r}")
