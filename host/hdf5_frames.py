"""Frames from HDF5/NeXus files as detectors write them, read block by block (memory bounded by the block,
not the file).

* The compression filters detectors use (bitshuffle/LZ4, LZ4, Blosc, Zstd) come from ``hdf5plugin``.
* An NXmx master (Eiger FileWriter) named alone means all its ``/entry/data/data_NNNNNN`` datasets in order
  (external links to data files) or the NeXus default signal (followed through links, e.g. a VDS); each
  data file's ``image_nr_low`` attribute gives the detector's frame number of its first frame (1-based on
  an Eiger), else frames are numbered on from the previous block.
* Detector metadata from the master, when present: ``pixel_mask`` (``detectorSpecific``; nonzero = bad) and
  the beam centre ``beam_center_x`` (column) / ``beam_center_y`` (row), in pixels: its ``units`` attribute
  decides (``pixel`` as DECTRIS writes it; a length, as NeXus allows, is divided by ``x_pixel_size`` /
  ``y_pixel_size``, themselves in metres unless their own ``units`` say otherwise); without ``units`` the
  numbers are taken as pixels (an areaDetector NDAttribute template may record millimetres there without
  saying so: ``--centre-pixel`` overrides the file).
* A data file missing behind a link, or unreadable, yields one :class:`~cdinn.host.frames.Rejected` naming
  it; the frames before it are kept, the data files after it are still read, and the source reports that it
  did not end normally.
* Frame stacks stored one frame per chunk with bitshuffle-LZ4 or LZ4 (Eiger data files, areaDetector) are
  decoded chunk by chunk by cdinn's own size-checking decompressors (:func:`direct_decoder`): HDF5's filter
  plugins trust the sizes a chunk claims, and a corrupt chunk crashed the process (found by fuzzing).
* An Eiger data file given alone (``*_data_NNNNNN.h5``: ``/entry/data/data`` with ``image_nr_low``) is read
  without naming its dataset.
* Multi-channel data (DECTRIS FileWriter's ``"hdf5 nexus v2024.2 nxmx"`` format: ``/entry/data/data`` of shape
  (N, channels, rows, cols), a virtual dataset over the data files, one channel per enabled threshold or
  difference mode): the channel named by ``--channel`` (the NXdata group's ``channel`` axis names them; without
  names they are ``0``, ``1``, ...), else the one its ``default_slice`` names, else the first; that channel's
  own ``pixel_mask`` (``detector/<name>_channel/pixel_mask``) is its mask.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401  (registers the compression filters with HDF5)
import numpy as np
from h5py._objects import phil  # h5py's global lock: one thread in HDF5 at a time

from cdinn.errors import CdinnError
from cdinn.host.decoding import frame_number
from cdinn.host.dectris import bslz4_decompress, lz4_hdf5_decompress
from cdinn.host.frames import Frame, Rejected, WantedRows, band_of
from cdinn.io import attr_text, nexus_default_dataset
from cdinn.model.validation import KIND_ATTR

BLOCK_BYTES = 32 * 2**20  # at most this much frame data is held per read
_DATA_LINK = re.compile(r"data_\d+$")
DETECTOR = "/entry/instrument/detector"
EIGER_DATA = "/entry/data/data"
BITSHUFFLE_FILTER, BITSHUFFLE_LZ4, LZ4_FILTER = 32008, 2, 32004  # HDF5 filter ids; bitshuffle's LZ4 option


@dataclass(frozen=True)
class DetectorInfo:
    """What an NXmx master says about its detector: ``pixel_mask`` (rows, cols) bool (True = bad) or None,
    ``beam_centre`` (row, col) pixels or None."""

    pixel_mask: np.ndarray | None = None
    beam_centre: tuple[float, float] | None = None


def detector_info(fh: h5py.File, channel: str | None = None) -> DetectorInfo:
    """The pixel mask (``channel``'s own, where the file records one per channel) and beam centre an NXmx file
    records (absent ones are None)."""
    mask = None
    own = [f"{DETECTOR}/{channel}_channel/pixel_mask"] if channel is not None else []
    for path in (*own, f"{DETECTOR}/detectorSpecific/pixel_mask", f"{DETECTOR}/pixel_mask"):
        if path in fh:
            mask = np.asarray(fh[path][()]) != 0
            break
    centre = None
    if f"{DETECTOR}/beam_center_x" in fh and f"{DETECTOR}/beam_center_y" in fh:
        centre = (_pixels(fh, "beam_center_y", "y_pixel_size"), _pixels(fh, "beam_center_x", "x_pixel_size"))
    return DetectorInfo(mask, centre)


LENGTH_UNITS = {"m": 1.0, "mm": 1e-3, "um": 1e-6, "micron": 1e-6, "µm": 1e-6, "nm": 1e-9}
"""NeXus length units a beam centre or a pixel size may carry, in metres."""
PIXEL_UNITS = ("pixel", "pixels", "px")


def _number(fh: h5py.File, name: str) -> float:
    """A detector metadata number: a scalar, or (as EPICS areaDetector writes NDAttributes) an array of one
    value per frame, of which the first is taken; CdinnError when it is not a finite number."""
    try:
        values = np.asarray(fh[f"{DETECTOR}/{name}"][()], dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise CdinnError(f"NXmx {name} is not a number") from None
    if values.size == 0 or not np.isfinite(values[0]):
        raise CdinnError(f"NXmx {name} is not a finite number ({values[:1].tolist() or 'empty'})")
    return float(values[0])


def _pixels(fh: h5py.File, name: str, pixel_size: str) -> float:
    """Beam-centre coordinate ``name`` in pixels (see the module docstring for its units)."""
    value = _number(fh, name)
    units = (attr_text(fh[f"{DETECTOR}/{name}"], "units") or "pixel").strip()
    if units.lower() in PIXEL_UNITS:
        return value
    if units not in LENGTH_UNITS:
        raise CdinnError(f"NXmx {name} has units {units!r}: neither pixels nor a length; give --centre-pixel")
    if f"{DETECTOR}/{pixel_size}" not in fh:
        raise CdinnError(f"NXmx {name} is in {units} but the file records no {pixel_size}; give --centre-pixel")
    size_units = attr_text(fh[f"{DETECTOR}/{pixel_size}"], "units") or "m"
    if size_units not in LENGTH_UNITS:
        raise CdinnError(f"NXmx {pixel_size} has units {size_units!r}, not a length; give --centre-pixel")
    size = _number(fh, pixel_size) * LENGTH_UNITS[size_units]
    if size <= 0:
        raise CdinnError(f"NXmx {pixel_size} must be positive, got {size} m; give --centre-pixel")
    return value * LENGTH_UNITS[units] / size


def dataset_paths(fh: h5py.File, dataset: str | None, path: Path) -> list[str]:
    """The dataset paths of open file ``fh`` (at ``path``) to read, in order: ``dataset`` if given, else an
    NXmx master's data_* links, the NeXus default signal, or ``diffraction`` (see the module docstring)."""
    if dataset:
        return [dataset]
    links = sorted(name for name in fh.get("/entry/data", {}) if _DATA_LINK.match(name)) if "/entry/data" in fh else []
    if links:
        return [f"/entry/data/{name}" for name in links]
    default = nexus_default_dataset(fh)
    if default:
        return [default]
    if isinstance(fh.get(EIGER_DATA), h5py.Dataset):  # an Eiger data file on its own
        return [EIGER_DATA]
    if "diffraction" in fh:
        return ["diffraction"]
    raise CdinnError(
        f"{path}: no dataset given and no NeXus default, NXmx data_* links, {EIGER_DATA} or "
        "'diffraction' dataset found; name one as FILE:/path/to/dataset"
    )


def open_dataset(fh: h5py.File, name: str, path: Path) -> h5py.Dataset:
    """Dataset ``name`` of ``fh``, or one CdinnError line (naming the data file behind a broken link)."""
    link = fh.get(name, getlink=True)
    try:
        node = fh[name]
    except KeyError:
        if isinstance(link, h5py.ExternalLink):
            raise CdinnError(
                f"{path}:{name} links to {link.filename}:{link.path}, which cannot be read (missing data file?)"
            ) from None
        raise CdinnError(f"{path}: dataset {name} not found") from None
    except OSError as exc:
        raise CdinnError(f"{path}:{name}: cannot read ({str(exc).splitlines()[0]})") from None
    if not isinstance(node, h5py.Dataset):
        raise CdinnError(f"{path}: {name} is not a dataset")
    return node


def first_frame_number(dset: h5py.Dataset, number: int) -> int:
    """The detector's number of a data file's first frame (its ``image_nr_low``), else ``number``;
    CdinnError when the attribute is not a whole number that fits int64."""
    low = dset.attrs.get("image_nr_low")
    if low is None:
        return number
    try:
        return frame_number(np.asarray(low).ravel()[0].item())
    except (ValueError, IndexError):
        raise CdinnError(f"{dset.file.filename}:{dset.name}: image_nr_low {low!r} is not a frame number") from None


def _texts(values: object) -> list[str]:
    """An HDF5 string attribute or dataset's values (one or many, bytes or str) as a list of str."""
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.atleast_1d(np.asarray(values, dtype=object))]


