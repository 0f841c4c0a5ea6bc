"""EPICS pvAccess (pvapy): frames from an areaDetector NTNDArray channel, and reconstructions served as
NTNDArray channels that areaDetector viewers display live.

Source (``pva://CHANNEL``): the channel is monitored; every update is decoded by pvapy's
``AdImageUtility`` (its codecs included) into a (rows, cols) frame numbered by the array's ``uniqueId``;
the empty update a channel may send first is skipped; a jump in ``uniqueId`` counts the frames in between as
``missed`` (monitor queues overflow when a client falls behind). Decoded frames wait for the runner in a queue
of at most ``max_queued_bytes`` (:data:`MAX_QUEUED_BYTES`): when frames arrive faster than they are
reconstructed, those that do not fit are dropped, and so counted as missed, instead of memory growing without
bound. Ends when ``stop`` is set or after ``idle_timeout`` seconds without an update.

Publisher (``--publish pva://PREFIX``): a pvAccess server with the channels ``PREFIX:amplitude``,
``PREFIX:phase`` (radians) and ``PREFIX:fit`` (a 1x1 image), each updated with every written frame, its
``uniqueId`` the frame number.

Which network interfaces are used is EPICS's own configuration (``EPICS_PVA_ADDR_LIST``,
``EPICS_PVAS_INTF_ADDR_LIST``, ...); :func:`loopback_environment` gives the settings that keep everything on
this machine, and the publisher applies them unless the user set any EPICS pvAccess variable.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterator

import numpy as np

from cdinn.errors import CdinnError
from cdinn.host.frames import Frame, Rejected
from cdinn.model.conventions import GRID

SCHEME = "pva://"


def loopback_environment() -> dict[str, str]:
    """EPICS settings that keep pvAccess clients and servers on 127.0.0.1."""
    return {
        "EPICS_PVA_ADDR_LIST": "127.0.0.1",
        "EPICS_PVA_AUTO_ADDR_LIST": "NO",
        "EPICS_PVAS_INTF_ADDR_LIST": "127.0.0.1",
        "EPICS_PVAS_BEACON_ADDR_LIST": "127.0.0.1",
        "EPICS_PVAS_AUTO_BEACON_ADDR_LIST": "NO",
    }


EPICS_SETTINGS = (
    "EPICS_PVA_ADDR_LIST",
    "EPICS_PVA_AUTO_ADDR_LIST",
    "EPICS_PVAS_INTF_ADDR_LIST",
    "EPICS_PVAS_BEACON_ADDR_LIST",
    "EPICS_PVAS_AUTO_BEACON_ADDR_LIST",
    "EPICS_PVAS_SERVER_PORT",
    "EPICS_PVA_SERVER_PORT",
)


def use_loopback_unless_configured() -> bool:
    """Apply :func:`loopback_environment` to this process unless the user set any EPICS pvAccess variable
    (then their configuration stands); True if applied. Call before the first pvAccess context is made."""
    if any(name in os.environ for name in EPICS_SETTINGS):
        return False
    os.environ.update(loopback_environment())
    return True


def serving_interfaces() -> str:
    """Where a pvAccess server of this process listens, in words (for the user)."""
    return os.environ.get("EPICS_PVAS_INTF_ADDR_LIST", "every interface (EPICS's default)")


def _pvapy():
    try:
        import pvaccess
        from pvapy.utility.adImageUtility import AdImageUtility
    except ImportError:
        raise CdinnError("EPICS pvAccess needs the 'pvapy' package (pip install pvapy)") from None
    return pvaccess, AdImageUtility


MAX_QUEUED_BYTES = 512 * 2**20
"""Frames a pvAccess source holds for the runner at most (bytes): 4,000 256x256 16-bit frames, 64 of a 4M Eiger."""


class PvaSource:
    """Frames from an NTNDArray channel (see the module docstring)."""

    def __init__(
        self,
        channel: str,
        idle_timeout: float | None = None,
        stop: threading.Event | None = None,
        max_queued_bytes: int = MAX_QUEUED_BYTES,
    ):
        pva, self._ad = _pvapy()
        self.channel_name = channel.removeprefix(SCHEME)
        self.idle_timeout = idle_timeout
        self.stop = stop or threading.Event()
        self.missed = 0
        self.decode_seconds = 0.0  # the monitor's thread turning NTNDArrays into frames
        self.ended_normally = False  # an NTNDArray channel has no end of series
        self._queue: queue.Queue = queue.Queue()
        self._queued_bytes = 0  # of the frames in the queue; the monitor's thread adds, the reader takes
        self._room = threading.Lock()
        self._numbers: tuple[int, int] | None = None  # (first, newest) uniqueId the monitor decoded
        self.max_queued_bytes = max_queued_bytes
        try:
            self._channel = pva.Channel(self.channel_name, pva.PVA)
            self._channel.monitor(self._on_update, "field()")
        except Exception as exc:  # pvaccess raises its own exception types
            raise CdinnError(f"cannot monitor pvAccess channel {self.channel_name}: {exc}") from None

    def _on_update(self, pv) -> None:
        now, started = time.time(), time.perf_counter()
        try:
            number, image = self._ad.reshapeNtNdArray(pv)[:2]
        except Exception as exc:  # a malformed NTNDArray
            self._queue.put(Rejected(-1, f"cannot decode NTNDArray ({exc})", self.channel_name, now))
            return
        if image is not None and image.size:
            with self._room:
                n = int(number)
                self._numbers = (n, n) if self._numbers is None else (self._numbers[0], max(self._numbers[1], n))
                if self._queued_bytes + image.nbytes > self.max_queued_bytes:
                    self.decode_seconds += time.perf_counter() - started
                    return  # no room: dropped, and counted as missed by the gap in uniqueId it leaves
                self._queued_bytes += image.nbytes
            frame = Frame(int(number), np.array(image), self.channel_name, now, kind="intensity")
            self.decode_seconds += time.perf_counter() - started
            self._queue.put(frame)

    def __iter__(self) -> Iterator[Frame | Rejected]:
        last_number: int | None = None
        last = time.monotonic()
        try:
            while not self.stop.is_set():
                try:
                    item = self._queue.get(timeout=0.1)
                except queue.Empty:
                    if self.idle_timeout is not None and time.monotonic() - last > self.idle_timeout:
                        return
                    continue
                last = time.monotonic()
                if isinstance(item, Frame):
                    with self._room:
                        self._queued_bytes -= item.data.nbytes
                    if last_number is not None and item.number > last_number + 1:
                        self.missed += item.number - last_number - 1
                    last_number = item.number
                yield item
        finally:  # frames decoded after the last one delivered (still queued, or dropped) were not delivered
            with self._room:
                if self._numbers is not None:
                    delivered_up_to = self._numbers[0] - 1 if last_number is None else last_number
                    self.missed += max(self._numbers[1] - delivered_up_to, 0)

    def close(self) -> None:
        self.stop.set()
        try:
            self._channel.stopMonitor()
        except Exception:  # noqa: S110 - the channel may already be gone; closing must not fail
            pass


class PvaPublisher:
    """Serve reconstructions as NTNDArray channels ``PREFIX:amplitude``, ``PREFIX:phase``, and the frame's two
    trust figures ``PREFIX:fit`` and ``PREFIX:unconstrained`` (1x1; :mod:`cdinn.host.output` says what they
    are), on loopback unless the user configured EPICS (:func:`use_loopback_unless_configured`)."""

    FIELDS = ("amplitude", "phase", "fit", "unconstrained")

    def __init__(self, prefix: str, size: int = GRID):
        use_loopback_unless_configured()
        pva, self._ad = _pvapy()
        self.prefix = prefix.removeprefix(SCHEME)
        self.channels = {f: f"{self.prefix}:{f}" for f in self.FIELDS}
        try:
            self._server = pva.PvaServer()
        except RuntimeError as exc:  # pvAccess's C++ message carries its backtrace: keep the first line
            raise CdinnError(
                f"cannot serve pvAccess on {serving_interfaces()}: {str(exc).splitlines()[0]} (is that interface up?)"
            ) from None
        blank = {
            "amplitude": np.zeros((size, size), np.float32),
            "phase": np.zeros((size, size), np.float32),
            "fit": np.zeros((1, 1), np.float32),
            "unconstrained": np.zeros((1, 1), np.float32),
        }
        for field, name in self.channels.items():
            self._server.addRecord(name, self._ad.generateNtNdArray2D(0, blank[field]))

    def publish(
        self, numbers, amplitude: np.ndarray, phase: np.ndarray, fit: np.ndarray, unconstrained: np.ndarray
    ) -> None:
        """Update every channel with each frame of a batch, in order (``fit``, ``unconstrained``: (B,))."""
        for i, number in enumerate(numbers):
            images = {
                "amplitude": amplitude[i],
                "phase": phase[i],
                "fit": np.float32(fit[i]).reshape(1, 1),
                "unconstrained": np.float32(unconstrained[i]).reshape(1, 1),
            }
            for field, name in self.channels.items():
                self._server.update(
                    name, self._ad.generateNtNdArray2D(int(number), np.ascontiguousarray(images[field], np.float32))
                )

    def close(self) -> None:
        self._server.stop()
