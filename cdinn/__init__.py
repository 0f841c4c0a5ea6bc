"""cdinn: real-time coherent diffraction imaging (CDI) inversion with neural networks.

The stages live in sub-packages: ``cdinn.model`` (simulation, networks, training, phase retrieval,
metrics), ``cdinn.quantize`` (pruning and quantization-aware fine-tuning), ``cdinn.firmware`` (hls4ml
conversion and emulation) and ``cdinn.host`` (the readout-node runner and the CPU paths).

Importing the package sets ``TF_USE_LEGACY_KERAS=1`` so that ``tf.keras`` is Keras 2 (``tf_keras``),
which tensorflow-model-optimization, QKeras and hls4ml's Keras-2 parser need. It must happen before
TensorFlow is imported anywhere, so TensorFlow itself is imported lazily.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

__all__ = ["__version__", "reconstruct"]


def __getattr__(name: str):
    if name == "reconstruct":
        from cdinn.api import reconstruct

        return reconstruct
    raise AttributeError(f"module 'cdinn' has no attribute {name!r}")
