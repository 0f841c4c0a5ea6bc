"""The backend interface: (B, N, N) diffraction amplitudes in (any scale), (amplitude, phase in radians) out.

Subclasses provide:

* ``name`` (class attribute): the registry name (:mod:`cdinn.host.backends`);
* ``from_options(net, options)`` (classmethod): build the backend for a network set name (``"default"``, a
  shipped name or a folder) and an instance of its options dataclass (registered with it,
  :mod:`cdinn.host.backends.options`: every option's help and default in one place, from which the command
  line is built), resolving artefacts (firmware projects, quantized sets) from the set name where the
  options leave them out;
* ``maps(x)``: normalised inputs (B, N, N, C) float32 in [0, 1] -> the two sigmoid maps (shape, phase),
  each (B, N, N) in [0, 1];
* ``channels``: the networks' input channels C (1: amplitudes; 2: amplitudes and the mask of unmeasured
  pixels), read from the loaded artefact (class default 1);
* ``tolerance`` (class attribute): how far its amplitudes may lie from the float networks' (the ``keras``
  backend) on the same inputs, as a mean absolute difference (amplitudes in [0, 1]): 0 for the float networks
  themselves, rounding for a float runtime, the quantization for the firmware backends;
* ``provenance()``: what produced the numbers (sha256s of the networks, files, settings).

:meth:`Backend.infer` is final: normalise (masked pixels to 0, the mask as the second channel where the
networks take it), the backend's maps, then the maps to an object, the same for all.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Generic, TypeVar, final

import numpy as np

from cdinn.model.conventions import network_input
from cdinn.model.inference import outputs_to_object

OptionsT = TypeVar("OptionsT")
"""A backend's options dataclass."""


class Backend(ABC, Generic[OptionsT]):
    name: ClassVar[str]
    tolerance: ClassVar[float]
    channels: int = 1

    @classmethod
    @abstractmethod
    def from_options(cls, net: str, options: OptionsT) -> Backend:
        """Build the backend for network set ``net`` with its ``options`` (an instance of ``Options``)."""

    @abstractmethod
    def maps(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, N, N, C) network inputs -> (shape map, phase map), each (B, N, N) in [0, 1]."""

    @abstractmethod
    def provenance(self) -> dict:
        """What produced the numbers: model sha256s, files, settings."""

    @final
    def infer(self, amplitudes: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(B, N, N) diffraction amplitudes (and their (B, N, N) bool mask, True = no measurement) ->
        (amplitude in [0, 1], phase in radians), each (B, N, N) float32."""
        shape_map, phase_map = self.maps(network_input(amplitudes, mask, self.channels))
        return outputs_to_object(shape_map, phase_map)
