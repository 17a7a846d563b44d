"""The token layout (DESIGN §3): ids, round trips, loss masks, too-long rows, grid parsing."""
import json

import numpy as np
import pytest
import torch

from gpt.vocab import PART_IGNORE, PART_IMAGE, PART_TEXT, GridTooLong, LabelTooLong, Vocab

TEXTS = ["hello", "wörld", "한글 ok"]
V, T = 16, 10


@pytest.fixture
def vocab() -> Vocab:
    return Vocab.build(TEXTS, num_codes=20)


def test_id_layout(vocab):
    assert (vocab.bos_id, vocab.eos_id, vocab.pad_id, vocab.unk_id) == (0, 1, 2, 3)
    assert list(vocab.chars) == sorted(set("".join(TEXTS)))
    assert vocab.char_id(vocab.chars[0]) == 4
    assert vocab.row_id == 4 + len(vocab.chars) and vocab.vpad_id == vocab.row_id + 1
    assert vocab.code_offset == vocab.vpad_id + 1 and vocab.code_end == vocab.code_offset + 20
    assert vocab.vertical_id == vocab.code_end and vocab.num_used == vocab.code_end + 1
    tokens = vocab.tokens()
    assert len(tokens) == vocab.size and len(set(tokens)) == vocab.size
    assert tokens[vocab.row_id] == "<row>" and tokens[vocab.code_offset + 3] == "<c3>"
    assert tokens[vocab.vertical_id] == "<vertical>"
    assert not vocab.is_code(torch.tensor(vocab.vertical_id)) and vocab.vertical_id not in vocab.image_token_ids


def test_vertical_mark_starts_only_text_first_vertical_rows(vocab):
    grid = np.zeros((2, 3), dtype=np.int64)
    grids, texts, vertical = [grid, grid], ["hello", "hello"], [False, True]
    ids, _ = vocab.sequences(grids, texts, "text_first", 16, T, vertical)
    assert ids[0, 0] == vocab.bos_id and ids[1, 0] == vocab.vertical_id
    assert (ids[0, 1:] == ids[1, 1:]).all()  # only the mark differs
    assert ids[1, 0] == vocab.text_part("hello", T, vertical=True)[0]
    read_ids, _ = vocab.sequences(grids, texts, "image_first", 16, T, vertical)
    assert (read_ids[0] == read_ids[1]).all()  # a reader is not told the orientation


@pytest.mark.parametrize("num_codes", [1, 16, 59, 60, 512, 16384])
def test_size_is_multiple_of_64(num_codes):
    vocab = Vocab.build(["ab"], num_codes)
    assert vocab.size % 64 == 0 and vocab.num_used <= vocab.size < vocab.num_used + 64


def test_build_is_deterministic_and_adds_base_charset():
    a = Vocab.build(["zyx", "abc"], 8, base_charset="Q")
    b = Vocab.build(["abc", "zyx"], 8, base_charset="Q")
    assert a == b and "Q" in a.chars


def test_text_round_trip(vocab):
    for text in TEXTS + [""]:
        ids, num_unknown = vocab.encode_text(text)
        assert num_unknown == 0 and vocab.decode_text(ids) == text
        part = vocab.text_part(text, T)
        assert len(part) == T and part[0] == vocab.bos_id and vocab.decode_text(part) == text


def test_text_is_nfc_normalized(vocab):
    decomposed = "wo\u0308rld"  # o + combining diaeresis == ö after NFC
    ids, num_unknown = vocab.encode_text(decomposed)
    assert num_unknown == 0 and vocab.decode_text(ids) == "wörld"


def test_unknown_chars_become_unk_and_are_counted(vocab):
    ids, num_unknown = vocab.encode_text("hXlZo")
    assert num_unknown == 2 and ids.count(vocab.unk_id) == 2
    assert vocab.decode_text(ids) == "hlo"  # <unk> is a special: decoding skips it


def test_decode_stops_at_eos_and_skips_non_text(vocab):
    h, e = vocab.char_id("h"), vocab.char_id("e")
    ids = [vocab.bos_id, h, vocab.row_id, vocab.code_offset, e, vocab.eos_id, h, vocab.size - 1]
    assert vocab.decode_text(ids) == "he"


def test_label_too_long(vocab):
    assert len(vocab.text_part("hellohel", T)) == T  # exactly T - 2 characters fit
    with pytest.raises(LabelTooLong, match="max_text_length=10 holds 8"):
        vocab.text_part("hellohell", T)


def test_grid_round_trip_and_too_long(vocab):
    grid = np.arange(12).reshape(3, 4)
    part = vocab.image_part(grid, V)
    assert len(part) == V and part[15] == vocab.vpad_id and part[0] == vocab.row_id
    assert vocab.image_prefix(grid) == part[:15]
    parsed, notes = vocab.parse_grid(part)
    np.testing.assert_array_equal(parsed, grid)
    assert notes == []
    with pytest.raises(GridTooLong, match="needs 20 tokens"):
        vocab.image_part(np.zeros((4, 4), dtype=np.int64), V)
    with pytest.raises(ValueError, match="codebook has 20 codes"):
        vocab.image_part(np.array([[0, 20]]), V)


@pytest.mark.parametrize("order", ["image_first", "text_first"])
def test_sequence_round_trip_both_orders(vocab, order):
    grid = np.array([[1, 2, 3], [4, 5, 6]])
    ids, part = vocab.sequence(grid, "한글 ok", order, V, T)
    assert ids.shape == part.shape == (V + T,) and ids.dtype == np.int32
    image, text = vocab.split(ids, order, V, T)
    assert vocab.decode_text(text) == "한글 ok"
    np.testing.assert_array_equal(vocab.parse_grid(image)[0], grid)
    if order == "image_first":
        assert ids[0] == vocab.row_id and ids[V] == vocab.bos_id
    else:
        assert ids[0] == vocab.bos_id and ids[T] == vocab.row_id


