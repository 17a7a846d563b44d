"""Aspect-ratio templates (DESIGN §2): budget, waste, log-space choice, fitting."""
import math

import numpy as np
import pytest

from vqvae.templates import (PAD_RGB, Template, choose_template, fit_to_template, image_to_tensor_array,
                             make_templates, square_waste, template_waste, tensor_array_to_image)

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


@pytest.mark.parametrize("width,height", [(400, 30), (256, 64), (128, 32), (60, 50)])
def test_wide_images_get_wide_templates_and_tall_get_tall(width, height):
    wide = choose_template(width, height, 128)
    tall = choose_template(height, width, 128)
    if width / height > 1.5:
        assert wide.aspect > 1 > tall.aspect, (wide, tall)
    # log space treats w:h and h:w alike: the two choices are about equally far from 1:1
    assert abs(math.log(wide.aspect) + math.log(tall.aspect)) < 0.5


@pytest.mark.parametrize("width,height", [(20, 160), (30, 400), (160, 20), (33, 47), (1000, 3)])
def test_choice_is_nearest_in_log_space(width, height):
    templates = make_templates(128)
    chosen = choose_template(width, height, 128)
    best = min(abs(math.log(t.aspect / (width / height))) for t in templates)
    assert abs(math.log(chosen.aspect / (width / height))) == pytest.approx(best)


def test_tall_image_is_not_given_a_wide_template_by_linear_distance():
    # 1:8 tall: in linear distance every template with aspect < 1 looks about equally close (all ~0.1),
    # in log space only a tall one with aspect near 1/8 is.
    chosen = choose_template(20, 160, 128)
    assert 1 / 12 < chosen.aspect < 1 / 5, chosen


def test_bad_sizes_name_the_value():
    with pytest.raises(ValueError, match="0x10"):
        choose_template(0, 10, 64)
    with pytest.raises(ValueError, match="max_length=1"):
        make_templates(1)


def test_fit_keeps_aspect_and_pads_right_and_bottom():
    image = np.zeros((20, 100, 3), dtype=np.uint8)  # 5:1, black
    template = choose_template(100, 20, 64)
    out = fit_to_template(image, template, 8)
    assert out.shape == (*template.box(8), 3) and out.dtype == np.uint8
    assert (out[0, 0] == 0).all()  # content top-left
    if out.shape[0] * 5 < out.shape[1]:  # box wider than 5:1: padding on the right
        assert (out[:, -1] == PAD_RGB).all()
    else:
        assert (out[-1, :] == PAD_RGB).all()


def test_tensor_conversion_round_trip():
    image = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    array = image_to_tensor_array(image)
    assert array.shape == (3, 16, 24) and array.min() >= -1 and array.max() <= 1
    np.testing.assert_array_equal(tensor_array_to_image(array), image)


def test_templates_waste_less_than_a_square_for_text_crops():
    for width, height in [(256, 64), (400, 30), (64, 256), (300, 40)]:
        ours, square = template_waste(width, height, 128), square_waste(width, height, 128)
        assert 0 <= ours < square < 1
        assert ours < 0.25
    # the reference's example: 256x64 padded to a square wastes about 3/4 of the codes
    assert square_waste(256, 64, 256) == pytest.approx(0.75)
    # a square image in a square grid wastes nothing
    assert square_waste(160, 160, 256) == pytest.approx(0.0)