def frame_channel(dset: h5py.Dataset, channel: str | None) -> tuple[int, str] | None:
    """Which channel of a multi-channel frame stack (N, channels, rows, cols) to read, as (index, name): the
    one named ``channel``, else the NXdata ``default_slice``'s, else the first (see the module docstring);
    None for a stack of one channel (N, rows, cols) or a single frame. CdinnError for a channel the data do not
    have, a channel asked of single-channel data, or any other shape."""
    where = f"{dset.file.filename}:{dset.name}"
    if dset.ndim in (2, 3):
        if channel is not None:
            raise CdinnError(f"{where}: --channel {channel!r} given, but the frames {dset.shape} have one channel")
        return None
    if dset.ndim != 4:
        raise CdinnError(f"{where}: expected frames (N, rows, cols) or (N, channels, rows, cols), got {dset.shape}")
    count = dset.shape[1]
    axis = dset.parent.get("channel")
    names = _texts(axis[()]) if isinstance(axis, h5py.Dataset) else []
    if len(names) != count:
        names = [str(i) for i in range(count)]
    if channel is None:
        default = _texts(dset.parent.attrs.get("default_slice", []))
        channel = default[1] if len(default) == 4 and default[1] in names else names[0]
    if channel not in names:
        raise CdinnError(f"{where}: no channel {channel!r} (it has {', '.join(names)}); choose one with --channel")
    return names.index(channel), channel


