"""Decoding only the crop window's rows against decoding whole frames: the file source reading EIGER 1M-sized
(1065 x 1030) uint32 frames stored one per bitshuffle-LZ4 chunk, told the 128 rows a 4x4-binned window uses or
nothing, alternating in one run. Frames per second of each (best of the rounds) and their ratio are recorded
(``extra_info``, ``ratios``); the rows decoded are asserted equal to the whole frames' rows.
``experiments/band_decode.py`` measures the same through `cdinn run`.
"""

from pathlib import Path

import numpy as np

from cdinn.host.sources import FileSource
from conftest import bslz4_frames  # benchmarks/conftest.py, beside this file

ROWS, COLS = 1065, 1030  # DECTRIS EIGER 1M
WINDOW = (236, 364)  # 128 rows (binning 4 for the 32-pixel grid) around row 300, the beam centre


def _file(path: Path, n: int) -> Path:
    rng = np.random.default_rng(1)
    frames = rng.poisson(0.05, (8, ROWS, COLS)).astype(np.uint32)  # background counts everywhere
    frames[:, WINDOW[0] : WINDOW[1], 336:464] += rng.poisson(200.0, (8, 128, 128)).astype(np.uint32)
    return bslz4_frames(path, frames, n)


def test_decoding_the_window_rows_against_whole_frames(benchmark, tmp_path):
    n = 8 if benchmark.disabled else 200
    path = _file(tmp_path / "eiger1m.h5", n)
    rates: dict[str, list[float]] = {"whole frames": [], "window rows": []}
    decoded: dict[str, list] = {}

    def read(arm: str) -> None:
        source = FileSource(str(path))
        source.wanted_rows = None if arm == "whole frames" else (lambda shape, centre: WINDOW)
        items = list(source)
        rates[arm].append(len(items) / source.decode_seconds)
        decoded[arm] = items

    def alternate() -> None:
        for _ in range(1 if benchmark.disabled else 3):
            for arm in rates:
                read(arm)

    benchmark.extra_info.update(patterns_per_call=2 * n, backend="file source, EIGER 1M size uint32", batch=1)
    benchmark.pedantic(alternate, rounds=1)
    whole, rows = decoded["whole frames"], decoded["window rows"]
    assert len(whole) == len(rows) == n and all(item.band is not None for item in rows)
    assert all(np.array_equal(r.data, w.data[WINDOW[0] : WINDOW[1]]) for r, w in zip(rows, whole, strict=True))
    best = {arm: max(r) for arm, r in rates.items()}
    benchmark.extra_info.update(decoded_frames_per_s=rates)
    benchmark.extra_info["ratios"] = {
        "window rows / whole frames, decoded frames/s (EIGER 1M size, 128 rows)": best["window rows"]
        / best["whole frames"]
    }
