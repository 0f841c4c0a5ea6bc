"""Coverage-guided fuzzing (atheris, libFuzzer) of every reader of untrusted input: the stream v2, stream v1
and cdinn-format message decoders and the HDF5 frame reader. A target passes when no input crashes the
process, raises out of the reader, hangs past libFuzzer's ``-timeout`` or takes more memory than
``-rss_limit_mb``.

    python tests/host/fuzz_decoders.py seeds DIR          # write the seed corpus (one folder per target)
    python tests/host/fuzz_decoders.py TARGET DIR [libFuzzer flags, e.g. -max_total_time=20]

Message targets read one input as ZeroMQ parts, each a 4-byte little-endian length and that many bytes (the
last part takes what is left). The seeds are messages encoded per the DECTRIS specifications
(``dectris_messages``); DECTRIS's own stream v2 test messages join them when ``CDINN_DECTRIS_TEST_DATA`` names
a folder of ``.cbor`` files (the ``stream_v2/test_data`` folder of the dectris/documentation repository). The
HDF5 target builds a small NXmx-like file from the input (shapes, types, metadata, raw compressed chunks) and
reads it through :class:`cdinn.host.sources.FileSource`.
"""

import os
import sys
import tempfile
from pathlib import Path

import atheris
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # dectris_messages, beside this file

with atheris.instrument_imports():
    from cdinn.host import decoding, dectris, sources  # hdf5_frames comes in through sources

import h5py  # noqa: E402  (after the instrumented imports, not instrumented itself)
import hdf5plugin  # noqa: E402
from dectris_messages import bslz4, detector_frames, lz4_hdf5, v1_messages, v2_messages  # noqa: E402

from cdinn.host.frames import Frame, Rejected  # noqa: E402
from cdinn.host.stream_sim import END_MESSAGE, frame_message  # noqa: E402

LIMIT = 1 << 20  # the decoders' frame limit while fuzzing (bytes): an allocation past it is a finding


def parts_of(data: bytes) -> list[bytes]:
    parts, pos = [], 0
    while pos < len(data) and len(parts) < 8:
        length = int.from_bytes(data[pos : pos + 4], "little")
        parts.append(data[pos + 4 : pos + 4 + length])
        pos += 4 + length
    return parts or [b""]


def framed(parts: list[bytes]) -> bytes:
    return b"".join(len(p).to_bytes(4, "little") + p for p in parts)


def _check(item) -> None:
    assert item is None or item is decoding.END or isinstance(item, Frame | Rejected), item
    if isinstance(item, Frame):
        assert item.data.nbytes <= LIMIT and item.data.ndim == 2, item.data.shape
        if item.band is not None:  # the rows asked for, of the frame it names
            assert item.band.first_row + len(item.data) <= item.band.shape[0], (item.band, item.data.shape)
            assert item.data.shape[1] == item.band.shape[1], (item.band, item.data.shape)


def _middle_rows(shape, centre):
    """The rows a consumer asks for (``Source.wanted_rows``): the middle third of the frame, at least one."""
    return shape[0] // 3, shape[0] // 3 + max(1, shape[0] // 3)


def _message_target(decoder_type):
    def test_one_input(data: bytes) -> None:
        for wanted in (None, _middle_rows):  # whole frames, and the rows a consumer asked for
            decode = decoder_type("fuzz", LIMIT)
            decode.wanted_rows = wanted
            for parts in (parts_of(data), [data]):
                _check(decode(parts))

    return test_one_input


def hdf5_target(data: bytes) -> None:
    """A file whose frames, chunks and detector metadata come from the input, read as a source."""
    fdp = atheris.FuzzedDataProvider(data)
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as tmp:
        path = Path(tmp) / "fuzz.h5"
        dtype = np.dtype(fdp.PickValueInList(["<u2", "<u4", "<i4", "<f4", "u1"]))
        n, rows, cols = fdp.ConsumeIntInRange(0, 3), fdp.ConsumeIntInRange(1, 40), fdp.ConsumeIntInRange(1, 40)
        compression = fdp.PickValueInList(["none", "bslz4", "lz4"])
        with h5py.File(path, "w") as fh:
            filters = {"bslz4": hdf5plugin.Bitshuffle(cname="lz4"), "lz4": hdf5plugin.LZ4(), "none": {}}[compression]
            dset = fh.create_dataset(
                "entry/data/data",
                shape=(n, rows, cols),
                maxshape=(None, rows, cols),
                dtype=dtype,
                chunks=(1, rows, cols),
                **filters,
            )
            for i in range(n):  # raw chunk bytes, as a corrupt or hostile file holds them
                chunk = fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 4 * rows * cols)) or b"\0"
                dset.id.write_direct_chunk((i, 0, 0), chunk)
            for name in ("image_nr_low", "image_nr_high"):
                if fdp.ConsumeBool():
                    dset.attrs[name] = fdp.PickValueInList(
                        [
                            fdp.ConsumeIntInRange(-(2**63), 2**63 - 1),
                            "abc",
                            np.array([1, 2]),
                            1e300,
                            np.uint64(2**64 - 1),
                        ]
                    )
            det = fh.create_group("entry/instrument/detector")
            for name in ("beam_center_x", "beam_center_y"):
                if fdp.ConsumeBool():
                    det[name] = fdp.PickValueInList([fdp.ConsumeFloat(), "x", np.zeros(fdp.ConsumeIntInRange(0, 3))])
            if fdp.ConsumeBool():
                det["pixel_mask"] = np.ones((fdp.ConsumeIntInRange(1, 40), cols), np.uint32)
        source = sources.FileSource(str(path))
        source.wanted_rows = _middle_rows if fdp.ConsumeBool() else None
        for item in source:
            _check(item)


TARGETS = {
    "v2": _message_target(dectris.Stream2Decoder),
    "v1": _message_target(dectris.Stream1Decoder),
    "cdinn": _message_target(decoding.CdinnDecoder),
    "hdf5": hdf5_target,
}


def write_seeds(folder: Path) -> None:
    """The seed corpus of every target."""
    frames = detector_frames(2, seed=9)
    mask = np.zeros(frames.shape[1:], np.uint32)
    seeds = {
        "v2": [m for c in ("bslz4", "lz4", None) for m in v2_messages(frames, mask, c)],
        "v1": [framed(m) for e in ("bs32-lz4<", "lz4<", "<") for m in v1_messages(frames, e)],
        "cdinn": [framed(frame_message(i, f)) for i, f in enumerate(frames)] + [framed(END_MESSAGE)],
        "hdf5": [bytes(range(256)) * 4, b"\x01" * 64, bslz4(frames[0]), lz4_hdf5(frames[0].tobytes())],
    }
    official = os.environ.get("CDINN_DECTRIS_TEST_DATA")
    if official:
        seeds["v2"] += [p.read_bytes() for p in sorted(Path(official).rglob("*.cbor"))]
    for target, inputs in seeds.items():
        (folder / target).mkdir(parents=True, exist_ok=True)
        for i, data in enumerate(inputs):
            (folder / target / f"seed{i:03d}").write_bytes(data)


if __name__ == "__main__":
    if sys.argv[1] == "seeds":
        write_seeds(Path(sys.argv[2]))
    else:
        target = TARGETS[sys.argv.pop(1)]
        atheris.Setup(sys.argv, target)
        atheris.Fuzz()
