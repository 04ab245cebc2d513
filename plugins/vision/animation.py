"""The interior-gradients animation (Figure 3): one frame per α, the image rendered with the
importance of the gradients at α·image, beside the trend of mean importance with the current α marked."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from igkit.io.records import write_bytes

from .figures import Line, Panel, chart_pixels
from .records import Provenance, stamp
from .render import RenderSettings, paper_rendering

#: frames smaller than this are enlarged (nearest neighbour) so a small --size stays visible
MIN_DISPLAY = 224
FRAME_MS = 250


def trend_panel(alphas: torch.Tensor, importance: torch.Tensor) -> Panel:
    """Mean pixel importance against α (large at small α, near zero where the score saturates)."""
    trend = importance.reshape(importance.shape[0], -1).mean(1)
    return Panel("mean pixel importance", "alpha (scaling of the image)", "mean of sum_c |gradient|",
                 [Line("", alphas.tolist(), trend.tolist())])


def interior_gif(image: np.ndarray, alphas: torch.Tensor, importance: torch.Tensor, path: Path,
                 settings: RenderSettings, made_by: Provenance) -> Path:
    """Write the animation: ``importance`` is ``[frames, H, W]`` for the ``alphas`` of the frames."""
    height, width = image.shape[:2]
    zoom = max(1, -(-MIN_DISPLAY // height))
    size = (width * zoom, height * zoom)
    chart, points = chart_pixels(trend_panel(alphas, importance), int(size[1] * 1.6), size[1])
    frames = []
    for k, alpha in enumerate(alphas.tolist()):
        picture = Image.fromarray(paper_rendering(image, importance[k].numpy(), settings))
        frame = Image.new("RGB", (size[0] + chart.shape[1], max(size[1], chart.shape[0])), "white")
        frame.paste(picture.resize(size, Image.NEAREST), (0, 0))
        frame.paste(Image.fromarray(chart), (size[0], 0))
        draw = ImageDraw.Draw(frame)
        x, y = points[k]
        draw.ellipse((size[0] + x - 5, y - 5, size[0] + x + 5, y + 5), outline=(220, 0, 0), width=3)
        draw.text((4, size[1] - 14), f"alpha = {alpha:.2f}", fill=(255, 255, 0))
        frames.append(stamp(frame, made_by))
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=FRAME_MS, loop=0,
                   comment=f"igkit interior gradients; model {made_by.name}; weights {made_by.weights}")
    return write_bytes(path, buffer.getvalue())
