"""Rendered text dataset: determinism, vertical layout, glyph coverage, held-out words, CLI."""
from __future__ import annotations

import string
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from fontTools.ttLib import TTFont

from scripts import render_text
from scripts.fonts import FontCoverageError, check_coverage, default_font_files, find_font_files, load_fonts
from scripts.render_text import main, render_dataset, render_image
from scripts.texts import LETTER_WORDS
from scripts.words import read_word_list, script_of, split_words, word_pool, write_word_list
from vqvae.plumbing.io import load_image, read_labelled_csv
from vqvae.templates import normalize_grey

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(pool_size=500, progress=False)


def _dejavu() -> Path:
    return next(p for p in default_font_files() if p.name == "DejaVuSans.ttf")


def _noto() -> Path:
    return next(p for p in default_font_files() if p.name.startswith("NotoSansCJK"))


def _dataset_bytes(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix in (".csv", ".png")}


def test_same_seed_same_dataset_whatever_the_workers(tmp_path):
    one = render_dataset(tmp_path / "one", 48, seed=3, num_workers=1, **SMALL)
    render_dataset(tmp_path / "two", 48, seed=3, num_workers=2, **SMALL)
    other = render_dataset(tmp_path / "other", 48, seed=4, num_workers=1, **SMALL)
    assert len(one) == 48 and one.attrs["num_failed"] == 0
    assert _dataset_bytes(tmp_path / "one") == _dataset_bytes(tmp_path / "two")  # labels.csv and every image
    assert one["text"].tolist() != other["text"].tolist()
    # sample i depends on (seed, i) only, not on how many samples are rendered
    head = render_dataset(tmp_path / "head", 10, seed=3, num_workers=1, **SMALL)
    assert head["text"].tolist() == one["text"].tolist()[:10]


def test_dataset_columns_and_files_read_back(tmp_path):
    frame = render_dataset(tmp_path, 30, seed=0, num_workers=1, **SMALL)
    assert list(frame.columns) == ["img_path", "text", "orientation", "language", "font"]
    read = read_labelled_csv(tmp_path / "labels.csv")
    assert read["text"].tolist() == frame["text"].tolist()
    assert set(read["orientation"]) <= {"horizontal", "vertical"}
    assert set(read["language"]) <= {"ko", "en", "mixed"}
    fonts = {font.name: font for font in load_fonts()}
    for row in read.itertuples():
        image = load_image(row.abs_path)
        assert image.ndim == 3 and min(image.shape[:2]) >= 8
        assert fonts[row.font].covers(row.text), (row.font, row.text)  # never a glyph the font lacks
        assert row.text == row.text.strip() and "  " not in row.text
        if row.language != "mixed":
            assert script_of(row.text) in (row.language, "other"), row.text


def test_vertical_images_are_tall_and_labels_in_reading_order(tmp_path):
    frame = render_dataset(tmp_path, 24, seed=1, languages="ko", vertical_share=1.0, num_workers=1, **SMALL)
    assert set(frame["orientation"]) == {"vertical"}
    for path in frame["img_path"]:
        height, width = load_image(tmp_path / path).shape[:2]
        assert height > width, (path, height, width)
    # Reading order: the label's first character is drawn on top. "한." puts the heavy glyph first, so the
    # ink's centre of mass lies higher than in ".한".
    font = load_fonts([_noto()])[0]

    def ink_centre(text: str, vertical: bool) -> float:
        image = render_image(np.random.default_rng(0), text, font, 40, vertical=vertical, strength=0.0)
        ink = 255.0 - image.mean(axis=2)  # black on white when strength is 0
        axis_profile = ink.sum(axis=1 if vertical else 0)
        return float((axis_profile * np.arange(len(axis_profile))).sum() / axis_profile.sum() / len(axis_profile))

    assert ink_centre("한.", vertical=True) + 0.15 < ink_centre(".한", vertical=True)
    assert ink_centre("한.", vertical=False) + 0.15 < ink_centre(".한", vertical=False)  # left to right


