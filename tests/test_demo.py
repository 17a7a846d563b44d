"""scripts/demo.py: the fixed-width field it renders lands in one template of the demo VQ-VAE config."""
import pytest
from omegaconf import OmegaConf

from scripts.demo import VQ_CONFIG, field_aspect
from vqvae.templates import Template, choose_template


def test_demo_fields_land_in_the_four_row_template_of_the_config():
    max_length = int(OmegaConf.load(VQ_CONFIG).data.max_length)
    aspect = field_aspect(max_length)
    # every field is one strip, whatever its word: one glyph scale and place (DESIGN §2)
    strips = {choose_template(round(aspect * height), height, max_length) for height in (20, 32, 57, 100)}
    assert len(strips) == 1
    assert field_aspect(96) == Template(4, 23).aspect
    with pytest.raises(ValueError, match="max_length=4 has no 4-row template"):
        field_aspect(4)
