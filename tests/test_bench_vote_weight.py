"""scripts.bench_vote_weight: one evaluation per weight; weight 0 keeps the best beam."""
import pandas as pd

from gpt.pretrained import load_pretrained
from gpt.reading import read_images
from scripts.bench_vote_weight import main
from tests.fixtures import labelled_crops, recognition_export


def test_weight_zero_reads_what_the_best_beam_reads(tmp_path, capsys):
    labels = labelled_crops(tmp_path, count=4)
    export = recognition_export(tmp_path / "export")
    frame = pd.read_csv(labels)
    paths = [str(labels.parent / p) for p in frame["img_path"]]
    beams = read_images(load_pretrained(export), paths, num_beams=3, precision="float32", progress=False)
    frame["text"] = [text for text, _ in beams.predictions]  # labels the best beam spells: weight 0 reads them all
    frame.to_csv(labels, index=False)
    assert main([str(labels), "--model", str(export), "--votes", "3", "--weights", "0", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("exact accuracy % with 3 votes")
    assert out[1].startswith("weight 0: ") and out[1].endswith("mean 100.0")
    assert out[2].startswith("weight 1: ") and len(out) == 3
