"""vqvae.plumbing.io: the labelled-CSV reader and atomic writes every command relies on."""
import os
import unicodedata

import pytest

from vqvae.plumbing.io import atomic_path, read_labelled_csv, write_json_atomic


def test_labels_are_nfc_and_paths_resolve_against_the_csv_folder(tmp_path):
    decomposed = unicodedata.normalize("NFD", "한글")  # jamo, as some tools write Hangul
    (tmp_path / "labels.csv").write_text(f"img_path,text,extra\na.png,{decomposed},x\n", encoding="utf-8")
    frame = read_labelled_csv(tmp_path / "labels.csv")
    assert frame.loc[0, "text"] == "한글" and len(frame.loc[0, "text"]) == 2
    assert frame.loc[0, "abs_path"] == str(tmp_path / "a.png") and frame.loc[0, "extra"] == "x"


def test_missing_column_is_named(tmp_path):
    (tmp_path / "labels.csv").write_text("path,text\na.png,x\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"img_path"):
        read_labelled_csv(tmp_path / "labels.csv")


def test_atomic_write_leaves_nothing_when_the_block_fails(tmp_path):
    target = tmp_path / "out.csv"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            open(tmp, "w").write("partial")
            raise RuntimeError("killed half way")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_has_ordinary_permissions(tmp_path):
    write_json_atomic({"a": 1}, tmp_path / "x.json")
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(tmp_path / "x.json").st_mode & 0o777 == 0o666 & ~umask
