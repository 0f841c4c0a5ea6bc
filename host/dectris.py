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
import time

import numpy as np

from cdinn.errors import CdinnError
from cdinn.host.frames import Frame, Rejected

END = "end-of-series"
# RFC 8746 typed-array tags -> numpy dtypes (the ones detectors use; 76 is reserved)
TYPED_ARRAYS = {64: "u1", 65: ">u2", 66: ">u4", 67: ">u8", 68: "u1", 69: "<u2", 70: "<u4", 71: "<u8", 72: "i1",
                73: ">i2", 74: ">i4", 75: ">i8", 77: "<i2", 78: "<i4", 79: "<i8", 80: ">f2", 81: ">f4", 82: ">f8",
                84: "<f2", 85: "<f4", 86: "<f8"}
MULTI_DIM_ROW_MAJOR = 40
DECTRIS_COMPRESSION = 56500


def _hdf5_framing(data: bytes) -> tuple[int, int, bytes]:
    """(uncompressed bytes, block bytes, payload) of a blob with the 12-byte HDF5-filter header."""
    if len(data) < 12:
        raise CdinnError("compressed blob shorter than its 12-byte header")
    return int.from_bytes(data[:8], "big"), int.from_bytes(data[8:12], "big"), data[12:]


def bslz4_decompress(data: bytes, element_size: int, expected_bytes: int | None = None) -> bytes:
    """Bitshuffle + LZ4 (the HDF5 filter's format). With ``expected_bytes`` a blob without the 12-byte
    header is recognised (its first 8 bytes do not state that size) and decoded with the default block."""
    import bitshuffle

    size, block, payload = _hdf5_framing(data)
    if expected_bytes is not None and size != expected_bytes:
        size, block, payload = expected_bytes, 0, data
    dtype = np.dtype(f"u{element_size}")
    out = bitshuffle.decompress_lz4(np.frombuffer(payload, np.uint8), (size // element_size,), dtype,
                                    block // element_size)
    return out.tobytes()


def lz4_hdf5_decompress(data: bytes) -> bytes:
    """LZ4 with HDF5-filter framing: the header, then per block a big-endian uint32 compressed size and the
    block (stored raw when it did not compress)."""
    import lz4.block

    size, block, payload = _hdf5_framing(data)
    out, pos = bytearray(), 0
    while len(out) < size:
        want = min(block, size - len(out))
        length = int.from_bytes(payload[pos : pos + 4], "big")
        chunk = payload[pos + 4 : pos + 4 + length]
        out += chunk if length == want else lz4.block.decompress(chunk, uncompressed_size=want)
        pos += 4 + length
    return bytes(out)


def decompress(algorithm: str, modifier: int, data: bytes) -> bytes:
    """The bytes a DECTRIS compression tag stands for."""
    if algorithm == "bslz4":
        return bslz4_decompress(data, int(modifier))
    if algorithm == "lz4":
        return lz4_hdf5_decompress(data)
    raise CdinnError(f"unknown DECTRIS compression {algorithm!r}")


def _tag_hook(tag, immutable=False):
    """cbor2 tag hook (cbor2 6 calls it as (tag, immutable)): compression, typed arrays, row-major arrays."""
    if tag.tag == DECTRIS_COMPRESSION:
        algorithm, modifier, data = tag.value
        return decompress(algorithm, modifier, data)
    if tag.tag in TYPED_ARRAYS:
        return np.frombuffer(tag.value, TYPED_ARRAYS[tag.tag])
    if tag.tag == MULTI_DIM_ROW_MAJOR:
        dims, values = tag.value
        return np.asarray(values).reshape(dims)
    return tag


class _SeriesDecoder:
    """What a decoder remembers of the series: the source's name, the pixel mask and the beam centre."""

    def __init__(self, source: str):
        self.source = source
        self.mask: np.ndarray | None = None
        self.centre: tuple[float, float] | None = None


class Stream2Decoder(_SeriesDecoder):
    """Stream v2 (CBOR) messages -> frames; remembers the series' start message."""

    format = "dectris-v2"

    def __call__(self, parts: list[bytes]):
        import cbor2

        now = time.time()
        try:
            message = cbor2.loads(parts[0], tag_hook=_tag_hook)
            kind = message["type"]
        except Exception as exc:  # cbor2 and the decompressors raise many types on corrupt input
            return Rejected(-1, f"corrupt stream v2 message ({type(exc).__name__}: {exc})", self.source, now)
        if kind == "start":
            self.centre = (float(message["beam_center_y"]), float(message["beam_center_x"]))
            masks = message.get("pixel_mask") or {}
            channels = message.get("channels") or list(masks)
            self.mask = np.asarray(masks[channels[0]]) != 0 if channels and channels[0] in masks else None
            return None
        if kind == "end":
            return END
        if kind != "image":
            return None
        number = int(message.get("image_id", -1))
        try:
            channel = next(iter(message["data"].values()))
            frame = np.asarray(channel)
            if frame.ndim != 2:
                raise ValueError(f"image of shape {frame.shape}")
        except (KeyError, StopIteration, TypeError, ValueError) as exc:
            return Rejected(number, f"corrupt stream v2 image ({exc})", self.source, now)
        return Frame(number, frame, self.source, now, self.mask, self.centre)


V1_ENCODINGS = {"bs32-lz4<": 4, "bs16-lz4<": 2, "bs8-lz4<": 1}


def decode_v1_blob(blob: bytes, shape: tuple[int, int], dtype: np.dtype, encoding: str) -> np.ndarray:
    """One stream v1 image blob -> (rows, cols) array; ``shape`` is (rows, cols)."""
    expected = int(np.prod(shape)) * dtype.itemsize
    if encoding in V1_ENCODINGS:
        raw = bslz4_decompress(blob, V1_ENCODINGS[encoding], expected)
    elif encoding == "lz4<":
        import lz4.block

        raw = lz4.block.decompress(blob, uncompressed_size=expected)
    elif encoding == "<":
        raw = blob
    else:
        raise CdinnError(f"unknown stream v1 encoding {encoding!r}")
    if len(raw) != expected:
        raise CdinnError(f"decoded {len(raw)} bytes, expected {expected} for shape {shape} {dtype}")
    return np.frombuffer(raw, dtype.newbyteorder("<")).reshape(shape)


class Stream1Decoder(_SeriesDecoder):
    """Stream v1 (legacy multipart JSON) messages -> frames; remembers the series header."""

    format = "dectris-v1"

    def _header(self, parts: list[bytes]) -> None:
        if len(parts) > 1:
            config = json.loads(parts[1])
            if "beam_center_x" in config and "beam_center_y" in config:
                self.centre = (float(config["beam_center_y"]), float(config["beam_center_x"]))
        for i in range(2, len(parts) - 1):
            head = json.loads(parts[i]) if parts[i][:1] == b"{" else {}
            if head.get("htype", "").startswith("dpixelmask"):
                x, y = head["shape"]
                self.mask = np.frombuffer(parts[i + 1], np.dtype(head["type"]).newbyteorder("<")).reshape(y, x) != 0

    def __call__(self, parts: list[bytes]):
        now = time.time()
        try:
            head = json.loads(parts[0])
            htype = head["htype"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            return Rejected(-1, f"corrupt stream v1 message ({exc})", self.source, now)
        if htype.startswith("dheader"):
            try:
                self._header(parts)
            except (ValueError, KeyError, TypeError) as exc:
                return Rejected(-1, f"corrupt stream v1 header ({exc})", self.source, now)
            return None
        if htype.startswith("dseries_end"):
            return END
        if not htype.startswith("dimage-"):
            return None
        number = int(head.get("frame", -1))
        try:
            info = json.loads(parts[1])
            x, y = info["shape"]
            frame = decode_v1_blob(parts[2], (int(y), int(x)), np.dtype(info["type"]), info.get("encoding", "<"))
        except Exception as exc:  # JSON, shape and the decompressors (RuntimeError, LZ4BlockError) all can fail
            return Rejected(number, f"corrupt stream v1 image ({type(exc).__name__}: {exc})", self.source, now)
        return Frame(number, frame, self.source, now, self.mask, self.centre)


def detect_format(parts: list[bytes]) -> str:
    """'dectris-v2' for a single-part CBOR map, 'dectris-v1' for a JSON header with ``htype``, else 'cdinn'."""
    first = parts[0][:1]
    if len(parts) == 1 and first and (0xA0 <= first[0] <= 0xBF or first[0] in (0xD9, 0xDA)):
        return "dectris-v2"
    if first == b"{":
        try:
            if "htype" in json.loads(parts[0]):
                return "dectris-v1"
        except (ValueError, UnicodeDecodeError):
            pass
    return "cdinn"
