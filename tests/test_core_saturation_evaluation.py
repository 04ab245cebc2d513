"""Saturation curves and the domain-neutral evaluation helpers."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import igkit
from igkit.attribution.saturation import layer_saturation, score_curve

from models import TinyCNN


def test_score_curve_runs_from_the_baseline_score_to_the_input_score():
    model = TinyCNN().eval()
    x = torch.rand(3, 3, 8, 8)
    curve = score_curve(model, x, target=[0, 1, 2], alphas=11)
    with torch.no_grad():
        logits_x, logits_0 = model(x), model(torch.zeros_like(x))
    torch.testing.assert_close(curve["score"][:, -1], logits_x[[0, 1, 2], [0, 1, 2]])
    torch.testing.assert_close(curve["score"][:, 0], logits_0[[0, 1, 2], [0, 1, 2]])
    torch.testing.assert_close(curve["probability"][:, -1], logits_x.softmax(1)[[0, 1, 2], [0, 1, 2]])
    assert curve["alpha"].shape == (11,) and curve["score"].shape == (3, 11)


def test_layer_saturation_distances_vanish_at_the_input_and_grow_toward_zero():
    lin = nn.Linear(4, 6, bias=False)
    model = nn.Sequential(lin, nn.ReLU(), nn.Linear(6, 1)).eval()
    x = torch.rand(2, 4) + 0.5
    report = layer_saturation(model, x, {"lin": lin}, alphas=[0.0, 0.25, 0.5, 1.0])
    l2 = report["lin"]["l2"]
    # a bias-free linear layer at α·x is α·(W x): the L2 distance is (1 − α)‖W x‖, cosine 0 for α > 0
    with torch.no_grad():
        norm = lin(x).norm(dim=1)
    torch.testing.assert_close(l2, torch.outer(norm, torch.tensor([1.0, 0.75, 0.5, 0.0])))
    torch.testing.assert_close(report["lin"]["cosine"][:, 1:], torch.zeros(2, 3), atol=1e-6, rtol=0)


def test_layer_saturation_rejects_a_layer_that_never_runs():
    model = nn.Sequential(nn.Linear(4, 1)).eval()
    with pytest.raises(igkit.IGInputError, match="never ran"):
        layer_saturation(model, torch.rand(1, 4), {"ghost": nn.Linear(2, 2)})


def test_aopc_of_a_linear_model_with_the_true_ordering_beats_a_reversed_one():
    w = torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0, 0.0])
    x = torch.ones(6)

    def ablate(v, idx):
        v = v.clone()
        v[idx] = 0
        return v

    best = igkit.ablation_curve(lambda b: b @ w, x, torch.arange(6), ablate, per_step=1, n_steps=5)
    worst = igkit.ablation_curve(lambda b: b @ w, x, torch.arange(6).flip(0), ablate, per_step=1,
                                 n_steps=5)
    torch.testing.assert_close(best, torch.tensor([15.0, 10, 6, 3, 1, 0]))
    assert igkit.aopc(best) == pytest.approx((0 + 5 + 9 + 12 + 14 + 15) / 6)
    assert igkit.aopc(best) > igkit.aopc(worst)


def test_attribution_auc_known_values_and_ties():
    assert igkit.attribution_auc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) == 1.0
    assert igkit.attribution_auc([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0]) == 0.0
    assert igkit.attribution_auc([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0]) == 0.5
    assert igkit.attribution_auc([3, 1, 2, 2], [1, 0, 1, 0]) == pytest.approx(0.875)
    assert math.isnan(igkit.attribution_auc([1, 2], [1, 1]))


def test_kendall_tau_against_hand_computed_values():
    assert igkit.kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert igkit.kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # one discordant pair out of six: (5 − 1) / 6
    assert igkit.kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    assert math.isnan(igkit.kendall_tau([1, 1, 1], [1, 2, 3]))


def test_fraction_inside_a_mask():
    importance = np.array([[1.0, 3.0], [0.0, 4.0]])
    mask = np.array([[True, False], [False, True]])
    assert igkit.fraction_inside(importance, mask) == pytest.approx(5 / 8)
    with pytest.raises(igkit.IGInputError, match="non-negative"):
        igkit.fraction_inside(-importance, mask)


def test_the_saturation_sheet_writes_picture_long_table_and_document(tmp_path):
    from igkit.outputs.saturation_sheet import Curve, Panel, write_saturation

    alpha = [0.0, 0.5, 1.0]
    curves = [Curve(f"item {k}", {"score": [k, k + 1, k + 2], "grad": [1, 0, -1]}, {"item": f"=x{k}"})
              for k in range(3)]
    paths = write_saturation(tmp_path, alpha, curves, [Panel("score", "score"), Panel("grad", "gradient")],
                             xlabel="alpha", legend_title="item", document={"n": 3})
    assert [p.name for p in paths] == ["saturation.png", "saturation.csv", "saturation.json"]
    rows = paths[1].read_text().splitlines()
    assert rows[0] == "item,alpha,score,grad" and len(rows) == 1 + 3 * 3
    assert rows[4] == "'=x1,0,1,1"                  # a row per curve and α; formulas neutralised
    assert paths[2].read_text().strip() == '{\n  "n": 3\n}'
    assert paths[0].stat().st_size > 5000
