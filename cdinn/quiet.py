"""Keep TensorFlow's native start-up messages off the terminal.

TensorFlow's C++ runtime writes to file descriptor 2 while it loads and when it first looks for devices
("Could not find cuda drivers", "failed call to cuInit" on a machine without a GPU): lines a user cannot act
on, printed before any Python logging setting applies. :func:`install` adds an import hook that loads
``tensorflow`` (whenever a command first imports it) with descriptor 2 pointed at /dev/null and lists the
devices inside that window; Python exceptions are unaffected, so a failed import still says why. TensorFlow's
Python logger then reports errors only (retracing notices and dtype-cast notes are not a user's to act on),
and two notices Keras prints when QKeras models are saved in the HDF5 format they need are filtered.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import re
import sys
import warnings
from contextlib import contextmanager


@contextmanager
def native_stderr_silenced():
    """Point file descriptor 2 at /dev/null for the duration (Python's sys.stderr object is untouched)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with native_stderr_silenced():
            self.loader.exec_module(module)
            module.config.list_physical_devices()  # device discovery (cuInit) happens here, quietly
        module.get_logger().setLevel("ERROR")


class _QuietFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


NOTICES = (
    "The `keras.constraints.serialize()` API should only be used",  # QKeras quantizers as constraints
    "You are saving your model as an HDF5 file",
)  # QKeras models load only from HDF5


def install() -> None:
    """Load TensorFlow quietly from now on in this process (idempotent)."""
    for notice in NOTICES:
        warnings.filterwarnings("ignore", message=re.escape(notice), category=UserWarning)
    if not any(isinstance(f, _QuietFinder) for f in sys.meta_path) and "tensorflow" not in sys.modules:
        sys.meta_path.insert(0, _QuietFinder())
