"""The quality tools on tiny budgets: ablation, refinement curve and noise sweep write their tables."""

import json

import pytest

from cdinn.cli import main


def test_refine_curve_measures_both_methods(tmp_path, capsys):
    args = ["refine-curve", "--net", "edge", "--test-n", "8", "--iterations", "0,5,20", "--out", str(tmp_path)]
    assert main(args) == 0
    report = json.loads((tmp_path / "refine_curve.json").read_text())
    assert set(report["nn"]) == {"0", "5", "20"} and set(report["erhio"]) == {"5", "20"}
    assert report["nn"]["20"]["chi2"] < report["nn"]["0"]["chi2"]
    assert (tmp_path / "refine_curve.png").stat().st_size > 0
    assert "| ER/HIO random start | 20 |" in capsys.readouterr().out


def test_noise_sweep_compares_with_noiseless(tmp_path):
    assert main(["noise-sweep", "--net", "edge", "--test-n", "8", "--photons", "1e3,1e6", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "noise_sweep.json").read_text())
    assert set(report["levels"]) == {"noiseless", "1e+03", "1e+06"}
    assert report["levels"]["noiseless"]["worst_change_pct"] == 0
    assert report["levels"]["1e+03"]["chi2"] > report["levels"]["1e+06"]["chi2"]


@pytest.mark.slow
def test_ablation_trains_and_scores_variants(tmp_path):
    args = ["ablation", "--examples", "512", "--val", "128", "--epochs", "1", "--test-n", "16", "--out", str(tmp_path)]
    assert main([*args, "--variants", "paper"]) == 0
    assert main([*args, "--variants", "twin,two-head"]) == 0  # adds to the earlier run's table
    table = (tmp_path / "table.md").read_text()
    assert "| paper |" in table and "| twin |" in table and "| two-head |" in table
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["base"]["loss"], report["base"]["batch"], report["base"]["fresh"]) == ("bce", 256, False)
    assert len(report["commands"]) == 2 and table.count("`cdinn ablation") == 2
