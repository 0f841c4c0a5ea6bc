"""``cdinn reconstruct`` (frames from a file to reconstructions, in one process or on Dask) and
``cdinn phase-retrieve`` (ER/HIO alone)."""

from __future__ import annotations

import argparse

from cdinn.cli.command import Command, command_line
from cdinn.cli.options import add_config_options, add_inversion_options, backend_options, config_from

# PreprocessConfig fields of the batch commands (what the frames hold, and the settings for detector-size frames)
DETECTOR_OPTIONS = ("input_kind", "centre_pixel", "mask", "crop", "binning", "beamstop", "saturation")


def reconstruct_arguments(p: argparse.ArgumentParser) -> None:
    from cdinn.host.distributed import ClusterConfig
    from cdinn.host.preprocess import PreprocessConfig
    from cdinn.host.sources import SourceConfig

    p.add_argument(
        "input",
        help="FRAMES.npy, FILE.h5, FILE.h5:/path/to/dataset or an NXmx master: (N,32,32) "
        "patterns, or detector-size frames preprocessed as `cdinn run` does",
    )
    p.add_argument("output", help="output HDF5 file (written atomically)")
    add_inversion_options(p)
    add_config_options(p, PreprocessConfig, only=DETECTOR_OPTIONS)
    add_config_options(p, SourceConfig, only=("channel",))
    add_config_options(p, ClusterConfig)


def reconstruct_run(args: argparse.Namespace) -> None:
    from cdinn.host.distributed import ClusterConfig
    from cdinn.host.preprocess import PreprocessConfig
    from cdinn.host.sources import SourceConfig
    from cdinn.io import check_output

    check_output(args.output, [args.input, *([args.mask] if getattr(args, "mask", None) else [])])
    preprocess = config_from(PreprocessConfig, args, only=DETECTOR_OPTIONS)
    channel = config_from(SourceConfig, args, only=("channel",)).channel
    cluster = config_from(ClusterConfig, args)
    if cluster.cluster:
        from cdinn.host.distributed import reprocess

        counts = reprocess(
            args.input,
            args.output,
            cluster.cluster,
            net=args.net,
            preprocess=preprocess,
            refine=args.refine,
            chunk=cluster.chunk,
            run={"command": command_line(args)},
            backend=args.backend,
            backend_options=backend_options(args),
            channel=channel,
            views=args.views,
        )
        print(
            f"reconstructed {counts['written']} of {counts['frames']} frame(s) in {counts['chunks']} chunks on "
            f"{cluster.cluster}, {counts['rejected']} rejected -> {args.output}"
        )
        return
    _reconstruct_here(args, preprocess, channel)


