"""scripts.bench_data_memory: the figures come from the data gpt.train would build."""
import json

from scripts.bench_data_memory import main
from tests.fixtures import recognition_export, token_csv


def test_reports_the_sequences_built_and_memory(tmp_path, capsys):
    export = recognition_export(tmp_path / "export")
    train = [token_csv(tmp_path / f"train{i}.csv", export, num_rows=12, seed=i) for i in range(2)]
    val = token_csv(tmp_path / "val.csv", export, num_rows=4, seed=9)
    assert main(["--train", ",".join(train), "--val", val]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["train_rows"] == 24
    rows, length = figures["train_rows"], figures["sequence_length"]
    assert figures["sequences_mb"] == round(rows * length * (4 + 1) / 2 ** 20, 3)  # int32 ids, int8 parts
    assert figures["peak_mb"] >= figures["after_mb"] - 1 > 0  # the peak is a high-water mark of the same process
