import math
import unicodedata

import pytest

from gpt.metrics import edit_distances, text_metrics


def test_one_substitution():
    m = text_metrics(["abd"], ["abc"])
    assert m["num_samples"] == 1
    assert m["accuracy"] == 0.0
    assert m["one_minus_ned"] == pytest.approx(1 - 1 / 3)
    assert m["cer"] == pytest.approx(1 / 3)


def test_cer_is_total_edits_over_total_label_chars():
    # edits: "abc"->"abc" 0, "hello"->"hallo" 1, "x"->"xyz" 2  => 3 edits / 9 label chars
    m = text_metrics(["abc", "hallo", "xyz"], ["abc", "hello", "x"])
    assert m["cer"] == pytest.approx(3 / 9)
    assert m["accuracy"] == pytest.approx(1 / 3)
    # NED normalizes by the longer string: 0, 1/5, 2/3
    assert m["one_minus_ned"] == pytest.approx(1 - (0 + 1 / 5 + 2 / 3) / 3)


def test_empty_strings():
    m = text_metrics(["", "a"], ["", ""])
    assert m["one_minus_ned"] == pytest.approx(0.5)  # both empty -> 1, "a" vs "" -> 0
    assert m["accuracy"] == pytest.approx(0.5)
    assert math.isinf(m["cer"])  # edits but no label characters
    assert text_metrics([""], [""])["cer"] == 0.0
    assert math.isnan(text_metrics([], [])["accuracy"])


def test_ignore_case_and_space():
    assert text_metrics(["Hello World"], ["hello world"])["accuracy"] == 0.0
    assert text_metrics(["Hello World"], ["hello world"], ignore_case=True)["accuracy"] == 1.0
    assert text_metrics(["helloworld"], ["hello world"])["accuracy"] == 0.0
    assert text_metrics(["helloworld"], ["hello  world\t"], ignore_space=True)["accuracy"] == 1.0


def test_hangul_nfc_vs_nfd_is_a_match():
    word = "한국어"
    decomposed = unicodedata.normalize("NFD", word)
    assert decomposed != word
    m = text_metrics([decomposed], [word])
    assert m["accuracy"] == 1.0 and m["cer"] == 0.0
    # one wrong syllable is one edit of three, not several jamo edits
    assert text_metrics(["한국아"], [word])["cer"] == pytest.approx(1 / 3)


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="2 predictions for 1 labels"):
        edit_distances(["a", "b"], ["a"])
