"""gpt.jamo: the jamo of Hangul syllable ids, heads that start from the LM head's rows, and the auxiliary loss."""
import numpy as np
import torch
import torch.nn.functional as F

from gpt.jamo import NOT_HANGUL, JamoHeads, jamo_table
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


def test_heads_start_at_the_mean_output_embedding_of_their_syllables():
    embeddings = torch.randn(VOCAB.size, 16)
    heads = JamoHeads(VOCAB, embeddings)
    han, gak, geul = VOCAB.char_id("한"), VOCAB.char_id("각"), VOCAB.char_id("글")
    torch.testing.assert_close(heads.heads[1].weight[0], (embeddings[han] + embeddings[gak]) / 2)  # vowel ㅏ
    torch.testing.assert_close(heads.heads[0].weight[0], (embeddings[gak] + embeddings[geul]) / 2)  # initial ㄱ
    torch.testing.assert_close(heads.heads[1].weight[18], embeddings[geul])  # vowel ㅡ: 글 alone
    assert (heads.heads[2].weight[2] == 0).all()  # final ㄲ: no syllable here has it


def test_loss_counts_only_hangul_targets():
    heads = JamoHeads(VOCAB, torch.randn(VOCAB.size, 16))
    hidden = torch.randn(4, 16)
    targets = torch.tensor([VOCAB.char_id("한"), VOCAB.char_id("a"), VOCAB.char_id("힣"), VOCAB.eos_id])
    expected = sum(F.cross_entropy(head(hidden[[0, 2]]), jamo_table(VOCAB)[targets[[0, 2]], i])
                   for i, head in enumerate(heads.heads)) / 3
    torch.testing.assert_close(heads.loss(hidden, targets), expected)
    assert heads.loss(hidden[[1, 3]], targets[[1, 3]]).item() == 0.0


def test_the_task_adds_the_weighted_jamo_loss_and_trains_the_heads():
    torch.manual_seed(0)
    cfg = {"data": {"train": "x", "val": "x"}, "model": TINY, "order": "image_first", "run_dir": "/tmp/unused",
           "loss": {"jamo_weight": 0.5}}
    task = GPTTask(cfg, VOCAB, 10, 8)
    grids = [np.array([[1, 2, 3], [4, 5, 6]]), np.array([[7, 8, 9, 10]])]
    ids, part = VOCAB.sequences(grids, ["한글", "ab"], "image_first", 10, 8)
    batch = {"input_ids": torch.from_numpy(ids).long(), "loss_part": torch.from_numpy(part), "index": torch.arange(2)}
    out = task.losses(batch)
    torch.testing.assert_close(out["loss"], out["image_loss"] + out["text_loss"] + 0.5 * out["jamo_loss"])
    out["loss"].backward()
    assert task.jamo.heads[0].weight.grad.abs().sum() > 0
    assert any(p is task.jamo.heads[0].weight for _, p in task.named_parameters())  # configure_optimizers' list
    plain = GPTTask({**cfg, "loss": {}}, VOCAB, 10, 8)
    assert plain.jamo is None and "jamo_loss" not in plain.losses(batch)
