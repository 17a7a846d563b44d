"""scripts.bench_draw: the held-out prompt set (words pretraining never rendered, 1-10 characters, mixed)."""
from collections import Counter

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
