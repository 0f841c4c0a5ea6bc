"""DECTRIS detector streams over ZeroMQ (PUSH from the detector, PULL here), decoded into frames.

* **Stream v2** (one CBOR message each, maps with ``type`` = ``start`` / ``image`` / ``end``): images are
  ``data`` maps of channel -> multi-dimensional typed array (tag 40 around an RFC 8746 typed-array tag), their
  bytes possibly compressed with DECTRIS tag 56500 (``["bslz4", element size, bytes]`` or ``["lz4", 0,
  bytes]``, HDF5-filter framing: a 12-byte header of the big-endian uncompressed size (uint64) and block
  size (uint32), then the blocks). The first channel is used. The start message gives the beam centre
  (``beam_center_x`` = column, ``beam_center_y`` = row), the image size and, with header detail ``all``, the
  pixel mask; the end message ends the series.
* **Stream v1** (legacy multipart JSON + binary): ``dheader-1.0`` (with detector configuration; with detail
  ``all`` also flat field and ``dpixelmask-1.0``), per image ``dimage-1.0`` / ``dimage_d-1.0`` (``shape`` =
  [x, y], ``type``, ``encoding`` one of ``bs32-lz4<``, ``bs16-lz4<``, ``bs8-lz4<``, ``lz4<``, ``<``) / blob /
  ``dconfig-1.0``, and ``dseries_end-1.0``. A bitshuffle blob may come with or without the 12-byte header
  (real detectors send it; ALBA's eiger-simulator does not).

Decoders keep the series state (beam centre, mask) and turn each message into a Frame, a Rejected (with the
reason), :data:`END` or None (a message that carries no frame, e.g. a header).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from cdinn.host.decoding import (
    END,
    MAX_FRAME_BYTES,
    FrameError,
    SeriesDecoder,
    check_size,
    describe,
    frame_number,
)
from cdinn.host.frames import Frame, band_of

# RFC 8746 typed-array tags -> numpy dtypes (the ones detectors use; 76 is reserved)
TYPED_ARRAYS = {
    64: "u1",
    65: ">u2",
    66: ">u4",
    67: ">u8",
    68: "u1",
    69: "<u2",
    70: "<u4",
    71: "<u8",
    72: "i1",
    73: ">i2",
    74: ">i4",
    75: ">i8",
    77: "<i2",
    78: "<i4",
    79: "<i8",
    80: ">f2",
    81: ">f4",
    82: ">f8",
    84: "<f2",
    85: "<f4",
    86: "<f8",
}
MULTI_DIM_ROW_MAJOR = 40
DECTRIS_COMPRESSION = 56500
BSHUF_TARGET_BLOCK = 8192  # bitshuffle's default block (bytes), in whole multiples of 8 elements, >= 128 elements


def _hdf5_header(data: bytes | memoryview) -> tuple[int, int]:
    """(uncompressed bytes, block bytes) of a blob's 12-byte HDF5-filter header; its payload follows."""
    if len(data) < 12:
        raise ValueError("compressed blob shorter than its 12-byte header")
    return int.from_bytes(data[:8], "big"), int.from_bytes(data[8:12], "big")


_BIG_ENDIAN_U32 = struct.Struct(">I")


def _bslz4_layout(
    payload: bytes | memoryview, elements: int, element_size: int, block: int, upto: int | None = None
) -> list[int]:
    """The byte offset in ``payload`` where each block starts, and where the blocks walked end (last item):
    ValueError unless ``payload`` is exactly a bitshuffle-LZ4 stream of ``elements`` elements in blocks of
    ``block`` elements: per block a big-endian uint32 compressed size and that many bytes, then the
    ``elements % 8`` trailing elements stored raw. The C decompressor reads where these sizes point without
    knowing the payload's length, so a stream that claims more than it carries never reaches it. With ``upto``
    only the first ``upto`` blocks are walked, each checked to lie in the payload (a decoder that stops there
    reads nothing beyond); the stream's length is checked when every block is walked."""
    if block <= 0 or block % 8:
        raise ValueError(f"bitshuffle block of {block} elements (must be a positive multiple of 8)")
    full, leftover = divmod(elements, block)
    blocks = full + (leftover >= 8)
    walked = blocks if upto is None else min(upto, blocks)
    pos, end = 0, len(payload)
    starts: list[int] = []
    size_at, keep = _BIG_ENDIAN_U32.unpack_from, starts.append  # (the loop runs once per 8 KB: kept lean)
    for _ in range(walked):
        if pos + 4 > end:
            raise ValueError(f"bitshuffle-LZ4 stream truncated at byte {pos} of {end}")
        keep(pos)
        pos += 4 + size_at(payload, pos)[0]
    if pos > end or (walked == blocks and pos + (leftover % 8) * element_size != end):
        raise ValueError(f"bitshuffle-LZ4 stream of {end} bytes does not match its {walked} block sizes")
    return [*starts, pos]


