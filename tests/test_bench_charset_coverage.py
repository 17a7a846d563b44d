"""scripts.bench_charset_coverage: the share of running text a charset cannot write."""
from scripts.bench_charset_coverage import ks_x_1001_syllables, missing_syllables


def test_charset_coverage_weighs_missing_syllables_by_word_frequency():
    # 가나 (0.6) holds two syllables and 다 (0.2) one, "OPEN" none: 다 is 0.2 of 1.4 syllable-weight.
    share, missing = missing_syllables("가나", {"가나": 0.6, "다": 0.2, "OPEN": 0.5})
    assert abs(share - 0.2 / 1.4) < 1e-9 and missing == {"다": 0.2}
    standard = ks_x_1001_syllables()
    assert len(standard) == 2350 and {"가", "힝", "깎"} <= standard and "똠" not in standard
