"""What igkit's other attribution methods need from an image classifier (``--methods``), and
how their maps become pixel maps.

The runner calls :func:`method_options` for each method listed with ``--methods`` (see
``VisionDomain.method_options``); the answers here are the vision plugin's choices:

* ``grad_cam``: the model's last convolutional block, upsampled to the image (``--cam-layer``
  names another module). Known families: googlenet ``inception5b``, inception_v3 ``Mixed_7c``,
  resnet/resnext/wide_resnet ``layer4``, squeezenet, vgg, alexnet, densenet, mobilenet,
  efficientnet, convnext, mnasnet ``features``; any other network: the last module (in the
  order modules finish during a forward pass) whose output is a 4-D map, pooling layers left out.
* ``guided_backprop``: the network's ``nn.ReLU`` modules. torchvision's googlenet and
  inception_v3 apply ReLU with ``F.relu`` inside ``BasicConv2d`` and so have *no* ``nn.ReLU``
  module: guided backprop is refused for them with that reason (resnet, vgg, squeezenet,
  alexnet, mobilenet and densenet use ``nn.ReLU`` modules and work).
* ``occlusion``: groups of pixels (all three channels) set to the baseline (black by default,
  the blurred copy with ``--baseline blur``, the first noise draw with ``--baseline noise``):
  SLIC superpixels (``--occlusion superpixels``, the default, needs scikit-image; about
  H·W/patch² of them) or square patches of ``--occlusion-patch`` pixels (``--occlusion patches``,
  and the fall-back, with a warning, where scikit-image is not installed).
* ``expected_gradients`` / ``multi_baseline_ig``: reference images from ``--reference`` (files
  or folders; at most ``--reference-count``, sorted by path), resized and cropped like the
  images explained. Without ``--reference`` (``reference=[paths]`` in Python) they are the run's
  own image files (an image may then be among its own references; its term adds nothing); where
  there are none (in-memory images, the app's one upload) the methods stop with a clear error.
* ``blur_ig``: its own path from the image blurred with σ = 50 px × side / 224 (the paper's
  50 px at 224), 100 segments; the run's ``--baseline`` is not used.
* ``guided_ig``, ``interior_gradient``: one baseline (the first noise draw with ``--baseline
  noise``); ``xrai``: region scores on IG from the run's baseline (needs scikit-image), its
  dilation (5 px) and smallest region gain (50 px) scaled from 224-px images to the image.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from igkit import IGInputError, IgkitWarning, Prepared

#: the last convolutional block of torchvision families (name prefix → module name)
CAM_LAYERS = (("googlenet", "inception5b"), ("inception_v3", "Mixed_7c"), ("resnet", "layer4"),
              ("resnext", "layer4"), ("wide_resnet", "layer4"), ("squeezenet", "features"),
              ("vgg", "features"), ("alexnet", "features"), ("densenet", "features"),
              ("mobilenet", "features"), ("efficientnet", "features"), ("convnext", "features"),
              ("mnasnet", "layers"))
#: methods whose map has one channel (a pixel map already); the others give [3, H, W]
SINGLE_CHANNEL = ("grad_cam", "xrai")
#: methods that take one baseline, not a stack of noise draws
ONE_BASELINE = ("occlusion", "guided_ig", "interior_gradient")
#: methods that need reference images
REFERENCE_METHODS = ("expected_gradients", "multi_baseline_ig")
OCCLUSION_UNITS = ("superpixels", "patches")
POOLING = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.AvgPool2d, nn.MaxPool2d, nn.Dropout, nn.Flatten)


def method_options(method: str, batch: Prepared) -> dict[str, Any]:
    """Options ``method`` needs for a batch of images (see the module docstring)."""
    model = batch.context["model"]
    settings = batch.context["settings"]
    x = batch.inputs
    if method == "grad_cam":
        return {"layer": cam_layer(model, settings.get("cam_layer"), x[:1])[1], "upsample": True}
    if method == "guided_backprop":
        check_relus(model)
        return {"model": model.module}
    if method == "occlusion":
        units, patch = occlusion_units(settings, x.shape[-2:])
        options: dict[str, Any] = {"baselines": batch.baselines[:1]}
        if units == "patches":
            return {**options, "patch": patch}
        return {**options, "groups": superpixels(x, patch)}
    if method in REFERENCE_METHODS:
        paths = settings.get("reference")
        if not paths:
            raise IGInputError(f"{method} needs reference images of the same kind as the images explained: "
                               f"give --reference FILES/FOLDERS (in Python reference=[paths]); by default "
                               f"the run's own image files are used, and this run has none (images in "
                               f"memory, or the app's one upload)")
        reference = reference_images(model, tuple(str(p) for p in paths),
                                     int(settings.get("reference_count") or 16))
        if reference.shape[1:] != x.shape[1:]:
            raise IGInputError(f"the reference images are {tuple(reference.shape[1:])} but this image is "
                               f"{tuple(x.shape[1:])}; give references the model sees at the same size")
        return {"baselines": None, "reference": reference.to(x)}
    if method == "blur_ig":
        return {"baselines": None, "max_sigma": blur_sigma(x.shape[-2:])}
    if method in ONE_BASELINE:
        return {"baselines": batch.baselines[:1]}
    if method == "xrai":
        return xrai_scale(x.shape[-2:])
    return {}


def xrai_scale(size: Sequence[int]) -> dict[str, int]:
    """XRAI's pixel sizes (dilation 5 px, regions adding < 50 new pixels dropped) are for 224-px
    images; scaled to the image so small images are not covered by a few dilated regions."""
    H, W = (int(s) for s in size)
    return {"dilation": max(1, round(5 * max(H, W) / 224)), "min_pixel_diff": max(1, round(50 * H * W / 224 ** 2))}


def describe_options(method: str, model: Any, settings: dict[str, Any], size: Sequence[int]) -> dict[str, Any]:
    """What :func:`method_options` chose for ``method``, as JSON (kept in ``methods.json``)."""
    if method == "grad_cam":
        return {"layer": cam_layer(model, settings.get("cam_layer"), None)[0], "upsampled": True}
    if method == "guided_backprop":
        return {"relu_modules": sum(isinstance(m, nn.ReLU) for m in model.module.modules())}
    if method == "occlusion":
        units, patch = occlusion_units(settings, size, warn=False)
        return {"units": units, "patch_pixels": patch, "occluded_value": "the run's (first) baseline"}
    if method in REFERENCE_METHODS:
        paths = settings.get("reference") or []
        return {"reference": list(paths), "reference_count": int(settings.get("reference_count") or 16)}
    if method == "blur_ig":
        return {"max_sigma_pixels": blur_sigma(size), "segments": 100}
    if method == "xrai":
        return xrai_scale(size)
    return {}


def blur_sigma(size: Sequence[int]) -> float:
    """Blur IG's widest blur: the paper's 50 pixels at 224, scaled to the image."""
    return 50.0 * max(int(s) for s in size) / 224


def occlusion_units(settings: dict[str, Any], size: Sequence[int], warn: bool = True) -> tuple[str, int]:
    """``(units, patch)``: superpixels or patches, and the patch side (superpixels: about that area)."""
    units = settings.get("occlusion") or "superpixels"
    if units not in OCCLUSION_UNITS:
        raise IGInputError(f"--occlusion must be one of {', '.join(OCCLUSION_UNITS)}, got {units!r}")
    patch = settings.get("occlusion_patch")
    side = min(int(s) for s in size)
    patch = max(2, round(side / 14)) if patch is None else int(patch)
    if not 1 <= patch <= side:
        raise IGInputError(f"--occlusion-patch {patch} must be between 1 and the image side {side}")
    if units == "superpixels" and not has_skimage():
        if warn:
            warnings.warn("occlusion: scikit-image is not installed, so square patches are occluded instead "
                          "of superpixels (pip install scikit-image)", IgkitWarning, stacklevel=2)
        units = "patches"
    return units, patch


def has_skimage() -> bool:
    try:
        import skimage.segmentation  # noqa: F401
    except ImportError:
        return False
    return True


def superpixels(x: torch.Tensor, patch: int) -> torch.Tensor:
    """SLIC superpixel ids ``[B, 3, H, W]`` (the same id on all channels of a pixel)."""
    from skimage.segmentation import slic

    H, W = x.shape[-2:]
    n = max(2, round(H * W / patch ** 2))
    ids = []
    for image in x.detach().cpu():
        labels = slic(image.permute(1, 2, 0).double().numpy(), n_segments=n, compactness=10.0, start_label=0,
                      channel_axis=-1)
        ids.append(torch.from_numpy(labels).long())
    return torch.stack(ids).unsqueeze(1).expand(-1, x.shape[1], -1, -1).to(x.device)


def cam_layer(model: Any, name: str | None, x: torch.Tensor | None) -> tuple[str, nn.Module]:
    """Grad-CAM's layer: ``name``, the family's last conv block, or the last 4-D output found."""
    from igkit.attribution.layers import resolve_module

    if name:
        return name, resolve_module(model.module, name)
    for prefix, layer in CAM_LAYERS:
        if model.name.startswith(prefix):
            try:
                return layer, resolve_module(model.module, layer)
            except IGInputError:
                break
    return last_conv_map(model, x)


def last_conv_map(model: Any, x: torch.Tensor | None) -> tuple[str, nn.Module]:
    """The module whose 4-D output (a feature map) is produced last in a forward pass, pooling left out."""
    if x is None:
        side = model.preprocessing.crop_size or 32
        side = side if isinstance(side, int) else side[0]
        x = torch.zeros(1, 3, side, side, device=model.device)
    return _last_conv_map(model, x)


def _last_conv_map(model: Any, x: torch.Tensor) -> tuple[str, nn.Module]:
    finished: list[str] = []
    names = {m: n for n, m in model.module.named_modules() if n}
    handles = [m.register_forward_hook(lambda m, _i, out, n=n: finished.append(n)
                                       if isinstance(out, torch.Tensor) and out.dim() == 4
                                       and not isinstance(m, POOLING) else None)
               for m, n in names.items()]
    try:
        with torch.no_grad():
            model.logits(x[:1])
    finally:
        for h in handles:
            h.remove()
    if not finished:
        raise IGInputError("grad_cam found no module with a 4-D feature map in this model; name one with "
                           "--cam-layer")
    name = finished[-1]
    return name, dict(model.module.named_modules())[name]


def check_relus(model: Any) -> None:
    """Guided backprop guides ``nn.ReLU`` modules only; refuse a network without any, saying why."""
    if any(isinstance(m, nn.ReLU) for m in model.module.modules()):
        return
    raise IGInputError(f"guided_backprop guides nn.ReLU modules, and {model.name} has none: it applies ReLU "
                       f"with F.relu calls (torchvision's googlenet and inception_v3 do so inside "
                       f"BasicConv2d), which the method cannot guide; use a model with nn.ReLU modules "
                       f"(resnet, vgg, squeezenet, ...) or another method")


_REFERENCES: dict[tuple, torch.Tensor] = {}


def _load_references(model: Any, paths: tuple[str, ...], count: int) -> torch.Tensor:
    from .images import find_images, image_pixels

    files: list[Path] = []
    for p in paths:
        path = Path(p)
        files.extend(find_images(path) if path.is_dir() else [path])
    files = sorted(dict.fromkeys(files))[:count]
    if not files:
        raise IGInputError(f"no reference images found in {', '.join(paths)}")
    pixels = [image_pixels(model, str(f)) for f in files]
    if len({tuple(p.shape) for p in pixels}) != 1:
        raise IGInputError("the reference images have different sizes as the model sees them; give a model "
                           "with a fixed crop (torchvision models have one) or images of one size")
    return torch.stack(pixels)


def reference_images(model: Any, paths: tuple[str, ...], count: int) -> torch.Tensor:
    """``[K, 3, H, W]`` pixels of at most ``count`` reference images (files or folders, sorted)."""
    if count < 1:
        raise IGInputError(f"--reference-count must be at least 1, got {count}")
    key = (id(model), paths, count)
    if key not in _REFERENCES:
        if len(_REFERENCES) >= 4:
            _REFERENCES.pop(next(iter(_REFERENCES)))
        _REFERENCES[key] = _load_references(model, paths, count)
    return _REFERENCES[key]


def pixel_map(method: str, attributions: torch.Tensor) -> torch.Tensor:
    """A method's ``[C, H, W]`` map as one value per pixel: Σ_c |a| for the 3-channel methods (Eq. 1
    of the paper, as for IG), the map itself for Grad-CAM (≥ 0) and XRAI (region scores)."""
    a = attributions.detach().cpu().double()
    if a.shape[0] == 1:
        return a[0]
    return a.abs().sum(0)
