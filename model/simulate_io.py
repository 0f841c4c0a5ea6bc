"""Writing simulated data sets to HDF5, chunk by chunk, into a file that appears only when complete."""

from __future__ import annotations

import json
import os
from importlib import metadata

from cdinn.io import atomic_hdf5
from cdinn.model.simulate import SimulationConfig, simulate_chunks
from cdinn.model.validation import KIND_ATTR


def write_simulation(
    path: str | os.PathLike, n: int, seed: int, config: SimulationConfig, oversampled: bool = False, chunk: int = 10_000
) -> None:
    """Simulate ``n`` patterns and write ``diffraction``, ``amplitude``, ``phase`` (and, if asked,
    ``diffraction_oversampled``) as float32 datasets, with the generator parameters, seed and package
    version as root attributes. Units: amplitudes (not intensities), phase in radians. Through a forward
    model (``config.experiment``) the patterns are the detector's (square roots of counts) and ``mask`` (and
    ``mask_oversampled``) uint8 datasets flag the pixels without a measurement (1 = none, per frame)."""
    size = config.size
    shapes = {"diffraction": size, "amplitude": size, "phase": size}
    if oversampled:
        shapes["diffraction_oversampled"] = 2 * size
    masked = config.experiment is not None
    if masked:
        shapes.update({"mask": size, **({"mask_oversampled": 2 * size} if oversampled else {})})
    with atomic_hdf5(path) as fh:
        datasets = {
            name: fh.create_dataset(
                name,
                (n, s, s),
                dtype="uint8" if name.startswith("mask") else "float32",
                chunks=(min(n, 256), s, s),
                compression="gzip",
                compression_opts=1,
            )
            for name, s in shapes.items()
        }
        start = 0
        for batch in simulate_chunks(n, seed, config, chunk, oversampled, progress=True):
            stop = start + len(batch.diffraction)
            for name, dset in datasets.items():
                values = getattr(batch, name)
                dset[start:stop] = False if values is None else values
            start = stop
        fh.attrs["generator"] = json.dumps(config.as_dict())
        fh.attrs["seed"] = seed
        fh.attrs["chunk"] = chunk
        fh.attrs["cdinn_version"] = metadata.version("cdinn")
        fh["phase"].attrs["units"] = "radians"
        fh["diffraction"].attrs["units"] = "amplitude |FT|, zero frequency at [N/2, N/2]"
        for name in ("diffraction", "diffraction_oversampled"):  # what the frames hold (validation.frame_kind)
            if name in fh:
                fh[name].attrs[KIND_ATTR] = "amplitude"