def test_coverage_check_rejects_a_character_the_font_lacks(tmp_path):
    dejavu = load_fonts([_dejavu()])
    assert dejavu[0].covers("Hello, 42!") and not dejavu[0].covers("한")
    with pytest.raises(FontCoverageError, match="'한'"):
        check_coverage(dejavu, "a한")
    # Korean with a Latin-only font list: a clear error, not mislabelled images
    with pytest.raises(ValueError, match="covers Hangul"):
        render_dataset(tmp_path / "ko", 5, languages="ko", fonts=[_dejavu()], **SMALL)
    # a word no font covers is skipped and counted, and never rendered
    frame = render_dataset(tmp_path / "mixed", 30, seed=0, fonts=[_dejavu()], words=["apple", "grape", "漢字"],
                           vertical_share=0.0, num_workers=1, **SMALL)
    assert frame.attrs["stats"]["pool_words_dropped"] == {"en_no_font_covers": 1}
    assert not any("漢" in text for text in frame["text"])
    assert set(frame["font"]) == {"DejaVuSans.ttf"}


def test_exclude_words_are_never_rendered(tmp_path):
    pool = word_pool("en", 200)
    train, test = split_words(pool, 0.5, seed=0)
    frame = render_dataset(tmp_path / "train", 80, seed=0, languages="en", words=pool, exclude_words=test,
                           num_workers=1, **SMALL)
    held_out = {w.casefold() for w in test}
    tokens = {t.casefold() for text in frame["text"] for t in LETTER_WORDS.findall(text)}
    assert tokens and not tokens & held_out
    assert tokens & {w.casefold() for w in train}
    # the held-out set renders exactly the test words (any case) with words_only
    test_frame = render_dataset(tmp_path / "test", 20, seed=0, languages="en", words=test, words_only=True,
                                num_workers=1, **SMALL)
    assert {text.casefold() for text in test_frame["text"]} <= held_out


def _capitals_font(path: Path) -> Path:
    """DejaVu Sans with its lowercase letters mapped to the capitals' glyphs, as all-caps faces draw them."""
    font = TTFont(_dejavu())
    for table in font["cmap"].tables:
        if table.isUnicode():
            table.cmap.update({ord(lower): table.cmap[ord(lower.upper())] for lower in string.ascii_lowercase
                               if ord(lower) in table.cmap})
    font.save(path)
    return path


def test_a_font_that_draws_lowercase_as_capitals_labels_its_texts_in_upper_case(tmp_path):
    capitals = _capitals_font(tmp_path / "Capitals.ttf")
    assert [font.capitals_only() for font in load_fonts([_dejavu(), capitals])] == [False, True]
    words = ["open", "Coffee", "sale 50%"]
    settings = dict(seed=0, languages="en", words=words, words_only=True, num_workers=1, **SMALL)
    mixed = render_dataset(tmp_path / "mixed", 12, fonts=[_dejavu()], **settings)  # a font with a lowercase
    assert "upper_cased_for_capitals_font" not in mixed.attrs["stats"]["redraws"]
    lowered = sum(text != text.upper() for text in mixed["text"])
    assert lowered >= 6  # Latin case varies: most are drawn with some lowercase
    caps = render_dataset(tmp_path / "caps", 12, fonts=[capitals], **settings)
    assert caps["text"].tolist() == [text.upper() for text in mixed["text"]]
    assert caps.attrs["stats"]["redraws"]["upper_cased_for_capitals_font"] == lowered
    # each picture is what its upper-case label drawn with the same draws in the plain font shows
    plain = render_dataset(tmp_path / "plain", 12, fonts=[_dejavu()],
                           **{**settings, "words": [word.upper() for word in words]})
    assert plain["text"].tolist() == caps["text"].tolist()
    for caps_path, plain_path in zip(caps["img_path"], plain["img_path"]):
        assert np.array_equal(load_image(tmp_path / "caps" / caps_path), load_image(tmp_path / "plain" / plain_path))


