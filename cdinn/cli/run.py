"""``cdinn run`` (a detector source -> reconstructions, live), ``cdinn stream-sim`` and ``cdinn merge``."""

from __future__ import annotations

import argparse

from cdinn.cli.command import Command, command_line
from cdinn.cli.options import add_config_options, add_inversion_options, backend_options, config_from
from cdinn.errors import CdinnError


def run_arguments(p: argparse.ArgumentParser) -> None:
    from cdinn.host.preprocess import PreprocessConfig
    from cdinn.host.runner import RUNNER_BACKEND, RunnerConfig
    from cdinn.host.sources import SourceConfig

    p.add_argument(
        "--source",
        required=True,
        help="FILE.npy, FILE.h5[:/dataset], an NXmx master, a glob, a "
        "folder to watch, tcp://HOST:PORT (ZeroMQ) or pva://CHANNEL (EPICS pvAccess NTNDArray)",
    )
    p.add_argument("--out", required=True, help="output HDF5 file (must not exist)")
    add_inversion_options(p, backend=RUNNER_BACKEND)
    add_config_options(p, PreprocessConfig)
    add_config_options(p, RunnerConfig)
    add_config_options(p, SourceConfig)
    p.add_argument(
        "--publish",
        metavar="pva://PREFIX",
        help="serve amplitude, phase and fit as EPICS pvAccess "
        "NTNDArray channels PREFIX:amplitude, PREFIX:phase, PREFIX:fit (areaDetector viewers show them)",
    )
    p.add_argument(
        "--allow-partial",
        action="store_true",
        help="exit 0 although the source did not reach its "
        "own end (idle timeout, SIGINT/SIGTERM, a lost sender; watched folders and pvAccess have no "
        "end): the output is still marked complete=False and the counts say what was missed",
    )
    p.add_argument("--quiet", action="store_true", help="no live progress line")


def run_run(args: argparse.Namespace) -> None:
    import signal
    import sys
    import threading

    from cdinn.host import output
    from cdinn.host.backends import get_backend, takes_threads
    from cdinn.host.front import open_front
    from cdinn.host.preprocess import PreprocessConfig
    from cdinn.host.runner import RUNNER_INFERENCE_THREADS, Runner, RunnerConfig
    from cdinn.host.sources import SourceConfig
    from cdinn.host.writer import RunWriter
    from cdinn.inversion import parse_refine, refine_label
    from cdinn.model.conventions import GRID, OVERSAMPLED_GRID

    options = backend_options(args)
    if takes_threads(args.backend):
        options.setdefault("threads", RUNNER_INFERENCE_THREADS)
    backend = get_backend(args.backend, net=args.net, **options)
    refiner = parse_refine(args.refine) if args.refine else None
    pre_cfg = config_from(PreprocessConfig, args, output_size=OVERSAMPLED_GRID if refiner else GRID)
    stop = threading.Event()
    runner_cfg = config_from(RunnerConfig, args)
    front = open_front(
        runner_cfg.front, args.source, config_from(SourceConfig, args), pre_cfg, runner_cfg.max_batch, stop
    )
    front.start()  # opens the source and reads --dark and --mask: a bad one stops the run before any output
    publisher = None
    try:
        if args.publish:
            from cdinn.host.pva import PvaPublisher, serving_interfaces

            publisher = PvaPublisher(args.publish)
            where = serving_interfaces()
            print(f"cdinn: serving {', '.join(publisher.channels.values())} on {where}", file=sys.stderr)
        writer = RunWriter(
            args.out,
            output.provenance(
                backend.provenance(),
                command=command_line(args),
                source=args.source,
                net=args.net,
                refine=refine_label(args.refine),
                views=args.views,
            ),
            pre_cfg.as_dict(),
        )
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        runner = Runner(
            front,
            backend,
            writer,
            progress=not args.quiet,
            refiner=refiner,
            refine_workers=runner_cfg.refine_workers,
            publisher=publisher,
            views=args.views,
        )
        summary = runner.run()
    finally:
        front.finish()  # done by the run; here for a failure before it (an existing output, a busy port)
        if publisher is not None:
            publisher.close()
    stages = ", ".join(f"{k} {v:.0f}" for k, v in summary["stage_us_per_frame"].items())
    print(
        f"received {summary['received']} = written {summary['written']} + rejected {summary['rejected']} + "
        f"missed {summary['missed']} ({summary['refined']} refined); {summary['frames_per_s']:.0f} frames/s "
        f"(first frame to last); latency p50 {summary['latency_ms_p50']:.2f} ms, p99 "
        f"{summary['latency_ms_p99']:.2f} ms; us/frame: {stages} -> {args.out}"
    )
    if not runner.complete and not (args.allow_partial and summary["written"]):
        raise CdinnError(
            f"the source did not reach its own end (idle timeout, a signal, a lost sender or a failed "
            f"file; see above); the {summary['written']} frames written are kept in {args.out}, marked "
            "complete=False (--allow-partial: exit 0 for such runs)"
        )
    if summary["written"] == 0:
        raise CdinnError(f"no frame was reconstructed: all {summary['received']} frames received were rejected")