@pytest.mark.parametrize("order", ["image_first", "text_first"])
def test_loss_mask(vocab, order):
    grid = np.array([[1, 2, 3], [4, 5, 6]])  # 8 image tokens, then 8 <vpad>
    ids, part = vocab.sequence(grid, "ok", order, V, T)
    assert part[0] == PART_IGNORE  # nothing predicts the first token
    assert not (part[ids == vocab.pad_id] != PART_IGNORE).any()  # text <pad> never counts
    vpad_positions = np.flatnonzero(ids == vocab.vpad_id)
    assert part[vpad_positions[0]] == PART_IMAGE  # the first <vpad> ends the image: it counts
    assert (part[vpad_positions[1:]] == PART_IGNORE).all()
    image_targets = (ids == vocab.row_id) | vocab.is_code(ids)
    assert (part[image_targets & (np.arange(V + T) > 0)] == PART_IMAGE).all()
    text_targets = np.isin(ids, [vocab.bos_id, vocab.eos_id, vocab.char_id("o"), vocab.char_id("k")])
    assert (part[text_targets & (np.arange(V + T) > 0)] == PART_TEXT).all()
    assert (part == PART_TEXT).sum() == (4 if order == "image_first" else 3)  # <s> o k </s>; <s> first


def test_full_grid_has_no_vpad_target(vocab):
    grid = np.zeros((3, 4), dtype=np.int64)  # 15 tokens
    ids, part = vocab.sequence(grid, "ok", "image_first", 15, T)
    assert vocab.vpad_id not in ids.tolist() and (part[1:15] == PART_IMAGE).all()


def test_sequences_batch_matches_single(vocab):
    rng = np.random.default_rng(0)
    grids = [rng.integers(0, 20, shape) for shape in [(1, 5), (2, 3), (1, 5), (3, 4), (2, 3)]]
    texts = ["hello", "", "ok", "wörld", "한글"]
    ids, part = vocab.sequences(grids, texts, "image_first", V, T)
    for i, (grid, text) in enumerate(zip(grids, texts)):
        single_ids, single_part = vocab.sequence(grid, text, "image_first", V, T)
        np.testing.assert_array_equal(ids[i], single_ids)
        np.testing.assert_array_equal(part[i], single_part)


def test_sequences_name_the_bad_row(vocab):
    grids = [np.zeros((1, 2), dtype=np.int64)] * 3
    with pytest.raises(LabelTooLong, match="row 2"):
        vocab.sequences(grids, ["ok", "ok", "hellohello"], "image_first", V, T)
    with pytest.raises(GridTooLong, match="row 1"):
        vocab.sequences([grids[0], np.zeros((5, 5), dtype=np.int64)], ["ok", "ok"], "image_first", V, T)
    with pytest.raises(ValueError, match="order='sideways'"):
        vocab.sequences(grids, ["ok"] * 3, "sideways", V, T)


def test_save_load_round_trip(vocab, tmp_path):
    vocab.save(tmp_path / "charset.json")
    assert Vocab.load(tmp_path / "charset.json") == vocab
    data = json.loads((tmp_path / "charset.json").read_text(encoding="utf-8"))
    data["version"] = 99
    (tmp_path / "bad.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match="version 99"):
        Vocab.load(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        Vocab.load(tmp_path / "missing.json")


def test_text_token_ids(vocab):
    allowed = set(vocab.text_token_ids.tolist())
    assert vocab.eos_id in allowed and {vocab.char_id(c) for c in vocab.chars} <= allowed
    assert not allowed & {vocab.bos_id, vocab.pad_id, vocab.unk_id, vocab.row_id, vocab.vpad_id, vocab.code_offset}
    assert len(allowed) == len(vocab.chars) + 1


def test_parse_grid_ragged_rows_are_repaired(vocab):
    row, c = vocab.row_id, vocab.code_offset
    ids = [row, c + 1, c + 2, c + 3, row, c + 4, row, c + 5, c + 6, c + 7, row, c + 8, c + 9, c + 9, c + 9]
    grid, notes = vocab.parse_grid(ids)
    np.testing.assert_array_equal(grid, [[1, 2, 3], [4, 4, 4], [5, 6, 7], [8, 9, 9]])
    assert any("row 1: padded from 1 to 3" in n for n in notes)
    assert any("row 3: cut from 4 to 3" in n for n in notes)  # overlong row


def test_parse_grid_stops_at_vpad_and_reports_strays(vocab):
    row, c = vocab.row_id, vocab.code_offset
    ids = [c + 7, row, c + 1, vocab.char_id("h"), c + 2, row, row, c + 3, c + 4, vocab.vpad_id, row, c + 5]
    grid, notes = vocab.parse_grid(ids)
    np.testing.assert_array_equal(grid, [[7, 7], [1, 2], [3, 4]])
    text = " | ".join(notes)
    assert "before the first <row>" in text and "1 text id" in text and "1 empty row" in text


def test_parse_grid_empty(vocab):
    with pytest.raises(ValueError, match="no visual code"):
        vocab.parse_grid([vocab.vpad_id, vocab.row_id, vocab.code_offset])
    with pytest.raises(ValueError, match="no visual code"):
        vocab.parse_grid([vocab.row_id, vocab.row_id, vocab.char_id("h")])
