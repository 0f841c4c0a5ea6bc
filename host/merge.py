"""``cdinn merge``: combine the outputs of several runners (one ZeroMQ source balanced between them) into
one file in frame-number order, through the output schema (:mod:`cdinn.host.output`: every per-frame field,
the NeXus structure and the provenance), and report any frame number missing from the sequence."""

from __future__ import annotations

import json
import os

import numpy as np

from cdinn.errors import CdinnError
from cdinn.host import output
from cdinn.io import atomic_hdf5, check_output


def missing_numbers(numbers: np.ndarray) -> list[int]:
    """Frame numbers absent between the smallest and the largest seen."""
    if len(numbers) == 0:
        return []
    present = np.zeros(int(numbers.max() - numbers.min()) + 1, bool)
    present[numbers - numbers.min()] = True
    return (np.nonzero(~present)[0] + numbers.min()).tolist()


def merge(inputs: list[str], output_path: str | os.PathLike) -> dict:
    """Merge run outputs; return {'frames', 'rejected', 'missing', 'duplicates', 'incomplete_inputs'}. The
    merged counts are the inputs' sums; it is complete when every input is; its provenance is the first
    input's (CdinnError if the inputs came from different networks, backends or preprocessing)."""
    if not inputs:
        raise CdinnError("nothing to merge: give at least one run output")
    check_output(output_path, inputs)
    parts = [output.read(p) for p in inputs]
    _check_same_run(inputs, parts)
    merged = {name: np.concatenate([p[name] for p in parts]) for name in output.PER_FRAME}
    order = np.argsort(merged["frame_number"], kind="stable")
    merged = {k: v[order] for k, v in merged.items()}
    rejected = [
        (int(n), str(r), float(t))
        for p in parts
        for n, r, t in zip(*(p["rejected"][k] for k in ("frame_number", "reason", "arrival_time")), strict=True)
    ]
    known = np.array([n for n, _, _ in rejected if n >= 0], np.int64)
    unique, counts = np.unique(np.concatenate([merged["frame_number"], known]), return_counts=True)
    report = {
        "frames": int(len(order)),
        "rejected": len(rejected),
        "missing": missing_numbers(unique),
        "duplicates": unique[counts > 1].tolist(),
        "incomplete_inputs": [p for p, d in zip(inputs, parts, strict=True) if not d["attrs"]["complete"]],
    }
    first = parts[0]["attrs"]
    with atomic_hdf5(output_path) as fh:
        output.create(fh, compression="gzip")
        output.describe(fh, first["provenance"], first["preprocess"])
        output.append(fh, merged)
        output.reject(fh, rejected)
        total = {k: sum(int(p["attrs"]["counts"].get(k, 0)) for p in parts) for k in output.COUNTS}
        output.finish(
            fh,
            total,
            complete=not report["incomplete_inputs"],
            timing={"merged": [p["attrs"]["timing"] for p in parts]},
        )
        fh.attrs["merged_from"] = json.dumps(inputs)
        fh.attrs["merge_report"] = json.dumps(report)
    return report


def _check_same_run(inputs: list[str], parts: list[dict]) -> None:
    """CdinnError unless every input was made by the same backend, networks, inversion (refinement and views)
    and preprocessing."""

    def key(part: dict) -> tuple:
        prov = part["attrs"].get("provenance", {})
        return (
            prov.get("backend"),
            prov.get("refine"),
            prov.get("views"),
            tuple(sorted((k, v) for k, v in prov.items() if k.endswith("_sha256"))),
            json.dumps(part["attrs"].get("preprocess"), sort_keys=True),
            part["amplitude"].shape[1:],
        )

    for path, part in zip(inputs[1:], parts[1:], strict=True):
        if key(part) != key(parts[0]):
            raise CdinnError(
                f"{path} was not made like {inputs[0]} (another backend, network set, refinement, views, "
                "preprocessing or grid); merge only the outputs of one run's runners"
            )
