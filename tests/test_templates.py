"""The crop normalization (DESIGN §2): strips one line thick, turned, grey and dark on light; budget and waste."""
import math

import cv2
import numpy as np
import pytest

from vqvae.templates import (LINE_CODES, Template, choose_template, find_frame, fit_to_template, image_to_tensor_array,
                             make_templates, normalize_grey, square_waste, strip_frame, template_waste,
                             tensor_array_to_image, upright)

LENGTHS = [16, 32, 64, 128, 256]


@pytest.mark.parametrize("max_length", LENGTHS)
def test_every_template_fits_the_budget_and_wastes_little(max_length):
    templates = make_templates(max_length)
    assert templates, f"no templates for L={max_length}"
    for t in templates:
        assert t.rows >= 1 and t.cols >= 1
        assert t.num_tokens == t.rows * (t.cols + 1) <= max_length
        assert max_length - t.num_tokens < math.sqrt(max_length)
    # one row of L-1 codes and L/2 rows of one code are both available when L is even
    assert Template(1, max_length - 1) in templates
    assert Template(max_length // 2, 1) in templates


@pytest.mark.parametrize("width,height", [(400, 40), (40, 400), (128, 32), (32, 32), (33, 47)])
def test_every_crop_becomes_a_strip_one_line_thick(width, height):
    template = choose_template(width, height, 200)
    assert template.cols == LINE_CODES
    across, along = (height, width) if width >= height else (width, height)
    assert template.rows == math.ceil(along / across * LINE_CODES)  # one row per f pixels at line scale


def test_glyph_scale_does_not_depend_on_crop_size_or_word_length():
    # the same line at two resolutions, and a line twice as long: same rows per unit of length
    assert choose_template(100, 25, 200) == choose_template(400, 100, 200)
    assert choose_template(200, 25, 200).rows == 2 * choose_template(100, 25, 200).rows


def test_a_thicker_strip_has_more_codes_across_and_along_the_line():
    # line_codes 6 (a VQ-VAE's model.line_codes): 1.5x the codes across, so 1.5x the rows for the same line
    thin, thick = choose_template(100, 25, 200), choose_template(100, 25, 200, line_codes=6)
    assert (thin.rows, thin.cols) == (16, 4) and (thick.rows, thick.cols) == (24, 6)
    assert choose_template(1000, 100, 200, line_codes=6).rows == 200 // 7  # the longest: 28 rows of 6 + <row>


def test_long_lines_are_squashed_into_the_longest_strip_then_refused():
    longest = choose_template(1000, 100, 200)  # 10:1 fills max_length 200 = 40 rows of 4 + <row>
    assert longest.rows == 40 and longest.num_tokens == 200
    assert choose_template(2500, 100, 200) == longest  # 25:1, squashed 2.5x
    with pytest.raises(ValueError, match="max_length=200"):
        choose_template(4000, 100, 200)  # 40:1 would be squashed 4x


def test_bad_sizes_name_the_value():
    with pytest.raises(ValueError, match="0x10"):
        choose_template(0, 10, 64)
    with pytest.raises(ValueError, match="max_length=1"):
        make_templates(1)
    with pytest.raises(ValueError, match="max_length=4"):
        choose_template(10, 10, 4)


def test_fit_turns_horizontal_lines_and_pads_after_the_end():
    image = np.full((20, 100, 3), 255, dtype=np.uint8)  # 5:1, white with a black left end
    image[:, :10] = 0
    template = choose_template(100, 20, 200)
    out = fit_to_template(image, template, 8)
    assert out.shape == (*template.box(8), 3) == (20 * 8, 32, 3) and out.dtype == np.uint8
    assert (out[:8] < 64).all()  # the left end is on top after the quarter turn
    assert (out[-1] > 200).all()  # and the line fills the strip: no padding for an exact fit
    vertical = fit_to_template(np.rot90(image).copy(), choose_template(20, 100, 200), 8)
    assert vertical.shape == out.shape


def test_fit_normalizes_colour_and_polarity():
    rng = np.random.default_rng(0)
    dark_on_light = np.full((32, 96, 3), (200, 220, 90), dtype=np.uint8)
    dark_on_light[8:24, 16:80] = (20, 40, 120)
    light_on_dark = 255 - dark_on_light
    template = choose_template(96, 32, 200)
    a, b = fit_to_template(dark_on_light, template, 8), fit_to_template(light_on_dark, template, 8)
    assert (a[..., 0] == a[..., 1]).all()  # grey
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # polarity removed
    assert a.min() == 0 and a.max() == 255  # contrast stretched
    assert a[0, 0, 0] == 255  # light ground
    with pytest.raises(ValueError, match="flat colour"):
        fit_to_template(np.full((20, 60, 3), 90, np.uint8), template, 8)
    noisy = np.clip(dark_on_light + rng.normal(0, 3, dark_on_light.shape), 0, 255).astype(np.uint8)
    assert np.abs(fit_to_template(noisy, template, 8).astype(int) - a).mean() < 20


def test_upright_turns_a_horizontal_strip_back():
    image = np.full((20, 100, 3), 255, dtype=np.uint8)
    image[:, :10] = 0  # black left end
    strip = fit_to_template(image, choose_template(100, 20, 200), 8)
    shown = upright(strip, horizontal=True)
    assert shown.shape == (32, 160, 3) and (shown[:, :16] < 64).all() and (shown[:, -16:] > 200).all()
    assert upright(strip, horizontal=False) is strip


def test_tensor_conversion_round_trip():
    image = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    array = image_to_tensor_array(image)
    assert array.shape == (3, 16, 24) and array.min() >= -1 and array.max() <= 1
    np.testing.assert_array_equal(tensor_array_to_image(array), image)


def test_templates_waste_less_than_a_square_for_text_crops():
    for width, height in [(256, 64), (400, 30), (64, 256), (300, 40)]:
        ours, square = template_waste(width, height, 128), square_waste(width, height, 128)
        # a strip pads only after its end, and that <vpad> run is trimmed before the GPT sees it
        assert 0 <= ours < square < 1
    # the reference's example: 256x64 padded to a square wastes about 3/4 of the codes
    assert square_waste(256, 64, 256) == pytest.approx(0.75)
    # a square image in a square grid wastes nothing
    assert square_waste(160, 160, 256) == pytest.approx(0.0)


def test_polarity_follows_the_ground_not_a_dark_surround():
    """A light plate with dark text, cropped with a dark surround (car body) around it, stays dark on light."""
    crop = np.full((40, 120, 3), 25, np.uint8)  # the surround: every border pixel is dark
    crop[6:34, 8:112] = 230  # the plate
    crop[14:26, 20:100:8] = 10  # strokes
    grey = normalize_grey(crop)
    assert grey[20, 62] > 200 and grey[20, 60] < 50  # ground light, strokes dark


def _strokes(height: int, width: int, ink: int = 0, ground: int = 255) -> np.ndarray:
    """A grey crop of a few glyph-like strokes (bars and a ring) on a plain ground."""
    grey = np.full((height, width), ground, np.uint8)
    for x in range(width // 6, width - width // 6, width // 8):
        cv2.rectangle(grey, (x, height // 3), (x + width // 20, 2 * height // 3), ink, -1)
    cv2.circle(grey, (width - width // 5, height // 2), height // 7, ink, 2)
    return grey


def _rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[:, :, None], 3, axis=2)


def test_a_frame_around_the_text_is_cut_away_and_plain_crops_are_kept_whole():
    """A border drawn around the text, or a box of another colour on a surround, is cut to what it encloses (the
    text's own part of the crop); a crop with no frame, a glyph's bowl and a flat crop are kept whole."""
    text = _strokes(40, 200)
    bordered = np.full((60, 240), 255, np.uint8)
    bordered[10:50, 20:220] = text
    cv2.rectangle(bordered, (16, 6), (223, 53), 0, 3)
    y0, y1, x0, x1 = find_frame(_rgb(bordered)).box
    assert abs(y0 - 9) <= 2 and abs(y1 - 51) <= 2 and abs(x0 - 19) <= 2 and abs(x1 - 221) <= 2
    surround = np.full((80, 260), 20, np.uint8)  # a dark surround, a light box, dark text, as on a plate
    surround[20:60, 30:230] = text
    y0, y1, x0, x1 = find_frame(_rgb(surround)).box
    assert (y0, y1, x0, x1) == (20, 60, 30, 230)
    np.testing.assert_array_equal(strip_frame(_rgb(surround)), _rgb(text))
    faint = np.full((80, 260), 200, np.uint8)  # a dark box on a light surround, its text only a little lighter:
    faint[20:60, 30:230] = _strokes(40, 200, ink=100, ground=55)  # the crop's threshold parts box from surround
    assert find_frame(_rgb(faint)).box == (20, 60, 30, 230)  # only, yet the box's inside holds text
    for whole in (text, _strokes(60, 60), np.full((40, 200), 255, np.uint8)):
        assert find_frame(_rgb(whole)).box == (0, whole.shape[0], 0, whole.shape[1])
    empty_box = np.full((60, 240), 255, np.uint8)
    cv2.rectangle(empty_box, (16, 6), (223, 53), 0, 3)
    y0, y1, x0, x1 = find_frame(_rgb(empty_box)).box  # never cut to an empty inside: the border stays in
    assert y0 <= 5 and y1 >= 55 and x0 <= 15 and x1 >= 225
    ring = np.full((60, 60), 255, np.uint8)  # a glyph's bowl (an O) is no frame, even holding a dot
    cv2.ellipse(ring, (30, 30), (24, 26), 0, 0, 360, 0, 4)
    cv2.circle(ring, (30, 30), 4, 0, -1)
    assert find_frame(_rgb(ring)).box == (0, 60, 0, 60)


def test_normalize_grey_equals_its_formula_on_random_crops():
    """The table-and-histogram normalize_grey gives the very pixels of its formula: stretch 2nd-98th percentile to
    0..255 in float, invert when the stretched median is under 128, round."""
    from vqvae.templates import _percentiles

    rng = np.random.default_rng(0)
    for trial in range(200):
        height, width = rng.integers(2, 60, 2)
        low, high = sorted(rng.integers(0, 256, 2))
        image = rng.integers(low, high + 1, (height, width, 3)).astype(np.uint8)
        if trial % 3 == 0:
            image[: height // 2] = rng.integers(0, 256)  # a large flat part, as a ground
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        np.testing.assert_array_equal(_percentiles(grey, (2, 50, 98)), np.percentile(grey, (2, 50, 98)))
        p2, p98 = np.percentile(grey, (2, 98))
        if p98 - p2 < 8:
            p2, p98 = float(grey.min()), float(grey.max())
            if p98 - p2 < 8:
                continue
        stretched = np.clip((grey.astype(np.float32) - p2) * (255.0 / (p98 - p2)), 0, 255)
        if np.median(stretched) < 128:
            stretched = 255.0 - stretched
        np.testing.assert_array_equal(normalize_grey(image), (stretched + 0.5).astype(np.uint8))


def test_what_the_cut_keeps_of_a_rotated_frame_is_painted_over_and_the_text_is_not():
    """A border turned a few degrees leaves its corners inside the box cut to its hole; they are painted in the
    inside's ground colour, so no dark line remains along the cut's edges. Text that touches the border dents the
    hole, and stays: only what lies outside the hole's convex hull is painted."""
    from vqvae.templates import cut_to_frame

    grey = np.full((90, 260), 255, np.uint8)
    grey[25:65, 30:230] = _strokes(40, 200)
    corners = cv2.boxPoints(((130, 45), (220, 64), 4.0)).astype(np.int32)
    cv2.polylines(grey, [corners], True, 0, 3)
    grey[40:50, 20:40] = 0  # a stroke that runs into the border, on its left
    frame = find_frame(_rgb(grey))
    assert frame.inside is not None
    cut = cut_to_frame(_rgb(grey), frame)[:, :, 0]
    y0, y1, x0, x1 = frame.box
    assert y1 - y0 >= 50 and x1 - x0 >= 200
    edges = np.concatenate([cut[:2].ravel(), cut[-2:].ravel(), cut[8:-8, -2:].ravel()])
    assert edges.min() > 200, "the border's corners stay in the cut"
    assert (grey[y0:y1, x0:x1][frame.inside] == 0).any()  # the text is inside
    assert cut[40 - y0:50 - y0, 3:15].max() < 50  # the stroke that touches the border is kept (but its end)


def test_a_frame_its_text_runs_into_is_found_by_its_long_lines():
    """Strokes that run into a border's top and bottom lines split its hole into pieces no frame could be, so the
    cut stopped at the box around the border and kept the border's lines, read as glyphs; the frame is then looked
    for among the crop's long straight runs, which short strokes are not: the cut is the border's inside, the
    strokes stay in it. A crop with no frame still has none."""
    grey = np.full((80, 260), 20, np.uint8)  # a dark surround, a light box, a dark border in it
    grey[15:65, 20:240] = 230
    cv2.rectangle(grey, (26, 21), (233, 58), 20, 3)
    for x in range(28, 222, 14):  # teeth of glyphs that touch the border's lines, above and below
        grey[23:29, x:x + 10] = 20
        grey[51:57, x:x + 10] = 20
    grey[38:44, 40:200:6] = 20
    frame = find_frame(_rgb(grey))
    y0, y1, x0, x1 = frame.box
    assert abs(y0 - 24) <= 1 and abs(y1 - 56) <= 1 and abs(x0 - 29) <= 1 and abs(x1 - 231) <= 1
    assert grey[y0:y1, x0:x1][frame.inside].min() == 20  # the teeth and strokes are inside
    unframed = np.full((80, 260), 230, np.uint8)
    unframed[24:56, 29:231] = grey[24:56, 29:231]  # the same text, no border, no box
    assert find_frame(_rgb(unframed)).inside is None