def test_labels_are_nfc(tmp_path):
    decomposed = unicodedata.normalize("NFD", "한국어")
    assert decomposed != "한국어"
    words_file = tmp_path / "words.txt"
    words_file.write_text(f"{decomposed}\n서울\n", encoding="utf-8")
    assert main(["--output", str(tmp_path / "out"), "--num-samples", "20", "--seed", "0", "--num-workers", "1",
                 "--words-file", str(words_file), "--vertical-share", "0.5"]) == 0
    texts = (tmp_path / "out" / "labels.csv").read_text(encoding="utf-8")
    assert unicodedata.normalize("NFC", texts) == texts and "한국어" in texts
    assert unicodedata.normalize("NFD", "한") not in texts


def test_cli_help_and_errors(tmp_path, capsys):
    result = subprocess.run([sys.executable, "-m", "scripts.render_text", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--exclude-words" in result.stdout and "--vertical-share" in result.stdout
    assert main(["--output", str(tmp_path), "--num-samples", "3", "--languages", "fr"]) == 2
    assert "'fr'" in capsys.readouterr().err


def test_failed_sample_is_reported_and_fails_the_cli(tmp_path, monkeypatch):
    real_save = render_text.save_image

    def save_failing_on_sample_2(path, image):  # a disk error on one file
        if Path(path).stem == "000002":
            raise OSError("disk full")
        real_save(path, image)

    monkeypatch.setattr(render_text, "save_image", save_failing_on_sample_2)
    frame = render_dataset(tmp_path / "a", 6, seed=0, num_workers=1, **SMALL)
    assert frame.attrs["num_failed"] == 1 and len(frame) == 5
    assert "images/000002.png" not in frame["img_path"].tolist()
    bad = (tmp_path / "a" / "labels.csv.bad.csv").read_text(encoding="utf-8")
    assert "disk full" in bad and "000002" in bad
    assert main(["--output", str(tmp_path / "b"), "--num-samples", "4", "--num-workers", "1",
                 "--pool-size", "300"]) == 1


def test_word_pools_and_split():
    korean, english = word_pool("ko", 300), word_pool("en", 300)
    assert len(korean) == 300 and all(script_of(w) == "ko" and " " not in w for w in korean)
    assert len(english) == 300 and all(w == w.lower() and script_of(w) == "en" for w in english)
    assert word_pool("en", 50, seed=1) == word_pool("en", 50, seed=1) != word_pool("en", 50)
    assert sorted(word_pool("en", 50, seed=1)) == sorted(word_pool("en", 50))
    words = ["Seoul", "seoul", "부산", "Busan", "대구", "Daegu", "인천", "Incheon", "광주", "Gwangju"]
    train, test = split_words(words, 0.25, seed=7)
    assert len(train) + len(test) == 9 and len(test) == 2  # "Seoul"/"seoul" counted once
    assert not {w.casefold() for w in train} & {w.casefold() for w in test}
    # a word's side depends on (seed, word), not on the input order
    assert {w.casefold() for w in split_words(list(reversed(words)), 0.25, seed=7)[1]} == {w.casefold() for w in test}
    assert split_words(english, 0.5, seed=0)[1] != split_words(english, 0.5, seed=1)[1]
    with pytest.raises(ValueError, match="test_share"):
        split_words(words, 1.5, seed=0)


def test_word_list_round_trip_and_font_folders(tmp_path):
    write_word_list(tmp_path / "w.txt", ["사과", "apple pie", unicodedata.normalize("NFD", "배")])
    assert read_word_list(tmp_path / "w.txt") == ["사과", "apple pie", "배"]
    assert find_font_files([_dejavu().parent]) and not any(
        p.name.startswith("LastResort") for p in find_font_files([_dejavu().parent]))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_font_files([tmp_path / "nope.ttf"])
    # matplotlib's TeX-encoded cmsy10 claims 'a'..'z' but draws math symbols: never used
    with pytest.raises(ValueError, match="mislabelled"):
        find_font_files([_dejavu().parent / "cmsy10.ttf"])


def test_min_aspect_extends_short_crops_with_background_along_the_reading_direction():
    font = load_fonts([_noto()])[0]
    for text, vertical in [("ab", False), ("한글", True)]:
        tight = render_image(np.random.default_rng(0), text, font, 40, vertical=vertical, strength=0.0)
        field = render_image(np.random.default_rng(0), text, font, 40, vertical=vertical, strength=0.0,
                             min_aspect=6.0)
        height, width = field.shape[:2]
        length, thickness = (height, width) if vertical else (width, height)
        assert abs(length / thickness - 6.0) < 0.1, (text, field.shape)
        assert field.shape[int(vertical)] == tight.shape[int(vertical)]  # the thickness is untouched
        # the text stays where it was (left, or top) and the extension is plain background
        np.testing.assert_array_equal(field[:tight.shape[0], :tight.shape[1]], tight)
        extension = field[tight.shape[0]:] if vertical else field[:, tight.shape[1]:]
        assert extension.min() == 255
    # a crop already longer than min_aspect is left as it is
    long = render_image(np.random.default_rng(0), "abcdefghijkl", font, 40, vertical=False, strength=0.0)
    kept = render_image(np.random.default_rng(0), "abcdefghijkl", font, 40, vertical=False, strength=0.0,
                        min_aspect=2.0)
    np.testing.assert_array_equal(long, kept)


def test_tight_crops_end_at_the_ink_where_loose_ones_keep_a_margin(tmp_path):
    """`tight` cuts at the ink across the line (margins of 0-4% of the font size; along it the font's box may keep
    a bearing); the loose crop keeps 2-25% + 1 px on each side. tight_share draws the flag only when above 0, so
    the same seed keeps its texts and fonts."""
    font = load_fonts([_noto()])[0]
    for seed in range(6):
        for text, vertical in [("Hello", False), ("한글", True)]:
            crops = {tight: render_image(np.random.default_rng(seed), text, font, 40, vertical=vertical, strength=0.0,
                                         tight=tight)[:, :, 0] for tight in (False, True)}
            for tight, crop in crops.items():
                ink = np.nonzero((crop < 128).any(axis=int(not vertical)))[0]  # rows (horizontal) or columns
                gaps = [ink.min(), crop.shape[int(vertical)] - 1 - ink.max()]
                # 3 px: glyphs of one column are centred, so a narrower one may leave a pixel more on one side
                assert max(gaps) <= 3 if tight else min(gaps) >= 1 and max(gaps) >= 3, (text, seed, tight, gaps)
            assert crops[True].shape[int(vertical)] < crops[False].shape[int(vertical)]
    frames = {share: render_dataset(tmp_path / str(share), 12, 5, num_workers=1, tight_share=share, **SMALL)
              for share in (0.0, 1.0)}
    assert frames[0.0][["text", "font"]].equals(frames[1.0][["text", "font"]])
    with pytest.raises(ValueError, match="tight_share=-0.1"):
        render_dataset(tmp_path / "bad", 2, tight_share=-0.1, **SMALL)


def test_line_box_gives_every_crop_of_a_font_one_height_and_fixed_glyph_places():
    mono = load_fonts([next(p for p in default_font_files() if p.name == "DejaVuSansMono.ttf")])[0]

    def crop(text: str, seed: int, line_box: bool) -> np.ndarray:
        return render_image(np.random.default_rng(seed), text, mono, 30, vertical=False, strength=0.0,
                            line_box=line_box)

    # ink boxes: a descender and random margins change the crop; line boxes do not (same length in a
    # monospaced font => same shape, whatever the letters and the seed)
    assert crop("ace", 0, False).shape != crop("Agy", 1, False).shape
    assert crop("ace", 0, True).shape == crop("Agy", 1, True).shape
    # the first two glyphs sit at the same pixels whatever follows them
    abc, abx = crop("abc", 0, True), crop("abx", 5, True)
    advance = render_text._pil_font(mono.path, mono.index, 30).getlength("a")
    two_glyphs = int(render_text.LINE_BOX_MARGIN * 30 + 2 * advance)
    np.testing.assert_array_equal(abc[:, :two_glyphs], abx[:, :two_glyphs])
    assert not np.array_equal(abc, abx)


def test_vertical_line_box_stacks_fixed_cells_whatever_the_characters():
    noto = next(f for f in load_fonts(default_font_files()) if "CJK" in f.name and "Regular" in f.name)

    def crop(text: str, seed: int, line_box: bool) -> np.ndarray:
        return render_image(np.random.default_rng(seed), text, noto, 30, vertical=True, strength=0.0,
                            line_box=line_box)

    # '一' is wide and flat, '이' narrower and tall: ink boxes differ, line boxes are one font size wide
    assert crop("一一", 0, False).shape != crop("이이", 1, False).shape
    assert crop("一一", 0, True).shape == crop("이이", 1, True).shape
    # the first character sits at the same pixels whatever follows it
    first_cell = int(render_text.LINE_BOX_MARGIN * 30 + 30 * (1 + render_text.LINE_BOX_SPACING))
    top, other = crop("가나", 0, True), crop("가다", 3, True)
    np.testing.assert_array_equal(top[:first_cell], other[:first_cell])
    assert not np.array_equal(top, other)


def test_plates_come_often_horizontal_and_framed(tmp_path):
    """Korean plate numbers are a few percent of the Korean texts, never vertical, and drawn in a border."""
    from scripts.texts import PLATE, PLATE_SHARE, TextSampler

    sampler = TextSampler({"ko": ["가게", "사과"], "en": ["shop"]})
    rng = np.random.default_rng(0)
    texts = [sampler.sample(rng, "ko") for _ in range(4000)]
    share = np.mean([PLATE.fullmatch(text) is not None for text in texts])
    assert PLATE_SHARE <= share < PLATE_SHARE + 0.02  # the plate form of _number adds a little
    frame = render_dataset(tmp_path / "ds", 400, 3, languages="ko", vertical_share=0.5, num_workers=1,
                           progress=False)
    plates = frame[frame["text"].map(lambda text: PLATE.fullmatch(text) is not None)]
    assert len(plates) >= 5 and set(plates["orientation"]) == {"horizontal"}
    # The border: rows dark across the whole crop (top and bottom), which no text without it has.
    font = load_fonts([_noto()])[0]
    framed, plain = (render_image(np.random.default_rng(0), "12가 3456", font, 32, vertical=False, strength=0.0,
                                  frame=frame).mean(axis=2) < 128 for frame in (True, False))
    assert (framed.mean(axis=1) > 0.8).sum() >= 2 and (plain.mean(axis=1) > 0.8).sum() == 0


def test_syllable_strings_draw_rare_syllables_as_often_as_common_ones():
    """With syllable_share, that share of Korean texts are 1-4 syllables drawn uniformly from the pool's: a
    syllable only one word holds (뵙) comes as often as one most words hold (가); without it nothing changes."""
    from scripts.texts import TextSampler

    pools = {"ko": ["가게", "가방", "가수", "가을", "뵙다"], "en": ["shop"]}
    plain, texts = TextSampler(pools), [TextSampler(pools, syllable_share=s) for s in (0.0, 1.0)]
    rngs = [np.random.default_rng(1) for _ in range(2)]
    assert [plain.sample(rngs[0], "ko") for _ in range(50)] == [texts[0].sample(rngs[1], "ko") for _ in range(50)]
    rng = np.random.default_rng(2)
    drawn = [texts[1].sample(rng, "ko") for _ in range(3000)]
    syllables = "".join(t for t in drawn if t.isalpha())  # the plates' digits aside
    assert set(syllables) == set("가게방수을뵙다")
    assert {len(t) for t in drawn if t.isalpha()} == {1, 2, 3, 4}
    counts = {ch: syllables.count(ch) / len(syllables) for ch in "가뵙"}
    assert counts["가"] == pytest.approx(1 / 7, abs=0.02) and counts["뵙"] == pytest.approx(1 / 7, abs=0.02)


def test_framed_crops_go_on_into_a_surround_now_and_then(monkeypatch):
    """A framed crop may end past its border, on a surround of another colour (a car body around a plate)."""
    font = load_fonts([_noto()])[0]

    def renders(share: float) -> list[np.ndarray]:
        monkeypatch.setattr(render_text, "SURROUND_SHARE", share)
        monkeypatch.setattr(render_text, "SURROUND_DARK", 1.0)
        return [render_image(np.random.default_rng(seed), "12가3456", font, 32, vertical=False, strength=1.0,
                             frame=True).mean(axis=2) for seed in range(20)]

    def ring(image: np.ndarray) -> float:
        return float(np.median(np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])))

    plain, surrounded = renders(0.0), renders(1.0)
    assert np.mean([im.shape[0] for im in surrounded]) > np.mean([im.shape[0] for im in plain]) + 0.15 * 32
    assert np.mean([ring(im) < 90 for im in surrounded]) >= 0.8
    assert np.mean([ring(im) < 90 for im in plain]) < 0.6  # the ground: as often dark as the colours draw it


