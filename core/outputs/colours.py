"""One colour convention for every attribution picture igkit draws (PNG, SVG, GIF, HTML, app).

Why one module: a reader who learnt "red raises the score" from a molecule must not find red
meaning "lowers" on a text page. The map is ColorBrewer's RdBu (safe for the common forms of
colour blindness: it varies in lightness as well as hue), with its two darkest classes left out
so black labels on coloured atoms or words stay legible. Red raises the target score relative
to the baseline, blue lowers it, white is no effect. Every legend takes its words from
:func:`legend` and every colour scale is described by :func:`scale_note`, so a picture always
says which scale it uses (one item's own, or one shared by the whole run with ``--shared-scale``).

Unsigned values (gradient norms, Σ|attribution| maps) are not signed effects: they get the
one-hue :data:`MAGNITUDE_STOPS` (white to dark purple) and :data:`MAGNITUDE_LEGEND`, never the
diverging map.

Imports only the standard library at module level (matplotlib and numpy inside functions), so
the web app and ``igkit --help`` stay light.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

#: ColorBrewer RdBu (9 classes), from "lowers most" to "raises most"; the middle stop is zero
DIVERGING_STOPS: tuple[str, ...] = ("#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7",
                                    "#fddbc7", "#f4a582", "#d6604d", "#b2182b")
#: the colours at the two ends, for overlays and legend swatches
RAISES = DIVERGING_STOPS[-1]
LOWERS = DIVERGING_STOPS[0]
NEUTRAL = DIVERGING_STOPS[len(DIVERGING_STOPS) // 2]
#: ColorBrewer Purples (7 classes), white to dark: for unsigned sizes
MAGNITUDE_STOPS: tuple[str, ...] = ("#fcfbfd", "#efedf5", "#dadaeb", "#bcbddc", "#9e9ac8",
                                    "#756bb1", "#54278f")

MAGNITUDE_LEGEND = "purple: size of an unsigned value (darker = larger); it says nothing about raising or lowering"


def legend(score: str = "the target score") -> str:
    """The one meaning of the colours, naming the score explained (e.g. ``'P(than)'``)."""
    return f"red: raises {score} relative to the baseline · blue: lowers it · white: no effect"


def scale_note(peak: float, shared: bool, unit: str = "") -> str:
    """Which colour scale a picture uses: full colour at ±``peak``, this item's own or the run's."""
    amount = f"±{peak:.3g}{(' ' + unit) if unit else ''}"
    if shared:
        return (f"colour scale {amount}, shared by every item of this run (--shared-scale): "
                "colours compare across pictures")
    return (f"colour scale {amount}, this item's own largest |value|: compare colours within this "
            "picture only (--shared-scale puts a whole run on one scale)")


def shared_peak(values: Sequence[Any]) -> float:
    """The largest finite |value| over several arrays (a run's shared scale); 1.0 when all are zero."""
    import numpy as np

    peaks = [float(np.nanmax(np.abs(np.asarray(v, dtype=np.float64)))) for v in values if np.size(v)]
    peak = max([p for p in peaks if math.isfinite(p)], default=0.0)
    return peak if peak > 0 else 1.0


def _rgb(hex_colour: str) -> tuple[float, float, float]:
    h = hex_colour.lstrip("#")
    return tuple(int(h[i:i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]


def _hex(rgb: Sequence[float]) -> str:
    return "#" + "".join(f"{round(min(max(c, 0.0), 1.0) * 255):02x}" for c in rgb)


def _interpolate(stops: Sequence[str], t: float) -> tuple[float, float, float]:
    """The colour at ``t`` ∈ [0, 1] along evenly spaced stops."""
    t = min(max(t, 0.0), 1.0) * (len(stops) - 1)
    k = min(int(t), len(stops) - 2)
    a, b = _rgb(stops[k]), _rgb(stops[k + 1])
    f = t - k
    return tuple(x + (y - x) * f for x, y in zip(a, b))  # type: ignore[return-value]


def signed_colour(value: float, peak: float) -> str:
    """Hex colour of a signed attribution on the scale ±``peak`` (white at zero, NaN grey)."""
    if not math.isfinite(value):
        return "#d9d9d9"
    peak = peak if peak > 0 else 1.0
    return _hex(_interpolate(DIVERGING_STOPS, 0.5 + 0.5 * value / peak))


def magnitude_colour(value: float, peak: float) -> str:
    """Hex colour of an unsigned size on the scale 0..``peak``."""
    if not math.isfinite(value):
        return "#d9d9d9"
    peak = peak if peak > 0 else 1.0
    return _hex(_interpolate(MAGNITUDE_STOPS, abs(value) / peak))


def ink(background: str) -> str:
    """Black or white text, whichever reads better on ``background``."""
    r, g, b = _rgb(background)
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def signed_rgb(values: Any, peak: float) -> Any:
    """``values`` (any shape) as float RGB in [0, 1] on the diverging map (shape + (3,))."""
    import numpy as np

    cmap = diverging_cmap()
    peak = peak if peak > 0 else 1.0
    return np.asarray(cmap(0.5 + 0.5 * np.clip(np.asarray(values, dtype=np.float64) / peak, -1, 1)))[..., :3]


def diverging_cmap() -> Any:
    """The map as a matplotlib colormap (use with ``Normalize(-peak, peak)``)."""
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("igkit_diverging", list(DIVERGING_STOPS), N=256)


def magnitude_cmap() -> Any:
    """The one-hue map for unsigned sizes, as a matplotlib colormap."""
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("igkit_magnitude", list(MAGNITUDE_STOPS), N=256)


def css_gradient(stops: Sequence[str] = DIVERGING_STOPS) -> str:
    """A CSS ``linear-gradient`` of the map, left = lowers, right = raises (for HTML legends)."""
    return "linear-gradient(to right, " + ", ".join(stops) + ")"


def html_legend(peak: float, shared: bool, score: str = "the target score", unit: str = "") -> str:
    """A small self-contained HTML legend: the colour bar with its ends labelled, and the words."""
    import html

    return ("<div class='igkit-legend' style='margin:6px 0'>"
            f"<span style='font-size:90%'>−{peak:.3g}</span> "
            f"<span style='display:inline-block;width:180px;height:12px;vertical-align:middle;"
            f"border:1px solid #999;background:{css_gradient()}'></span> "
            f"<span style='font-size:90%'>+{peak:.3g}</span>"
            f"<div>{html.escape(legend(score))}</div>"
            f"<div style='color:#444;font-size:90%'>{html.escape(scale_note(peak, shared, unit))}</div></div>")