def frame_source(path: str | Path, dataset: str, picked: tuple[int, str] | None) -> str:
    """What a frame's ``source`` says: ``file:dataset``, and ``[channel]`` for multi-channel data."""
    return f"{path}:{dataset}" + (f"[{picked[1]}]" if picked else "")


COUNT_UNITS = ("counts", "count", "photons", "cts")
"""Units attributes that say a dataset holds detector counts."""


def declared_kind(dset: h5py.Dataset) -> str | None:
    """What a dataset declares its frames hold (:func:`cdinn.model.validation.frame_kind`): its ``quantity``
    attribute (``cdinn simulate`` writes it), else intensity for detector counts (units in
    :data:`COUNT_UNITS`, or ``/entry/data/data``, where Eiger, NXmx masters' data files and areaDetector
    write their frames), else None (undeclared)."""
    quantity = attr_text(dset, KIND_ATTR)
    if quantity is not None:
        return quantity
    units = attr_text(dset, "units")
    if units is not None and units.strip().lower() in COUNT_UNITS:
        return "intensity"
    if dset.name == EIGER_DATA:
        return "intensity"
    return None


def direct_decoder(dset: h5py.Dataset) -> Callable[[bytes, tuple[int, int] | None], np.ndarray] | None:
    """For a frame stack (N, rows, cols) or (N, channels, rows, cols) stored one frame per chunk with
    bitshuffle-LZ4 or LZ4 as its only filter (how Eiger and most areaDetector files are written): a decoder of one
    raw chunk into its (rows, cols) frame through cdinn's own decompressors, which check every size a chunk
    claims before decompressing (the HDF5 filter plugins trust them: a corrupt chunk could crash the process).
    Its second argument, rows ``(first, end)`` or None, asks for those rows alone: bitshuffle-LZ4 decodes just
    them (an (end - first, cols) array), LZ4 the whole frame regardless (check the result's shape). None for any
    other layout (HDF5 reads it)."""
    one_frame = (1,) * (dset.ndim - 2) + dset.shape[-2:]
    if dset.ndim not in (3, 4) or dset.chunks != one_frame or dset.dtype.kind not in "uif":
        return None
    plist = dset.id.get_create_plist()
    if plist.get_nfilters() != 1:
        return None
    code, _, values, _ = plist.get_filter(0)
    (n_rows, cols), dtype = dset.shape[-2:], dset.dtype
    frame_bytes = n_rows * cols * dtype.itemsize

    def frame(raw: np.ndarray | bytes, rows: int) -> np.ndarray:
        if len(raw) != (nbytes := rows * cols * dtype.itemsize):
            raise ValueError(f"chunk decoded to {len(raw)} bytes, not the {rows} rows' {nbytes}")
        return np.frombuffer(raw, dtype).reshape(rows, cols)

    def bslz4(raw: bytes, rows: tuple[int, int] | None) -> np.ndarray:
        first, end = rows or (0, n_rows)
        span = (first * cols, end * cols)
        return frame(bslz4_decompress(raw, dtype.itemsize, limit=frame_bytes, span=span), end - first)

    if code == BITSHUFFLE_FILTER and len(values) >= 5 and values[4] == BITSHUFFLE_LZ4:
        return bslz4
    if code == LZ4_FILTER:
        return lambda raw, rows: frame(lz4_hdf5_decompress(raw, frame_bytes), n_rows)
    return None


