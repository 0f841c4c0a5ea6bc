"""The backend interface: (B, 32, 32) amplitudes in (any scale), (amplitude, phase in radians) out."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Backend(Protocol):
    name: str

    def infer(self, amplitudes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, 32, 32) float32 diffraction amplitudes -> (amplitude, phase) each (B, 32, 32) float32."""
        ...

    def provenance(self) -> dict:
        """What produced the numbers: model card sha256s, files, library versions."""
        ...
