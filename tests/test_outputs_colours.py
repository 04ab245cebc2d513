"""igkit.outputs.colours: one diverging convention, legends that say what colours and scales mean."""
from __future__ import annotations

import numpy as np

from igkit.outputs import colours


def test_zero_is_neutral_and_ends_are_the_legend_colours():
    assert colours.signed_colour(0.0, 2.0) == colours.NEUTRAL
    assert colours.signed_colour(2.0, 2.0) == colours.RAISES
    assert colours.signed_colour(-5.0, 2.0) == colours.LOWERS  # clipped at the scale's end
    assert colours.RAISES != colours.LOWERS


def test_map_is_monotone_in_lightness_on_each_side():
    """Colour-blind safe: the two sides also differ by lightness, darkening away from zero."""
    def lightness(hex_colour):
        r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
        return 0.299 * r + 0.587 * g + 0.114 * b
    ups = [lightness(colours.signed_colour(v, 1.0)) for v in np.linspace(0, 1, 11)]
    downs = [lightness(colours.signed_colour(-v, 1.0)) for v in np.linspace(0, 1, 11)]
    assert all(a >= b for a, b in zip(ups, ups[1:])) and all(a >= b for a, b in zip(downs, downs[1:]))


def test_matplotlib_map_matches_the_hex_colours():
    cmap = colours.diverging_cmap()
    rgb = colours.signed_rgb(np.array([-1.0, 0.0, 1.0]), 1.0)
    assert rgb.shape == (3, 3)
    for got, want in zip(rgb, (colours.LOWERS, colours.NEUTRAL, colours.RAISES)):
        assert np.allclose(got, [int(want[i:i + 2], 16) / 255 for i in (1, 3, 5)], atol=0.01)
    assert cmap.name == "igkit_diverging"


def test_legend_has_one_meaning_and_names_the_score():
    text = colours.legend("P(than)")
    assert "red: raises P(than) relative to the baseline" in text and "blue: lowers it" in text


def test_scale_note_says_which_scale():
    own, shared = colours.scale_note(0.5, shared=False), colours.scale_note(0.5, shared=True)
    assert "±0.5" in own and "this item's own" in own and "--shared-scale" in own
    assert "shared by every item of this run" in shared


def test_shared_peak_ignores_nan_and_all_zero():
    assert colours.shared_peak([np.array([0.1, -0.3]), np.array([np.nan, 0.2])]) == 0.3
    assert colours.shared_peak([np.zeros(3)]) == 1.0


def test_html_legend_escapes_the_score_name():
    html = colours.html_legend(1.0, False, score="P(<unk>)")
    assert "P(&lt;unk&gt;)" in html and "<unk>" not in html and colours.css_gradient() in html