def _raw_frame(raw: bytes, dset: h5py.Dataset) -> np.ndarray:
    """A chunk stored without its filter (the filter mask says it was skipped) as its frame."""
    if len(raw) != int(np.prod(dset.shape[-2:])) * dset.dtype.itemsize:
        raise ValueError(f"unfiltered chunk of {len(raw)} bytes does not match the frame")
    return np.frombuffer(raw, dset.dtype).reshape(dset.shape[-2:])


def _block_rows(dset: h5py.Dataset) -> int:
    """Frames per read: whole chunks along the frame axis, at most BLOCK_BYTES."""
    frame_bytes = max(1, int(np.prod(dset.shape[1:])) * dset.dtype.itemsize)  # every channel is read
    chunk = dset.chunks[0] if dset.chunks else 1
    return max(1, (BLOCK_BYTES // frame_bytes) // chunk * chunk or chunk)


class Hdf5Frames:
    """Iterate the frames of one HDF5 spec (path, dataset or None; ``channel``: of multi-channel data, see
    :func:`frame_channel`; ``wanted_rows``: see :class:`cdinn.host.frames.Source`, honoured for bitshuffle-LZ4
    chunks); ``info`` holds the detector metadata and ``ended_normally`` is False once a data file could not be
    read."""

    def __init__(
        self,
        path: str | Path,
        dataset: str | None = None,
        channel: str | None = None,
        wanted_rows: WantedRows | None = None,
    ):
        self.path, self.dataset, self.channel, self.wanted_rows = Path(path), dataset, channel, wanted_rows
        self.info = DetectorInfo()
        self.ended_normally = True

    def iter(self, first_number: int) -> Iterator[Frame | Rejected]:
        source = f"{self.path}:{self.dataset}" if self.dataset else str(self.path)
        number = first_number
        try:
            fh = h5py.File(self.path, "r")
        except OSError as exc:
            self.ended_normally = False
            yield Rejected(
                number, f"{self.path}: not a readable HDF5 file ({str(exc).splitlines()[0]})", source, time.time()
            )
            return
        with fh:
            self.info = detector_info(fh)
            try:
                names = dataset_paths(fh, self.dataset, self.path)
            except CdinnError as exc:
                self.ended_normally = False
                yield Rejected(number, str(exc), source, time.time())
                return
            for name in names:
                try:
                    dset = open_dataset(fh, name, self.path)
                    picked = frame_channel(dset, self.channel)
                    if picked is not None:
                        self.info = detector_info(fh, picked[1])
                    yield from self._frames(dset, name, number, picked)
                    number = first_frame_number(dset, number) + (len(dset) if dset.ndim > 2 else 1)
                except CdinnError as exc:  # one missing or broken data file: rejected, the next ones still read
                    self.ended_normally = False
                    yield Rejected(number, str(exc), f"{self.path}:{name}", time.time())
                    number += 1

    def _frames(self, dset: h5py.Dataset, name: str, number: int, picked: tuple[int, str] | None) -> Iterator[Frame]:
        label = frame_source(self.path, name, picked)
        channel = () if picked is None else (picked[0],)
        kind = declared_kind(dset)
        if dset.ndim == 2:
            yield Frame(number, dset[()], label, time.time(), self.info.pixel_mask, self.info.beam_centre, kind)
            return
        first = first_frame_number(dset, number)
        decode = direct_decoder(dset)
        if decode is not None:
            shape = dset.shape[-2:]
            for i in range(len(dset)):
                rows = self.wanted_rows(shape, self.info.beam_centre) if self.wanted_rows is not None else None
                try:
                    with phil:  # h5py does not hold its own lock here; the runner's writer uses HDF5 meanwhile
                        filter_mask, raw = dset.id.read_direct_chunk((i, *channel, 0, 0))
                    frame = decode(raw, rows) if not filter_mask & 1 else _raw_frame(raw, dset)
                except (OSError, ValueError) as exc:
                    raise CdinnError(f"{label}: frame {i} cannot be read ({str(exc).splitlines()[0]})") from None
                yield Frame(
                    first + i,
                    frame,
                    label,
                    time.time(),
                    self.info.pixel_mask,
                    self.info.beam_centre,
                    kind,
                    band_of(frame, shape, rows),
                )
            return
        step = _block_rows(dset)
        for start in range(0, len(dset), step):
            try:
                block = dset[(slice(start, start + step), *channel)]
            except OSError as exc:
                raise CdinnError(
                    f"{label}: frames {start}-{start + step - 1} cannot be read ({str(exc).splitlines()[0]})"
                ) from None
            arrival = time.time()
            for i, frame in enumerate(block):
                yield Frame(first + start + i, frame, label, arrival, self.info.pixel_mask, self.info.beam_centre, kind)
