"""scripts.bench_syllable_exposure: crops binned by the training count of their rarest syllable."""
from collections import Counter

import pandas as pd

from scripts.bench_syllable_exposure import exposure_table, syllable_counts, unseen_syllables


def test_crops_are_binned_by_their_rarest_syllable(tmp_path):
    train = tmp_path / "labels.csv"
    pd.DataFrame({"text": ["가" * 300, "나" * 20, "다 OPEN", ""]}).to_csv(train, index=False)
    counts = syllable_counts([str(train)])
    assert counts == Counter({"가": 300, "나": 20, "다": 1})
    predictions = pd.DataFrame({"label": ["가", "가나", "나다", "라", "shop"],
                                "correct": [True, False, True, False, True]})
    rows = {row["rarest syllable seen"]: (row["crops"], row["read"]) for row in exposure_table(counts, predictions)}
    # 라 never seen, 나다 by 다 (1), 가나 by 나 (20), 가 alone 200+; "shop" holds no syllable and is left out.
    assert rows == {"0": (1, "0.0%"), "1-9": (1, "100.0%"), "10-49": (1, "0.0%"), "50-199": (0, "n/a"),
                    "200+": (1, "100.0%")}
    assert unseen_syllables(counts, predictions["label"]) == ["라"]


def test_drawing_prompts_count_as_read_when_read_back_spaces_ignored(tmp_path):
    from scripts.bench_syllable_exposure import read_predictions

    prompts = tmp_path / "prompts.csv"
    pd.DataFrame({"prompt": ["가 나", "다", "OPEN"], "read_back": ["가나", "라", ""]}).to_csv(prompts, index=False)
    frame = read_predictions(str(prompts))
    assert frame["label"].tolist() == ["가 나", "다", "OPEN"] and frame["correct"].tolist() == [True, False, False]


def test_the_command_prints_how_often_the_rarest_and_the_median_syllable_were_seen(tmp_path, capsys):
    from scripts.bench_syllable_exposure import main

    train, prompts = tmp_path / "labels.csv", tmp_path / "prompts.csv"
    pd.DataFrame({"text": ["가" * 30, "나" * 2, "다 OPEN"]}).to_csv(train, index=False)
    pd.DataFrame({"prompt": ["가나", "라"], "read_back": ["가나", "마"]}).to_csv(prompts, index=False)
    assert main(["--train", str(train), "--predictions", str(prompts)]) == 0
    out = capsys.readouterr().out
    assert "33 syllables, 3 distinct, in 1 training CSVs; each distinct one seen at least 1 times, median 2" in out
    assert "never in training: 1 라" in out


def test_the_charset_syllables_never_in_training_are_listed(tmp_path, capsys):
    from gpt.vocab import Vocab
    from scripts.bench_syllable_exposure import main

    train, prompts, model = tmp_path / "labels.csv", tmp_path / "prompts.csv", tmp_path / "model"
    pd.DataFrame({"text": ["가나 OK"]}).to_csv(train, index=False)
    pd.DataFrame({"prompt": ["가나"], "read_back": ["가나"]}).to_csv(prompts, index=False)
    model.mkdir()
    Vocab(tuple("OK가나다라"), 8).save(model / "charset.json")
    assert main(["--train", str(train), "--predictions", str(prompts), "--charset", str(model)]) == 0
    assert f"syllables of {model}'s charset (4) never in training: 2 다라" in capsys.readouterr().out