def test_augmented_plates_have_bolts_and_other_texts_are_unchanged(monkeypatch):
    """Bolts widen a plate at both ends (room between the border and the number); framed texts that are not
    plates draw the same pixels whatever BOLT_SHARE is, so held-out sets rendered before bolts stay the same."""
    font = load_fonts([_noto()])[0]

    def renders(text: str, share: float) -> list[np.ndarray]:
        monkeypatch.setattr(render_text, "BOLT_SHARE", share)
        return [render_image(np.random.default_rng(seed), text, font, 32, vertical=False, strength=1.0, frame=True)
                for seed in range(12)]

    bolted, bare = renders("12가3456", 1.0), renders("12가3456", 0.0)
    assert np.mean([im.shape[1] for im in bolted]) > np.mean([im.shape[1] for im in bare]) + 0.4 * 32
    for with_bolts, without in zip(renders("가나다", 1.0), renders("가나다", 0.0)):
        np.testing.assert_array_equal(with_bolts, without)


def test_clean_targets_are_the_crops_glyphs_black_on_white_and_change_no_crop(tmp_path):
    plain = render_dataset(tmp_path / "plain", 24, seed=7, num_workers=1, **SMALL)
    paired = render_dataset(tmp_path / "paired", 24, seed=7, num_workers=1, clean_targets=True, **SMALL)
    assert list(paired.columns) == list(plain.columns) + ["target_path"]
    assert paired["text"].tolist() == plain["text"].tolist()
    for row in paired.itertuples():  # the crops are byte for byte those rendered without targets
        assert (tmp_path / "paired" / row.img_path).read_bytes() == (tmp_path / "plain" / row.img_path).read_bytes()
    darker = 0
    for row in read_labelled_csv(tmp_path / "paired" / "labels.csv").itertuples():
        crop = normalize_grey(load_image(row.abs_path)).astype(np.float32)
        target = load_image(tmp_path / "paired" / row.target_path)
        assert target.shape == (*crop.shape, 3) and (target.std(axis=2) == 0).all()  # grey, the crop's size
        ink = target[:, :, 0] < 128
        assert 0 < ink.mean() < 0.6 and np.median(target) == 255  # black glyphs on white
        darker += crop[ink].mean() < crop[~ink].mean() - 40  # the crop's ink is where the target's is
    assert darker >= 22, darker  # a frame or shadow may blur one or two


def test_frame_share_frames_that_share_of_other_texts_and_keeps_the_texts(tmp_path, monkeypatch):
    """frame_share sets how many texts besides plates get a border (all at 1, none at 0, plates always); the same
    seed draws the same texts in the same fonts whatever it is, so a framed copy of a test set can be read beside it."""
    from scripts.texts import PLATE

    framed: dict[str, bool] = {}
    original = render_text.render_image

    def recording(rng, text, *args, **kwargs):
        framed[text] = args[6] if len(args) > 6 else kwargs["frame"]
        return original(rng, text, *args, **kwargs)

    monkeypatch.setattr(render_text, "render_image", recording)
    frames = {}
    for share in (0.0, 1.0):
        framed.clear()
        frames[share] = render_dataset(tmp_path / str(share), 60, 5, languages="ko,en", num_workers=1,
                                       frame_share=share, **SMALL)
        plates = {text for text in framed if PLATE.fullmatch(text)}
        assert all(framed[text] == (share == 1.0 or text in plates) for text in framed)
    assert frames[0.0][["text", "font"]].equals(frames[1.0][["text", "font"]])
    with pytest.raises(ValueError, match="frame_share=1.5"):
        render_dataset(tmp_path / "bad", 2, frame_share=1.5, **SMALL)
