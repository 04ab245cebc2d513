"""The fixed choices of the vision settings (models, scores, baselines, overlay looks).

Why a module of their own: the domain's options and the modules that check a value (models,
attribution, baselines, render) all need them, and the domain imports those modules; kept here,
below all of them and free of heavy imports, every import goes one way and ``igkit --help``
stays light.
"""
from __future__ import annotations

DEFAULT_MODEL = "googlenet"
#: the shipped trained digits classifier (``--model digits``, plugins/vision/digits.py)
DIGITS = "digits"
#: ``--weights random``: the architecture untrained (seeded), marked as such in every output
RANDOM = "random"
SCORES = ("probability", "logit")
BASELINES = ("black", "blur", "noise")
POLARITIES = ("both", "positive", "negative")
UNDERLAYS = ("grey", "colour", "black")
