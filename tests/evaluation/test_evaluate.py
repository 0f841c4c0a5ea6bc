import json

import numpy as np
import pytest

from cdinn.cli import main
from cdinn.evaluation.evaluate import ERHIO, EvaluateConfig, evaluate
from cdinn.model.phase_retrieval import PhaseRetrievalConfig


@pytest.mark.slow
def test_evaluation_compares_networks_and_er_hio_side_by_side(tmp_path):
    cfg = EvaluateConfig(
        n=40,
        seed=2,
        nets=("edge",),
        phase_retrieval=PhaseRetrievalConfig(iterations=120),
        refine="auto",
        family_n=16,
        effects=("3x3 beamstop", "rectangular beamstop 3x7"),
        effect_n=16,
        views=2,
    )
    report = evaluate(cfg, tmp_path, command="test")
    assert set(report["methods"]) == {"edge", "edge, 2 views", "edge, 2 views + auto ER/HIO", ERHIO}
    assert 0 < report["methods"]["edge, 2 views + auto ER/HIO"]["refined_fraction"] <= 1
    two, one = (report["methods"][k]["chi2_best_scale_median"] for k in ("edge, 2 views", "edge"))
    assert two <= one  # the fit chooses the view; this is that fit's median
    # every pattern is in exactly one gradient bin and one size bin
    counts = {name: r["count"] for name, r in report["regimes"].items()}
    assert sum(c for name, c in counts.items() if "rad/px" in name and "strong" not in name) == 40
    assert sum(c for name, c in counts.items() if name.endswith(" px") and "small" not in name) == 40
    assert set(report["held_out_families"]) == {"zernike", "defect", "noise"}
    assert -1 <= report["fit_ranking"]["spearman_chi2"] <= 1
    for method in report["methods"].values():
        assert 0 <= method["summary"]["support_iou"]["median"] <= 1 and "latency" not in method
    for name in (
        "report.json",
        "table.md",
        "per_pattern_metrics.npz",
        "fig3_examples.png",
        "fig4_chi2_histogram.png",
        "fig4_best.png",
        "fig5_worst.png",
        "fit_vs_chi2.png",
    ):
        assert (tmp_path / name).stat().st_size > 0
    assert json.loads((tmp_path / "report.json").read_text())["test_set"]["n"] == 40
    per = np.load(tmp_path / "per_pattern_metrics.npz")
    assert per["edge_chi2"].shape == per["fit"].shape == (40,)
    text = (tmp_path / "table.md").read_text()
    assert "By regime" in text and "| defect | edge |" in text and "Spearman" in text
    effects = report["effects"]
    assert list(effects) == ["ideal", "3x3 beamstop", "rectangular beamstop 3x7"]
    assert effects["rectangular beamstop 3x7"]["regime"] == "held out"
    assert effects["3x3 beamstop"]["masked_fraction"] == pytest.approx(9 / 1024)
    assert set(effects["3x3 beamstop"]["methods"]) == set(report["methods"])
    assert "| 3x3 beamstop | moderate | edge, 2 views |" in text
    hidden = {label: entry["unconstrained"] for label, entry in effects.items()}  # every method's median figure
    assert set(hidden["ideal"].values()) == {0.0} and min(hidden["3x3 beamstop"].values()) > 0.1
    assert min(hidden["rectangular beamstop 3x7"].values()) > min(hidden["3x3 beamstop"].values())
    assert "unconstrained (median)" in text


def test_evaluate_cli_prints_the_table(tmp_path, capsys):
    code = main(
        [
            "evaluate",
            *("--test-n", "8", "--nets", "edge", "--iterations", "30", "--family-n", "4", "--effect-n", "4"),
            *("--out", str(tmp_path)),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "| edge |" in out and "| ER/HIO |" in out
    assert (tmp_path / "table.md").read_text().startswith("Made by `cdinn evaluate")
