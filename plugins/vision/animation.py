"""The interior-gradients animation (Figure 3): one frame per α, the image rendered with the
importance of the gradients at baseline + α·(image − baseline), beside the trend of mean importance
with the current α marked, and under both the caption every vision picture has (what is explained)
with what the brightness means and its scale."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from igkit.io.records import write_bytes

from .figures import MIN_CAPTION_WIDTH, Line, Panel, caption_pixels, captioned, chart_pixels, enlarged
from .records import Provenance, stamp
from .render import RenderSettings, paper_rendering

FRAME_MS = 250
#: the ring on the trend chart that marks the frame's α (black: red and blue mean raises and lowers)
MARKER = (0, 0, 0)


def trend_panel(alphas: torch.Tensor, importance: torch.Tensor) -> Panel:
    """Mean pixel importance against α (large at small α, near zero where the score saturates)."""
    trend = importance.reshape(importance.shape[0], -1).mean(1)
    return Panel("mean pixel importance", "alpha (scaling of the image)", "mean of sum_c |gradient|",
                 [Line("", alphas.tolist(), trend.tolist())])


def legend_lines(score: str) -> list[str]:
    """What a frame's brightness means and on which scale, for the caption under every frame.

    The frames are the paper's rendering (brightness, no colours): the gradient's size says
    where the score is sensitive at that α, not whether a pixel raises or lowers it."""
    return [f"brightness: sum over colour channels of |gradient of {score}| at baseline + alpha·(image − "
            f"baseline); unsigned, bright = the score is most sensitive there, up or down (red raises / "
            f"blue lowers: ig_overlay.png)",
            "brightness scale: each frame its own, between the --clip percentiles of that frame's values "
            "(the chart gives the amounts); the black ring marks the frame's alpha"]


def interior_gif(image: np.ndarray, alphas: torch.Tensor, importance: torch.Tensor, path: Path,
                 settings: RenderSettings, made_by: Provenance, caption: Sequence[str]) -> Path:
    """Write the animation: ``importance`` is ``[frames, H, W]`` for the ``alphas`` of the frames;
    ``caption`` (what is explained, what the brightness means) goes under every frame and into
    the GIF's comment."""
    height, width = enlarged(image).shape[:2]
    chart, points = chart_pixels(trend_panel(alphas, importance), int(height * 1.6), height)
    top = (max(height, chart.shape[0]), width + chart.shape[1])
    block = caption_pixels(caption, max(top[1], MIN_CAPTION_WIDTH))
    frames = []
    for k, alpha in enumerate(alphas.tolist()):
        frame = np.full((*top, 3), 255, dtype=np.uint8)
        frame[:height, :width] = enlarged(paper_rendering(image, importance[k].numpy(), settings))
        frame[:chart.shape[0], width:] = chart
        picture = Image.fromarray(frame)
        draw = ImageDraw.Draw(picture)
        x, y = points[k]
        draw.ellipse((width + x - 5, y - 5, width + x + 5, y + 5), outline=MARKER, width=3)
        draw.text((4, height - 14), f"alpha = {alpha:.2f}", fill=(255, 255, 0))
        frames.append(stamp(Image.fromarray(captioned(np.asarray(picture), block)), made_by))
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=FRAME_MS, loop=0,
                   comment="\n".join([f"igkit interior gradients; model {made_by.name}; weights {made_by.weights}",
                                       *caption]))
    return write_bytes(path, buffer.getvalue())
