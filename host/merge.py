"""``cdinn merge``: combine the outputs of several runners (one ZeroMQ source balanced between them) into
one file in frame-number order, and report any frame number missing from the sequence."""

from __future__ import annotations

import json
import os
from typing import Any

import h5py
import numpy as np

from cdinn.errors import CdinnError
from cdinn.host.writer import PER_FRAME, RunWriter
from cdinn.io import atomic_hdf5, check_output


def _values(dset: h5py.Dataset) -> np.ndarray:
    """A dataset's values; strings decoded to ``str``."""
    return dset.asstr()[()] if h5py.check_string_dtype(dset.dtype) else dset[()]


def _store(group: h5py.Group, name: str, values: np.ndarray) -> None:
    dtype = h5py.string_dtype() if values.dtype == object or values.dtype.kind == "U" else None
    group.create_dataset(name, data=values.astype(object) if dtype else values, dtype=dtype)


def _read(path: str) -> dict[str, Any]:
    try:
        with h5py.File(path, "r", libver="latest", swmr=True) as fh:
            data: dict[str, Any] = {name: _values(fh[name]) for name in PER_FRAME}
            data["rejected"] = {k: _values(fh["rejected"][k]) for k in ("frame_number", "arrival_time", "reason")}
            data["provenance"] = fh.attrs.get("provenance", "{}")
            data["complete"] = bool(fh.attrs.get("complete", False))
            return data
    except (OSError, KeyError) as exc:
        raise CdinnError(f"{path}: not a cdinn run output ({str(exc).splitlines()[0]})") from None


def missing_numbers(numbers: np.ndarray) -> list[int]:
    """Frame numbers absent between the smallest and the largest seen."""
    if len(numbers) == 0:
        return []
    present = np.zeros(int(numbers.max() - numbers.min()) + 1, bool)
    present[numbers - numbers.min()] = True
    return (np.nonzero(~present)[0] + numbers.min()).tolist()


def merge(inputs: list[str], output: str | os.PathLike) -> dict:
    """Merge run outputs; return {'frames', 'rejected', 'missing', 'duplicates', 'incomplete_inputs'}."""
    if not inputs:
        raise CdinnError("nothing to merge: give at least one run output")
    check_output(output, inputs)
    parts = [_read(p) for p in inputs]
    merged = {name: np.concatenate([p[name] for p in parts]) for name in PER_FRAME}
    rejected = {k: np.concatenate([p["rejected"][k] for p in parts])
                for k in ("frame_number", "arrival_time", "reason")}
    order = np.argsort(merged["frame_number"], kind="stable")
    merged = {k: v[order] for k, v in merged.items()}
    numbers = np.concatenate([merged["frame_number"], rejected["frame_number"][rejected["frame_number"] >= 0]])
    unique, counts = np.unique(numbers, return_counts=True)
    report = {"frames": int(len(order)), "rejected": int(len(rejected["reason"])),
              "missing": missing_numbers(unique), "duplicates": unique[counts > 1].tolist(),
              "incomplete_inputs": [p for p, d in zip(inputs, parts, strict=True) if not d["complete"]]}
    with atomic_hdf5(output) as fh:
        for name, values in merged.items():
            _store(fh, name, values)
        group = fh.create_group("rejected")
        for name, values in rejected.items():
            _store(group, name, values)
        RunWriter.nexus(fh)
        fh.attrs["merged_from"] = json.dumps(inputs)
        fh.attrs["provenance"] = parts[0]["provenance"]
        fh.attrs["merge_report"] = json.dumps(report)
    return report