def _reconstruct_here(args: argparse.Namespace, preprocess, channel: str | None) -> None:
    """Block by block (:data:`cdinn.host.batch_input.BLOCK_FRAMES` frames at a time: memory independent of the
    file's length) into a temporary file beside the output, renamed over it only when every block is done. A
    frame that cannot be reconstructed is rejected with its reason (``rejected/frame_number``, ``reason``) and
    the others are kept, as ``cdinn run`` and the Dask path do; a file with no good frame is an error."""
    import numpy as np

    from cdinn.host import output
    from cdinn.host.backends import cached_backend
    from cdinn.host.batch_input import batch_provenance, detector_preprocessor, invert_block, iter_patterns
    from cdinn.inversion import parse_refine
    from cdinn.io import atomic_hdf5
    from cdinn.model.conventions import GRID, OVERSAMPLED_GRID

    size = OVERSAMPLED_GRID if args.refine else GRID
    engine = cached_backend(args.backend, args.net, tuple(sorted(backend_options(args).items())))
    refine = parse_refine(args.refine)
    fits, hidden, refined, rejected = [], [], 0, []
    prepare = detector_preprocessor(preprocess, size)  # the user's mask and dark frame, read once, before any frame
    with atomic_hdf5(args.output) as fh:
        output.create(fh, compression="gzip")
        provenance = batch_provenance(
            engine.provenance(), args.input, args.net, args.refine, args.views, command=command_line(args)
        )
        output.describe(fh, provenance, prepare.cfg.as_dict())
        for loaded in iter_patterns(args.input, size, prepare, channel=channel):
            rejected += loaded.rejected
            output.reject(fh, loaded.rejected)
            if not len(loaded.numbers):
                continue
            fields = invert_block(engine, loaded, refine, args.views)
            output.append(fh, fields)
            fits.append(fields["fit"])
            hidden.append(fields["unconstrained"])
            refined += int(np.sum(fields["refined"]))
        output.check_written(fh)
        fit, unconstrained = np.concatenate(fits), np.concatenate(hidden)
        output.finish(
            fh,
            {
                "received": len(fit) + len(rejected),
                "written": len(fit),
                "rejected": len(rejected),
                "missed": 0,
                "refined": refined,
            },
            complete=True,
            preprocess=prepare.applied_config().as_dict(),
        )
    note = (
        f", {len(rejected)} rejected (first: frame {rejected[0][0]} {rejected[0][1].removeprefix('frame ')})"
        if rejected
        else ""
    )
    unchecked = f", median unconstrained {float(np.median(unconstrained)):.2f}" if unconstrained.any() else ""
    print(
        f"reconstructed {len(fit)} frame(s), {refined} refined, median fit {float(np.median(fit)):.3g}"
        f"{unchecked}{note} -> {args.output}"
    )


def phase_retrieve_arguments(p: argparse.ArgumentParser) -> None:
    from cdinn.host.preprocess import PreprocessConfig
    from cdinn.model.phase_retrieval import PhaseRetrievalConfig

    p.add_argument("input", help="FRAMES.npy, FILE.h5[:/path/to/dataset], an NXmx master, TIFF or a glob")
    p.add_argument("output", help="output HDF5 file (written atomically)")
    add_config_options(p, PhaseRetrievalConfig)
    add_config_options(p, PreprocessConfig, only=("input_kind",))


def phase_retrieve_run(args: argparse.Namespace) -> None:
    import numpy as np

    from cdinn.host.preprocess import PreprocessConfig
    from cdinn.host.sources import read_stack
    from cdinn.io import check_output, write_arrays
    from cdinn.model.phase_retrieval import PhaseRetrievalConfig, phase_retrieve
    from cdinn.model.validation import frame_kind, validate_frames

    check_output(args.output, [args.input])
    frames, declared = read_stack(args.input)
    kind = frame_kind(config_from(PreprocessConfig, args, only=("input_kind",)).input_kind, declared, frames.dtype)
    amplitudes, mask = validate_frames(frames, size=None, intensity=kind == "intensity")
    cfg = config_from(PhaseRetrievalConfig, args)
    obj = phase_retrieve(amplitudes, cfg, mask=mask)
    write_arrays(
        args.output,
        {"amplitude": np.abs(obj), "phase": np.angle(obj)},
        {"source": args.input, "recipe": str(cfg.as_dict()), "command": command_line(args)},
    )
    print(f"phase-retrieved {len(obj)} frame(s) ({cfg.iterations} iterations) -> {args.output}")


COMMANDS = [
    Command(
        "reconstruct",
        "reconstruct frames from a file with the networks",
        "Reconstruct diffraction frames with a network set (the onnxruntime backend by default), optionally "
        "refining them with NN-seeded ER/HIO; writes amplitude, phase (radians), the per-frame fit error and "
        "frame numbers to HDF5. Detector-size frames go through the preprocessing of `cdinn run`.",
        reconstruct_arguments,
        reconstruct_run,
    ),
    Command(
        "phase-retrieve",
        "ER/HIO + shrink-wrap on oversampled frames",
        "Iterative phase retrieval (the paper's recipe) on (N,M,M) oversampled amplitudes; writes 'amplitude' "
        "and 'phase' (radians), unregistered.",
        phase_retrieve_arguments,
        phase_retrieve_run,
    ),
]
