"""scripts.bench_draw: the held-out prompt set (words pretraining never rendered, 1-10 characters, mixed)."""
from collections import Counter

import pytest

from scripts.bench_draw import SHARES, held_out_prompts
from scripts.words import split_words, word_pool


def test_prompts_are_held_out_words_of_every_kind():
    prompts = held_out_prompts(200, seed=0)
    assert len(prompts) == 200 and len({p.text for p in prompts}) > 190
    groups = Counter(p.group for p in prompts)
    assert groups == {"ko_horizontal": 80, "ko_vertical": 40, "en": 60, "phrase": 20}
    assert set(SHARES) < set(groups)
    assert all(1 <= len(p.text) <= 10 for p in prompts)
    assert all(p.vertical == (p.group == "ko_vertical") for p in prompts)
    assert any(p.text.isupper() for p in prompts) and any(p.text.islower() for p in prompts)
    trained = {language: set(split_words(word_pool(language, 20000), 0.05, 0)[0]) for language in ("ko", "en")}
    for prompt in prompts:
        for word in prompt.text.split(" "):
            assert word.lower() not in trained["ko"] | trained["en"], prompt
    assert [p.text for p in held_out_prompts(200, seed=0)] == [p.text for p in prompts]  # seeded


def test_rerank_by_several_readings_picks_the_candidate_most_copies_read():
    import numpy as np
    import pandas as pd

    from scripts.bench_draw_rerank import pick

    frame = pd.DataFrame({"prompt_index": [0, 0, 0, 1, 1, 2, 2]})
    # copy 0 (the image as it is), copy 1, copy 2
    exact = np.array([[True, False, False], [True, True, True], [False, True, True],
                      [False, False, False], [False, False, False], [True, False, False], [False, True, True]])
    score = np.array([[-0.1, -5.0, -5.0], [-0.9, -0.5, -0.4], [-3.0, -0.2, -0.2],
                      [-2.0, -np.inf, -1.0], [-1.5, -1.5, -1.5], [-0.5, -2.0, -2.0], [-1.0, -0.5, -0.5]])
    # one reading: both exact candidates of prompt 0 tie on votes and the likelier wins; prompt 1 by likelihood
    assert pick(frame, exact, score, 1).tolist() == [0, 4, 5]
    # three readings: candidate 1 is read exactly by all three copies; a copy that failed (-inf) sinks its mean
    assert pick(frame, exact, score, 3).tolist() == [1, 4, 6]
    # two readings: candidate 1 has two exact copies, candidates 0 and 2 one each
    assert pick(frame, exact, score, 2).tolist() == [1, 4, 6]
    # the first reading first: prompt 2 keeps the candidate its one reading spells
    assert pick(frame, exact, score, 3, first_first=True).tolist() == [1, 4, 5]


def test_sign_test_weighs_only_the_prompts_two_rankers_disagree_on():
    from scripts.stats import sign_test

    assert sign_test(0, 0) == 1.0 and sign_test(3, 3) == 1.0
    assert sign_test(13, 2) == sign_test(2, 13) == pytest.approx(2 * 121 / 2 ** 15)  # 1 + 15 + 105 of 2^15
    assert sign_test(5, 0) == pytest.approx(2 / 32)
