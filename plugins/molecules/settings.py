"""The molecules domain's explain settings, declared once: ``igkit molecules explain`` options, the
keywords of ``igkit.explain("molecules", ...)``, the app's baseline and score choices, ``run.json``
and the README's option table all come from here (:mod:`igkit.settings`). Light on purpose:
``igkit --help`` reads it.
"""
from __future__ import annotations

from dataclasses import dataclass

from igkit.settings import setting

from .defaults import BASELINES, DEFAULT_BASELINE, DEFAULT_MAX_ATOMS, DEFAULT_SCORE, SCORES
from .model_kinds import MODEL_KINDS


@dataclass(frozen=True)
class MoleculeSettings:
    """What ``igkit molecules explain`` may be told besides its SMILES."""

    input: str | None = setting(None, source=True,
                                help=".smi, .sdf, .csv, .tsv or .parquet file of molecules (read after any "
                                     "SMILES arguments; Parquet is read a batch at a time)")
    smiles_col: str = setting("smiles", help="SMILES column of a CSV/TSV input")
    id_col: str | None = setting(None, help="column (CSV) or property (SDF) naming each molecule; without it: "
                                            "the SD title, the .smi name, else the SMILES")
    task: str | int | None = setting(None, "--task", "--target", type=(str, int),
                                     help="task name or index of a multitask model; none: the model's first "
                                          "task")
    model_kind: str = setting("auto", choices=MODEL_KINDS, only_if_set=True,
                              help="auto: a .pt/.pth/.ckpt file is a chemprop v2 checkpoint, module:factory "
                                   "with --weights a PyTorch Geometric model, anything else an igkit weave "
                                   "checkpoint")
    trust_checkpoint: bool = setting(False, only_if_set=True,
                                     help="unpickle a chemprop checkpoint in full even if it names code beyond "
                                          "chemprop's network classes (unpickling can run any code: only for "
                                          "files you trust)")
    weights: str | None = setting(None, only_if_set=True,
                                  help="state-dict file of a PyTorch Geometric model given as --model "
                                       "module:factory")
    baseline: str = setting(DEFAULT_BASELINE, choices=BASELINES, control="Baseline (where the path starts)",
                            help="where the path starts: zero features (the paper's), the carbon skeleton, or "
                                 "both averaged (README 'Multi-fragment rules' says why); chemprop and PyG "
                                 "models start at zero features")
    score: str = setting(DEFAULT_SCORE, choices=SCORES, control="Score explained",
                         help="explain the class probability or the logit")
    shared_scale: bool = setting(False, only_if_set=True,
                                 help="draw every molecule's atom picture on one colour scale, the run's "
                                      "largest |value| (redrawn when the run ends), so colours compare across "
                                      "molecules; without it each molecule has its own scale (every legend says "
                                      "which)")
    max_atoms: int = setting(DEFAULT_MAX_ATOMS, minimum=1,
                             help="skip molecules with more heavy atoms than this (checked before featurising; "
                                  "every drug-like molecule fits)")
