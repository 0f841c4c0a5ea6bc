"""The benchmark report (``benchmarks/report.py``) on a saved run: overhead ratios pair rows measured at the same
batch under the labels :data:`report.OVERHEADS` names (the 8-view API row is not the 1-view one), and the ratios a
benchmark measured side by side itself are listed as it recorded them."""

from report import markdown  # benchmarks/report.py, beside this file


def _bench(name: str, median: float, **info) -> dict:
    return {"name": name, "stats": {"median": median}, "extra_info": info}


def test_the_report_pairs_rows_by_label_and_lists_measured_ratios(tmp_path):
    run = {
        "benchmarks": [
            _bench("api[1-1]", 0.5e-3, backend="cdinn.reconstruct", batch=1),
            _bench("api[1-8]", 8.0e-3, backend="cdinn.reconstruct, 8 views", batch=1),
            _bench("bare[1]", 0.4e-3, backend="bare session.run", batch=1),
            _bench("plain", 6.0, backend="reconstruct (none)", batch="file"),
            _bench("local1", 6.3, backend="reconstruct (local:1)", batch="file"),
            _bench("file", 5.0, backend="runner (file)", batch="adaptive", ratios={"runner (file) / networks": 0.65}),
        ]
    }
    text = markdown(run, tmp_path / "0001_run.json")
    assert "| cdinn.reconstruct / bare session.run | 1 | 1.25 |" in text
    assert "| cdinn reconstruct --cluster local:1 / plain | file | 1.05 |" in text
    assert "| runner (file) / networks | file | 0.65 |" in text