@lru_cache(maxsize=1)
def _bitshuffle():
    """The bitshuffle module with its OpenMP pool held to one thread: its default (one per core) made one
    256x256 frame take 5-8 ms instead of 0.15 ms here, fighting the runner's other threads for 2 cores."""
    import bitshuffle
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="openmp")
    return bitshuffle


def bslz4_decompress(
    data: bytes,
    element_size: int,
    expected_bytes: int | None = None,
    limit: int = MAX_FRAME_BYTES,
    span: tuple[int, int] | None = None,
) -> np.ndarray:
    """Bitshuffle + LZ4 (the HDF5 filter's format) -> the decompressed bytes as a uint8 array. With
    ``expected_bytes`` a blob without the 12-byte header is recognised (its first 8 bytes do not state that size)
    and decoded with the default block. With ``span`` (first, end) only the elements ``[first, end)`` are
    returned, and only the blocks holding them are decompressed (each block is shuffled and compressed alone):
    the blocks up to the span's end are walked and checked, the stream's whole length only when the span reaches
    into its last block. ValueError for a size over ``limit``, a span outside the elements or a stream that does
    not hold what it claims."""
    bitshuffle = _bitshuffle()
    if element_size not in (1, 2, 4, 8):
        raise ValueError(f"bitshuffle element size {element_size!r} (must be 1, 2, 4 or 8)")
    blob = memoryview(data)  # (slices of it are views, not copies)
    size, block, payload = (*_hdf5_header(blob), blob[12:]) if len(blob) >= 12 else (-1, 0, blob)
    if expected_bytes is not None and size != expected_bytes:
        size, block, payload = expected_bytes, 0, blob
    check_size(size, limit, "bitshuffle-LZ4 blob")
    if size % element_size or block % element_size:
        raise ValueError(f"bitshuffle-LZ4 sizes {size}/{block} are not whole {element_size}-byte elements")
    elements = size // element_size
    block_elements = block // element_size or max(128, BSHUF_TARGET_BLOCK // element_size // 8 * 8)
    first, end = (0, elements) if span is None else span
    if not 0 <= first < end <= elements:
        raise ValueError(f"elements [{first}, {end}) asked of a bitshuffle-LZ4 blob of {elements}")
    b0 = first // block_elements  # the first block holding the span
    if end <= elements // block_elements * block_elements:  # within the whole blocks: those holding the span
        b1 = -(-end // block_elements)
        starts = _bslz4_layout(payload, elements, element_size, block_elements, upto=b1)
        part, count = payload[starts[b0] : starts[b1]], (b1 - b0) * block_elements
    else:  # into the last, shorter block or the raw trailing elements: the rest of the blob, checked whole
        starts = _bslz4_layout(payload, elements, element_size, block_elements)
        part, count = payload[starts[b0] :], elements - b0 * block_elements
    out = bitshuffle.decompress_lz4(
        np.frombuffer(part, np.uint8), (count,), np.dtype(f"u{element_size}"), block_elements
    )
    skip = first - b0 * block_elements
    return out[skip : skip + end - first].view(np.uint8)  # the decompressed buffer itself, not a copy


def lz4_hdf5_decompress(data: bytes, limit: int = MAX_FRAME_BYTES) -> bytes:
    """LZ4 with HDF5-filter framing: the header, then per block a big-endian uint32 compressed size and the
    block (stored raw when it did not compress). ValueError for a size over ``limit``, a zero block or a
    block that runs past the payload or does not decode."""
    import lz4.block

    size, block = _hdf5_header(data)
    payload = data[12:]
    check_size(size, limit, "LZ4 blob")
    if block <= 0:
        raise ValueError("LZ4 blob with a block size of 0")
    pieces, done, pos = [], 0, 0
    while done < size:
        want = min(block, size - done)
        length = int.from_bytes(payload[pos : pos + 4], "big")
        if pos + 4 + length > len(payload):
            raise ValueError(f"LZ4 block at byte {pos} runs past the {len(payload)}-byte payload")
        chunk = payload[pos + 4 : pos + 4 + length]
        try:
            piece = chunk if length == want else lz4.block.decompress(chunk, uncompressed_size=want)
        except lz4.block.LZ4BlockError as exc:  # not a ValueError
            raise ValueError(f"LZ4 block at byte {pos} is corrupt ({exc})") from None
        if len(piece) != want:
            raise ValueError(f"LZ4 block at byte {pos} decoded to {len(piece)} bytes, expected {want}")
        pieces.append(piece)
        done += want
        pos += 4 + length
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def decompress(algorithm: object, modifier: object, data: object, limit: int = MAX_FRAME_BYTES) -> bytes | np.ndarray:
    """The bytes a DECTRIS compression tag stands for (ValueError for anything it cannot be)."""
    if not isinstance(data, bytes):
        raise ValueError("DECTRIS compression tag without a byte string")
    if algorithm == "bslz4" and isinstance(modifier, int):
        return bslz4_decompress(data, modifier, limit=limit)
    if algorithm == "lz4":
        return lz4_hdf5_decompress(data, limit)
    raise ValueError(f"unknown DECTRIS compression {algorithm!r} (element size {modifier!r})")


class _Tagged(NamedTuple):
    """A CBOR tag the decoder expands only once it knows the message (so a bad payload is rejected with its
    frame number, and only the channel used is decompressed)."""

    tag: int
    value: object


def _tag_hook(tag, immutable=False):
    """cbor2 tag hook (cbor2 6 calls it as (tag, immutable)): compression, typed and row-major arrays are kept
    as :class:`_Tagged` for :func:`expand`."""
    return _Tagged(tag.tag, tag.value) if tag.tag in (DECTRIS_COMPRESSION, MULTI_DIM_ROW_MAJOR, *TYPED_ARRAYS) else tag


def _items(value: object, n: int) -> list:
    """The ``n`` items of a tag's array (ValueError for anything else)."""
    if not isinstance(value, list | tuple) or len(value) != n:
        raise ValueError(f"a tag's value is not an array of {n} items")
    return list(value)


def expand(value: object, limit: int) -> object:
    """A value of a decoded message with its array tags expanded: a DECTRIS compression tag into its bytes
    (sizes checked against ``limit``), a typed array into a 1-D numpy array, a row-major array into its shape."""
    if not isinstance(value, _Tagged):
        return value
    if value.tag == DECTRIS_COMPRESSION:
        algorithm, modifier, data = _items(value.value, 3)
        return decompress(algorithm, modifier, data, limit)
    if value.tag == MULTI_DIM_ROW_MAJOR:
        dims, values = _items(value.value, 2)
        return np.asarray(expand(values, limit)).reshape(dims)
    raw = expand(value.value, limit)
    if not isinstance(raw, bytes | np.ndarray):
        raise ValueError(f"typed array tag {value.tag} without a byte string")
    check_size(len(raw), limit, "typed array")
    return np.frombuffer(raw, TYPED_ARRAYS[value.tag])


def _bslz4_image(value: object) -> tuple[tuple[int, int], np.dtype, bytes] | None:
    """For a stream v2 image that is a 2-D row-major typed array whose bytes are bitshuffle-LZ4 compressed in
    the array's element size (what DECTRIS detectors send): its (rows, cols), dtype and compressed bytes. None
    for any other image (:func:`expand` decodes it whole)."""
    if not (isinstance(value, _Tagged) and value.tag == MULTI_DIM_ROW_MAJOR):
        return None
    dims, typed = _items(value.value, 2)
    if not (isinstance(typed, _Tagged) and typed.tag in TYPED_ARRAYS and isinstance(typed.value, _Tagged)):
        return None
    if not (isinstance(dims, list | tuple) and len(dims) == 2 and all(type(d) is int and d > 0 for d in dims)):
        return None
    compressed = typed.value
    if compressed.tag != DECTRIS_COMPRESSION:
        return None
    algorithm, element_size, data = _items(compressed.value, 3)
    dtype = np.dtype(TYPED_ARRAYS[typed.tag])
    if algorithm != "bslz4" or element_size != dtype.itemsize or not isinstance(data, bytes):
        return None
    return (dims[0], dims[1]), dtype, data


def _centre(config: Mapping) -> tuple[float, float] | None:
    """The beam centre (row, col) a start/header message states, or None where it states none."""
    if config.get("beam_center_x") is None or config.get("beam_center_y") is None:
        return None
    centre = (float(config["beam_center_y"]), float(config["beam_center_x"]))
    if not all(math.isfinite(c) for c in centre):
        raise ValueError(f"beam centre {centre} is not finite")
    return centre


class Stream2Decoder(SeriesDecoder):
    """Stream v2 (CBOR) messages -> frames; remembers the series' start message. ``channel``: which
    threshold of multi-channel images (default: the first)."""

    format = "dectris-v2"
    label = "stream v2"

    def decode(self, parts: list[bytes], now: float):
        import cbor2

        message = cbor2.loads(parts[0], tag_hook=_tag_hook)
        if not isinstance(message, Mapping):
            raise ValueError(f"a CBOR {type(message).__name__}, not a map")
        kind = message.get("type")
        if kind == "start":
            self._start(message)
            return None
        if kind == "end":
            return END
        if kind != "image":
            return None
        number = frame_number(message["image_id"])
        try:
            data = message["data"]
            if not isinstance(data, Mapping) or not data:
                raise ValueError("image without data channels")
            if self.channel is not None and self.channel not in data:
                raise ValueError(f"image has no channel {self.channel!r} (it has {sorted(map(str, data))})")
            value = data[self.channel] if self.channel is not None else next(iter(data.values()))
            shape, rows, frame = self._image(value)
            if frame.ndim != 2 or frame.dtype.kind not in "uif":
                raise ValueError(f"image of shape {frame.shape} and type {frame.dtype}")
        except Exception as exc:
            raise FrameError(number, describe(exc)) from None
        return Frame(number, frame, self.source, now, self.mask, self.centre, "intensity", band_of(frame, shape, rows))

    def _image(self, value: object) -> tuple[tuple[int, int], tuple[int, int] | None, np.ndarray]:
        """An image channel's (rows, cols) shape, the rows decoded (None: all) and their array: only the rows
        the consumer asked for (:meth:`rows_for`) where the image is a 2-D typed array compressed with
        bitshuffle-LZ4 in its own element size, the whole image otherwise."""
        plan = _bslz4_image(value)
        if plan is not None and (rows := self.rows_for(plan[0])) is not None:
            (n_rows, cols), dtype, data = plan
            span = (rows[0] * cols, rows[1] * cols)
            raw = bslz4_decompress(data, dtype.itemsize, n_rows * cols * dtype.itemsize, self.limit, span)
            return plan[0], rows, np.frombuffer(raw, dtype).reshape(rows[1] - rows[0], cols)
        frame = np.asarray(expand(value, self.limit))
        return frame.shape[:2], None, frame  # (checked to be 2-D by the caller)

    def _start(self, message: Mapping) -> None:
        self.mask, self.centre, self.limit = None, None, self.max_frame_bytes
        self.announce(message.get("image_size_y"), message.get("image_size_x"))
        self.centre = _centre(message)
        masks = message.get("pixel_mask") or {}
        channels = message.get("channels") or list(masks)
        wanted = self.channel if self.channel is not None else (channels[0] if channels else None)
        if isinstance(masks, Mapping) and wanted in masks:
            mask = np.asarray(expand(masks[wanted], self.limit))
            if mask.ndim != 2:
                raise ValueError(f"pixel mask of shape {mask.shape}")
            self.mask = mask != 0


V1_ENCODINGS = {"bs32-lz4<": 4, "bs16-lz4<": 2, "bs8-lz4<": 1}


def _v1_shape(info: dict, dtype: np.dtype, limit: int) -> tuple[int, int]:
    """(rows, cols) of a v1 image or mask header (``shape`` = [x, y]), its size checked against ``limit``."""
    x, y = info["shape"]
    if not all(isinstance(v, int) and v > 0 for v in (x, y)):
        raise ValueError(f"shape {info['shape']!r} is not two positive whole numbers")
    check_size(x * y * dtype.itemsize, limit, f"image of shape [{x}, {y}] {dtype}")
    return y, x


def _v1_dtype(name: object) -> np.dtype:
    dtype = np.dtype(name) if isinstance(name, str) else None
    if dtype is None or dtype.kind not in "uif":
        raise ValueError(f"pixel type {name!r} is not a number type")
    return dtype


def decode_v1_blob(
    blob: bytes,
    shape: tuple[int, int],
    dtype: np.dtype,
    encoding: str,
    limit: int = MAX_FRAME_BYTES,
    rows: tuple[int, int] | None = None,
) -> np.ndarray:
    """One stream v1 image blob -> (rows, cols) array; ``shape`` is (rows, cols). With ``rows`` (first, end),
    a bitshuffle-LZ4 blob of 8-, 16- or 32-bit pixels (``bs*-lz4<``) decodes to those rows alone; other
    encodings decode whole (check the result's shape)."""
    expected = int(np.prod(shape)) * dtype.itemsize
    check_size(expected, limit, f"image of shape {shape} {dtype}")
    whole = (0, shape[0])
    first, end = rows if rows is not None and V1_ENCODINGS.get(encoding) == dtype.itemsize else whole
    raw: bytes | np.ndarray
    if encoding in V1_ENCODINGS:
        span = None if (first, end) == whole else (first * shape[1], end * shape[1])
        raw = bslz4_decompress(blob, V1_ENCODINGS[encoding], expected, limit, span)
    elif encoding == "lz4<":
        import lz4.block

        raw = lz4.block.decompress(blob, uncompressed_size=expected)
    elif encoding == "<":
        raw = blob
    else:
        raise ValueError(f"unknown stream v1 encoding {encoding!r}")
    wanted = (end - first) * shape[1] * dtype.itemsize
    if len(raw) != wanted:
        raise ValueError(f"decoded {len(raw)} bytes, expected {wanted} for shape {shape} {dtype}")
    return np.frombuffer(raw, dtype.newbyteorder("<")).reshape(end - first, shape[1])


def _json_map(part: bytes) -> dict:
    value = json.loads(part)
    if not isinstance(value, dict):
        raise ValueError(f"a JSON {type(value).__name__}, not an object")
    return value


class Stream1Decoder(SeriesDecoder):
    """Stream v1 (legacy multipart JSON) messages -> frames; remembers the series header."""

    format = "dectris-v1"
    label = "stream v1"

    def _header(self, parts: list[bytes]) -> None:
        self.mask, self.centre, self.limit = None, None, self.max_frame_bytes
        if len(parts) > 1:
            config = _json_map(parts[1])
            self.announce(config.get("y_pixels_in_detector"), config.get("x_pixels_in_detector"))
            self.centre = _centre(config)
        for i in range(2, len(parts) - 1):
            head = _json_map(parts[i]) if parts[i][:1] == b"{" else {}
            if str(head.get("htype", "")).startswith("dpixelmask"):
                dtype = _v1_dtype(head.get("type"))
                shape = _v1_shape(head, dtype, self.limit)
                self.mask = np.frombuffer(parts[i + 1], dtype.newbyteorder("<")).reshape(shape) != 0

    def decode(self, parts: list[bytes], now: float):
        head = _json_map(parts[0])
        htype = head.get("htype")
        if not isinstance(htype, str):
            raise ValueError(f"htype {htype!r} is not a string")
        if htype.startswith("dheader"):
            self._header(parts)
            return None
        if htype.startswith("dseries_end"):
            return END
        if not htype.startswith("dimage-"):
            return None
        number = frame_number(head["frame"]) if "frame" in head else -1
        try:
            if len(parts) < 3:
                raise ValueError(f"image message of {len(parts)} parts (needs header, info, blob)")
            info = _json_map(parts[1])
            dtype = _v1_dtype(info.get("type"))
            shape = _v1_shape(info, dtype, self.limit)
            encoding = info.get("encoding", "<")
            rows = self.rows_for(shape)
            frame = decode_v1_blob(
                parts[2], shape, dtype, encoding if isinstance(encoding, str) else "?", self.limit, rows
            )
        except Exception as exc:  # JSON, shape and the decompressors (RuntimeError, LZ4BlockError) all can fail
            raise FrameError(number, f"{type(exc).__name__}: {exc}") from None
        return Frame(number, frame, self.source, now, self.mask, self.centre, "intensity", band_of(frame, shape, rows))


def detect_format(parts: list[bytes]) -> str:
    """'dectris-v2' for a single-part CBOR map, 'dectris-v1' for a JSON header with ``htype``, else 'cdinn'."""
    first = parts[0][:1]
    if len(parts) == 1 and first and (0xA0 <= first[0] <= 0xBF or first[0] in (0xD9, 0xDA)):
        return "dectris-v2"
    if first == b"{":
        try:
            if "htype" in json.loads(parts[0]):
                return "dectris-v1"
        except (ValueError, TypeError, RecursionError):  # not JSON (or not an object): cdinn's decoder rejects it
            pass
    return "cdinn"
