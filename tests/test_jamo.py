"""gpt.jamo: the jamo of Hangul syllable ids, and the loss that gives partial credit for them."""
import math

import numpy as np
import torch

from gpt.jamo import NOT_HANGUL, jamo_loss, jamo_table
from gpt.task import GPTTask
from gpt.vocab import Vocab

VOCAB = Vocab.build(["한글 각 힣 ab"], num_codes=24)
TINY = {"n_layer": 1, "n_head": 2, "n_embd": 16, "dropout": 0.0}


def test_table_decomposes_syllables_and_ignores_other_characters():
    table = jamo_table(VOCAB)
    assert table[VOCAB.char_id("각")].tolist() == [0, 0, 1]  # ㄱ ㅏ ㄱ
    assert table[VOCAB.char_id("한")].tolist() == [18, 0, 4]  # ㅎ ㅏ ㄴ
    assert table[VOCAB.char_id("힣")].tolist() == [18, 20, 27]  # the last syllable: ㅎ ㅣ ㅎ
    assert table[VOCAB.char_id("a")].tolist() == [NOT_HANGUL] * 3 and table[VOCAB.eos_id, 0] == NOT_HANGUL


def test_loss_is_minus_log_the_mass_of_syllables_sharing_each_jamo():
    """Target 한 (ㅎ ㅏ ㄴ) with the mass on 한 0.1, 각 0.3 (ㄱ ㅏ ㄱ), 힣 0.2 (ㅎ ㅣ ㅎ), 'a' 0.4: the initial ㅎ holds
    한 and 힣 (0.3), the vowel ㅏ 한 and 각 (0.4), the final ㄴ 한 alone (0.1); non-Hangul targets do not count."""
    probs = torch.full((VOCAB.size,), 1e-9)
    for char, p in {"한": 0.1, "각": 0.3, "힣": 0.2, "a": 0.4}.items():
        probs[VOCAB.char_id(char)] = p
    logits = probs.log()[None].repeat(2, 1)
    targets = torch.tensor([VOCAB.char_id("한"), VOCAB.char_id("a")])
    expected = -(math.log(0.3) + math.log(0.4) + math.log(0.1)) / 3
    torch.testing.assert_close(jamo_loss(logits, targets, jamo_table(VOCAB)), torch.tensor(expected), rtol=1e-4,
                               atol=1e-4)
    assert jamo_loss(logits[1:], targets[1:], jamo_table(VOCAB)).item() == 0.0


def test_the_task_adds_the_weighted_jamo_loss():
    torch.manual_seed(0)
    cfg = {"data": {"train": "x", "val": "x"}, "model": TINY, "order": "image_first", "run_dir": "/tmp/unused",
           "loss": {"jamo_weight": 0.5}}
    task = GPTTask(cfg, VOCAB, 10, 8)
    grids = [np.array([[1, 2, 3], [4, 5, 6]]), np.array([[7, 8, 9, 10]])]
    ids, part = VOCAB.sequences(grids, ["한글", "ab"], "image_first", 10, 8)
    batch = {"input_ids": torch.from_numpy(ids).long(), "loss_part": torch.from_numpy(part), "index": torch.arange(2)}
    out = task.losses(batch)
    torch.testing.assert_close(out["loss"], out["image_loss"] + out["text_loss"] + 0.5 * out["jamo_loss"])
    assert 0 < out["jamo_loss"].item()
    plain = GPTTask({**cfg, "loss": {}}, VOCAB, 10, 8)
    assert plain.jamo is None and "jamo_loss" not in plain.losses(batch)
    assert not any("jamo" in key for key in task.state_dict())  # checkpoints and exports as without it