def stream_sim_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--frames",
        required=True,
        help="frames to send: FILE.npy, FILE.h5[:/dataset], an NXmx master, TIFF or a glob (read as cdinn run "
        "reads files; the kind a file declares is sent with each frame)",
    )
    p.add_argument("--endpoint", default="tcp://127.0.0.1:5555", help="bound endpoint (default: loopback, 5555)")
    p.add_argument("--rate", type=float, help="frames per second (default: as fast as possible)")
    p.add_argument("--mode", choices=("push", "pub"), default="push", help="ZeroMQ socket (default: push)")
    p.add_argument("--consumers", type=int, default=1, help="end-of-stream markers to send (default: 1)")
    p.add_argument("--count", type=int, help="send this many frames (cycling through the file)")
    p.add_argument("--connect-wait", type=float, default=0.5, help="seconds to wait for consumers (default: 0.5)")


def stream_sim_run(args: argparse.Namespace) -> None:
    import numpy as np

    from cdinn.host.sources import read_stack
    from cdinn.host.stream_sim import stream

    frames, kind = read_stack(args.frames)
    if args.count:
        frames = np.resize(frames, (args.count, *frames.shape[1:]))
    report = stream(frames, args.endpoint, args.rate, args.mode, args.consumers, args.connect_wait, kind=kind)
    print(
        f"sent {report['sent']} frames in {report['seconds']:.2f} s ({report['rate']:.0f} frames/s) on {args.endpoint}"
    )


def merge_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", help="run outputs to merge")
    p.add_argument("--out", required=True, help="merged HDF5 file (written atomically)")


def merge_run(args: argparse.Namespace) -> None:
    import sys

    from cdinn.host.merge import merge

    report = merge(args.inputs, args.out)
    print(f"merged {report['frames']} frames and {report['rejected']} rejections -> {args.out}")
    if report["missing"]:
        print(f"missing frame numbers ({len(report['missing'])}): {report['missing'][:50]}", file=sys.stderr)
    if report["duplicates"]:
        print(f"duplicated frame numbers: {report['duplicates'][:50]}", file=sys.stderr)


COMMANDS = [
    Command(
        "run",
        "reconstruct frames from a detector source, as fast as they come",
        "Frames from --source are validated, masked, preprocessed (dark/background subtraction in counts, "
        "centring, crop, binning to 32x32, intensities -> amplitudes), reconstructed by --backend in adaptive "
        "batches and written incrementally to --out (NeXus HDF5, readable during the run). Bad frames are "
        "rejected with a reason; SIGINT/SIGTERM stop the source and close the file cleanly.",
        run_arguments,
        run_run,
    ),
    Command(
        "stream-sim",
        "replay frames onto a ZeroMQ socket at a given rate",
        "Send frames as cdinn's JSON header + raw bytes messages on a bound PUSH or PUB socket, then one end "
        "marker per consumer.",
        stream_sim_arguments,
        stream_sim_run,
        units=False,
    ),
    Command(
        "merge",
        "merge several runners' outputs in frame order",
        "Combine run outputs into one HDF5 file sorted by frame number; reports missing and duplicated frame numbers.",
        merge_arguments,
        merge_run,
        units=False,
    ),
]
