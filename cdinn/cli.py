"""The ``cdinn`` command line: one subcommand per pipeline stage.

Bad input gives one line on stderr, ``cdinn: error: ...``, and exit status 2.
"""

from __future__ import annotations

import argparse
import shlex
import sys

import numpy as np

from cdinn import quiet
from cdinn.errors import CdinnError
from cdinn.quantize.config import QuantConfig

ARCHITECTURE_NAMES = ("paper", "edge", "robust")  # cdinn.model.architectures.ARCHITECTURES, without TensorFlow
QUANT = QuantConfig()  # the quantization recipe's defaults, shown and used by `cdinn quantize`
UNITS = """conventions: diffraction frames are amplitudes |FT| (or intensities |FT|^2 with --intensity),
zero frequency at the centre pixel [N/2, N/2] (fftshift); any overall scale is fine (each frame is
normalised to its maximum). Objects: amplitude in [0, 1] and phase in radians in [-pi, pi], on an
N x N grid (N = 32 for the networks; 2N x 2N 'oversampled' patterns for ER/HIO phase retrieval).
Input files: FRAMES.npy, FILE.h5 (NeXus default signal, else dataset 'diffraction') or FILE.h5:/path."""


def _command_line(args: argparse.Namespace) -> str:
    """The command as typed, for reports ('made by ...')."""
    return "cdinn " + " ".join(shlex.quote(a) for a in args.argv)


def cmd_simulate(args: argparse.Namespace) -> None:
    from cdinn.model.simulate import distribution
    from cdinn.model.simulate_io import write_simulation

    cfg = distribution(args.data, size=args.size, position=args.position, photons=args.photons,
                       phase_family=args.family)
    write_simulation(args.out, args.n, args.seed, cfg, oversampled=args.oversampled, chunk=args.chunk)
    print(f"wrote {args.n} patterns to {args.out}")


# `cdinn train` options: name -> default. A recipe file (--recipe) sets any of them; options typed on the
# command line override the recipe.
TRAIN_DEFAULTS = {"net": "both", "config": "paper", "data": "paper", "examples": 180_000, "val": 20_000, "epochs": 10,
                  "batch": 64, "lr": 1e-3, "loss": "twin", "lr_schedule": "cosine", "photons": None,
                  "noise_fraction": 0.75, "fresh": True, "init": None, "seed": 0, "data_shards": 1}


def train_options(args: argparse.Namespace) -> dict:
    """The defaults, overridden by the recipe file's keys, overridden by the options given."""
    from cdinn.io import read_yaml

    options = dict(TRAIN_DEFAULTS)
    if args.recipe:
        recipe = read_yaml(args.recipe, "training recipe")
        unknown = set(recipe) - set(TRAIN_DEFAULTS)
        if unknown:
            raise CdinnError(f"training recipe {args.recipe} has unknown keys {sorted(unknown)}; "
                             f"known: {sorted(TRAIN_DEFAULTS)}")
        options.update(recipe)
    options.update({k: v for k, v in vars(args).items() if k in TRAIN_DEFAULTS})
    return options


def cmd_train(args: argparse.Namespace) -> None:
    from cdinn.model.simulate import distribution
    from cdinn.model.train import TrainConfig, train

    o = train_options(args)
    nets = ("shape", "phase") if o["net"] == "both" else (o["net"],)
    photons = tuple(map(float, o["photons"])) if o["photons"] else None
    cfg = TrainConfig(nets=nets, config=o["config"], examples=o["examples"], val=o["val"], epochs=o["epochs"],
                      batch=o["batch"], learning_rate=o["lr"], loss=o["loss"], seed=o["seed"],
                      lr_schedule=o["lr_schedule"], photon_range=photons,
                      noise_fraction=o["noise_fraction"], fresh=o["fresh"], init=o["init"],
                      data_shards=o["data_shards"], simulation=distribution(o["data"]))
    for net, s in train(cfg, args.out).items():
        print(f"{net}: best val loss {s['val_loss']:.4f} at epoch {s['best_epoch']}, "
              f"{s['parameters']} parameters, {s['macs']} MACs, {s['wall_time_s']} s -> {args.out}/{net}.keras")


def cmd_ablation(args: argparse.Namespace) -> None:
    from cdinn.model.ablation import markdown_table, run_ablation
    from cdinn.model.train import TrainConfig

    base = TrainConfig(config=args.config, examples=args.examples, val=args.val, epochs=args.epochs, seed=args.seed)
    variants = args.variants.split(",") if args.variants else None
    report = run_ablation(base, args.out, test_n=args.test, variants=variants, command=_command_line(args))
    print(markdown_table(report))


def cmd_refine_curve(args: argparse.Namespace) -> None:
    from cdinn.model.refine_curve import markdown_table, refine_curve

    iterations = [int(v) for v in args.iterations.split(",")]
    report = refine_curve(args.net, args.n, iterations, args.out, command=_command_line(args))
    print(markdown_table(report))


def cmd_noise_sweep(args: argparse.Namespace) -> None:
    from cdinn.model.noise_sweep import markdown_table, noise_sweep

    photons = [float(v) for v in args.photons.split(",")]
    print(markdown_table(noise_sweep(args.net, args.n, photons, args.out, command=_command_line(args))))


def cmd_evaluate(args: argparse.Namespace) -> None:
    from cdinn.model.evaluate import EvaluateConfig, evaluate, markdown_table
    from cdinn.model.phase_retrieval import PhaseRetrievalConfig

    refine = args.refine if args.refine == "auto" else int(args.refine)
    cfg = EvaluateConfig(n=args.n, seed=args.seed, data=args.data, nets=tuple(args.nets.split(",")),
                         photons=args.photons, phase_retrieval=PhaseRetrievalConfig(iterations=args.iterations),
                         latency_repeats=args.latency_repeats, refine=refine, family_n=args.family_n)
    report = evaluate(cfg, args.out, update_cards=args.update_cards, command=_command_line(args))
    print(markdown_table(report))
    print(f"report, table and figures in {args.out}")


def cmd_reconstruct(args: argparse.Namespace) -> None:
    import json

    from cdinn.api import cached_backend, reconstruct
    from cdinn.host.batch_input import load_patterns
    from cdinn.host.preprocess import PreprocessConfig
    from cdinn.io import write_arrays

    refine = args.refine if args.refine == "auto" else int(args.refine)
    centre_pixel = tuple(int(v) for v in args.centre_pixel.split(",")) if args.centre_pixel else None
    if args.cluster:
        from cdinn.host.distributed import reprocess

        counts = reprocess(args.input, args.output, args.cluster, net=args.net, intensity=args.intensity,
                           preprocess=PreprocessConfig(centre_pixel=centre_pixel, mask=args.mask, crop=args.crop),
                           refine=refine, chunk=args.chunk, attrs={"command": _command_line(args)})
        print(f"reconstructed {counts['written']} of {counts['frames']} frame(s) in {counts['chunks']} chunks on "
              f"{args.cluster}, {counts['rejected']} rejected -> {args.output}")
        if counts["written"] == 0:
            raise CdinnError(f"no frame was reconstructed: all {counts['frames']} frames were rejected")
        return
    patterns, numbers, intensity = load_patterns(args.input, 64 if refine else 32, args.intensity,
                                                 PreprocessConfig(centre_pixel=centre_pixel, mask=args.mask,
                                                                  crop=args.crop))
    result = reconstruct(patterns, net=args.net, backend=args.backend, intensity=intensity, refine=refine)
    provenance = cached_backend(args.backend, args.net).provenance()
    attrs = {"source": args.input, "net": args.net, "intensity_input": args.intensity, "phase_units": "radians",
             "refine": str(args.refine), "command": _command_line(args), "provenance": json.dumps(provenance),
             **{k: v for k, v in provenance.items() if k.endswith("sha256")}}
    arrays = {"amplitude": result.amplitude, "phase": result.phase, "fit": result.fit,
              "fit_before": result.fit_before, "iterations": result.iterations, "refined": result.refined,
              "frame_number": numbers}
    write_arrays(args.output, arrays, attrs)
    count = len(result.amplitude)
    print(f"reconstructed {count} frame(s), {int(np.sum(result.refined))} refined, median fit "
          f"{float(np.median(result.fit)):.3g} -> {args.output}")


def cmd_phase_retrieve(args: argparse.Namespace) -> None:
    import numpy as np

    from cdinn.io import read_frames, write_arrays
    from cdinn.model.phase_retrieval import PhaseRetrievalConfig, phase_retrieve
    from cdinn.model.validation import validate_frames

    amplitudes = validate_frames(read_frames(args.input), size=None, intensity=args.intensity)
    cfg = PhaseRetrievalConfig(iterations=args.iterations, seed=args.seed)
    obj = phase_retrieve(amplitudes, cfg)
    write_arrays(args.output, {"amplitude": np.abs(obj), "phase": np.angle(obj)},
                 {"source": args.input, "recipe": str(cfg.as_dict()), "command": _command_line(args)})
    print(f"phase-retrieved {len(obj)} frame(s) ({args.iterations} iterations) -> {args.output}")


def _layer_bits(text: str) -> dict[str, int]:
    if not text:
        return {}
    try:
        return {k.strip(): int(v) for k, v in (item.split("=") for item in text.split(","))}
    except ValueError:
        raise CdinnError(f"--layer-bits must look like 'enc0_conv0=6,out_conv=10', got {text!r}") from None


def cmd_quantize(args: argparse.Namespace) -> None:
    from cdinn.quantize.pipeline import quantize_networks

    nets = ("shape", "phase") if args.net == "both" else (args.net,)
    cfg = QuantConfig(weight_bits=args.bits, activation_bits=args.activation_bits, input_bits=args.input_bits,
                      output_bits=args.output_bits, weight_bits_per_layer=_layer_bits(args.layer_bits),
                      sparsity=args.sparsity, examples=args.examples, epochs=args.epochs,
                      prune_epochs=args.prune_epochs, learning_rate=args.lr, seed=args.seed)
    report = quantize_networks(args.source, nets, cfg, args.out, test_n=args.test, command=_command_line(args))
    from cdinn.quantize.pipeline import markdown_table

    print(markdown_table(report))
    print(f"quantized networks, cards and report in {args.out}")


def cmd_firmware(args: argparse.Namespace) -> None:
    from cdinn.firmware.build import FirmwareBuildConfig, build
    from cdinn.firmware.report import markdown_report

    cfg = FirmwareBuildConfig(source=args.source, float_source=args.float_source, config=args.config,
                              out_dir=args.out, combined=not args.no_combined, validate_patterns=args.validate,
                              compare_patterns=args.compare, workers=args.workers)
    report = build(cfg, stop_after=args.stop_after)
    print(markdown_report(report))
    if "validate" in report["steps"] and not report.get("bit_exact"):
        raise CdinnError(f"emulation is not bit-exact with the QKeras model; see {args.out}/report.md")


def cmd_csim(args: argparse.Namespace) -> None:
    from pathlib import Path

    from cdinn.firmware.csim import run_csim

    build = Path(args.build)
    projects = sorted(p.parent for p in build.glob("*/manifest.json")) or [build]
    failed = []
    for project in projects:
        r = run_csim(project)
        print(f"{project}: {r['patterns']} patterns, {r['values']} values, max |csim - expected| "
              f"{r['max_abs_difference']:.3g} (tolerance {r['tolerance']:.3g}): {'PASS' if r['passed'] else 'FAIL'}")
        failed += [] if r["passed"] else [str(project)]
    if failed:
        raise CdinnError(f"C simulation differs from the expected predictions in {', '.join(failed)}")


def cmd_synth(args: argparse.Namespace) -> None:
    from cdinn.firmware.synth import require_vendor_tool, synthesize

    require_vendor_tool(args.project)
    import hls4ml

    from cdinn.firmware.convert import tf_keras_as_keras

    with tf_keras_as_keras():
        model = hls4ml.converters.link_existing_project(args.project)
    print(synthesize(model, args.project, cosim=not args.no_cosim))


def cmd_run(args: argparse.Namespace) -> None:
    import signal
    import threading

    from cdinn.host.backends import get_backend
    from cdinn.host.preprocess import PreprocessConfig, Preprocessor
    from cdinn.host.runner import Runner
    from cdinn.host.sources import open_source
    from cdinn.host.writer import RunWriter
    from cdinn.model.refine import AutoRefineConfig

    options = {"keras": {}, "onnx": {"threads": args.threads},
               "emulator": {"project": args.project, "quantized": args.quantized},
               "fpga": {"bitstream": args.bitstream, "project": args.project}}[args.backend]
    backend = get_backend(args.backend, net=args.net, **options)
    centre_pixel = tuple(int(v) for v in args.centre_pixel.split(",")) if args.centre_pixel else None
    refiner = AutoRefineConfig() if args.refine == "auto" else None
    pre_cfg = PreprocessConfig(input_kind=args.input_kind, dark=args.dark, background=args.background,
                               centre=args.centre, centre_pixel=centre_pixel, crop=args.crop,
                               output_size=64 if refiner else 32, mask=args.mask)
    preprocessor = Preprocessor(pre_cfg)
    stop = threading.Event()
    source = open_source(args.source, idle_timeout=args.idle_timeout, stop=stop, zmq_mode=args.zmq_mode,
                         zmq_bind=args.zmq_bind, stream_format=args.format)
    writer = RunWriter(args.out, dict(backend.provenance(), command=_command_line(args), source=args.source),
                       pre_cfg.as_dict())
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    publisher = None
    if args.publish:
        from cdinn.host.pva import PvaPublisher

        publisher = PvaPublisher(args.publish)
    runner = Runner(source, backend, writer, preprocessor, max_batch=args.max_batch, stop=stop,
                    progress=not args.quiet, refiner=refiner, refine_workers=args.refine_workers, publisher=publisher)
    try:
        summary = runner.run()
    finally:
        if publisher is not None:
            publisher.close()
    print(f"received {summary['received']} = written {summary['written']} + rejected {summary['rejected']} "
          f"({summary['refined']} refined; {summary['missed']} missed by the source); "
          f"{summary['frames_per_s']:.0f} frames/s; latency p50 {summary['latency_ms_p50']:.2f} ms, "
          f"p99 {summary['latency_ms_p99']:.2f} ms -> {args.out}")
    if not runner.source_ok:
        raise CdinnError(f"the source did not end normally (see the rejections above); the {summary['written']} "
                         f"frames written are kept in {args.out}, marked incomplete")
    if summary["written"] == 0:
        raise CdinnError(f"no frame was reconstructed: all {summary['received']} frames received were rejected")


def cmd_stream_sim(args: argparse.Namespace) -> None:
    from cdinn.host.stream_sim import stream
    from cdinn.io import read_frames

    frames = read_frames(args.source)
    if frames.ndim == 2:
        frames = frames[None]
    if args.count:
        frames = np.resize(frames, (args.count, *frames.shape[1:]))
    report = stream(frames, args.endpoint, args.rate, args.mode, args.consumers, args.connect_wait)
    print(f"sent {report['sent']} frames in {report['seconds']:.2f} s ({report['rate']:.0f} frames/s) "
          f"on {args.endpoint}")


def cmd_merge(args: argparse.Namespace) -> None:
    from cdinn.host.merge import merge

    report = merge(args.inputs, args.out)
    print(f"merged {report['frames']} frames and {report['rejected']} rejections -> {args.out}")
    if report["missing"]:
        print(f"missing frame numbers ({len(report['missing'])}): {report['missing'][:50]}", file=sys.stderr)
    if report["duplicates"]:
        print(f"duplicated frame numbers: {report['duplicates'][:50]}", file=sys.stderr)


def cmd_export_onnx(args: argparse.Namespace) -> None:
    from cdinn.host.onnx_export import export_onnx

    report = export_onnx(args.net, args.out)
    for name, diff in report["max_abs_difference"].items():
        print(f"{report['folder']}/{name}: max |onnxruntime - keras| = {diff:.2e}")


def cmd_baseline(args: argparse.Namespace) -> None:
    from cdinn.host.baseline import markdown_table, run_baseline, write_report

    report = run_baseline(args.net, n=args.n, batch=args.batch, repeats=args.repeats,
                          erhio_patterns=args.erhio_patterns, iterations=args.iterations,
                          emulator_project=args.project, quantized=args.quantized)
    report["command"] = _command_line(args)
    write_report(report, args.out)
    print(markdown_table(report))
    print(f"written to {args.out}")


def cmd_bench_report(args: argparse.Namespace) -> None:
    from cdinn.host.bench_report import report

    md, png = report(args.storage, args.out)
    print(md.read_text())
    print(f"table {md}, plot {png}")


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="cdinn", description=__doc__.splitlines()[0], epilog=UNITS,
                                     formatter_class=fmt)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("simulate", help="write simulated patterns and objects to HDF5", epilog=UNITS,
                       formatter_class=fmt, description="Simulate convex objects with smooth phase fields and "
                       "their diffraction amplitudes; writes 'diffraction' (N,S,S) amplitudes, 'amplitude', "
                       "'phase' (radians) and, with --oversampled, 'diffraction_oversampled' (N,2S,2S).")
    p.add_argument("--n", type=int, required=True, help="number of patterns")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output HDF5 file")
    p.add_argument("--size", type=int, default=32, help="grid size S in pixels (default 32)")
    p.add_argument("--data", choices=("broad", "paper"), default="broad",
                   help="distribution: the broad one (phase gradients to ~2 rad/px, objects from ~20 px) or the "
                   "paper's Methods ranges")
    p.add_argument("--family", choices=("gratings", "zernike", "defect", "noise"), default="gratings",
                   help="phase-field family (the networks train on gratings; the others are held out)")
    p.add_argument("--position", choices=("centred", "random"), default="centred",
                   help="support centre of mass at the grid centre, or anywhere the object fits")
    p.add_argument("--photons", type=float, help="Poisson noise at this total photon count per pattern")
    p.add_argument("--oversampled", action="store_true", help="also store the 2x oversampled pattern")
    p.add_argument("--chunk", type=int, default=10_000, help="patterns generated per step")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("train", help="train the shape and/or phase networks", epilog=UNITS, formatter_class=fmt,
                       description="Train sCDI NN (shape) and/or pCDI NN (phase) on freshly simulated data; "
                       "writes <net>.keras, <net>.card.json, <net>.log.csv and <net>.loss.png to --out. With a "
                       "TF_CONFIG describing several workers, every worker runs the same command and trains with "
                       "MultiWorkerMirroredStrategy (each simulates its own data shard; the chief writes --out).")
    d = TRAIN_DEFAULTS
    p.add_argument("--recipe", help="YAML file of training options (keys as the option names, e.g. "
                   "model/recipes/robust-stage1.yml); options given here override it")
    p.add_argument("--net", choices=("shape", "phase", "both"), default=argparse.SUPPRESS, help=f"({d['net']})")
    p.add_argument("--config", choices=sorted(ARCHITECTURE_NAMES), default=argparse.SUPPRESS,
                   help=f"architecture ({d['config']})")
    p.add_argument("--data", choices=("paper", "broad"), default=argparse.SUPPRESS, help="training distribution: "
                   f"the paper's Methods ranges or the broad one (cdinn.model.simulate) ({d['data']})")
    p.add_argument("--examples", type=int, default=argparse.SUPPRESS, help=f"training patterns ({d['examples']})")
    p.add_argument("--val", type=int, default=argparse.SUPPRESS, help=f"validation patterns ({d['val']})")
    p.add_argument("--epochs", type=int, default=argparse.SUPPRESS, help=f"({d['epochs']})")
    p.add_argument("--batch", type=int, default=argparse.SUPPRESS, help=f"({d['batch']})")
    p.add_argument("--lr", type=float, default=argparse.SUPPRESS, help=f"Adam learning rate ({d['lr']})")
    p.add_argument("--loss", default=argparse.SUPPRESS, help="training loss: 'bce' (the paper's per-pixel "
                   "cross-entropy, each network alone), 'joint' or 'twin' (both networks together; twin image "
                   "accepted), 'twin+chi2' (plus the reciprocal-space error of the predicted object), "
                   "'twin+support' (plus a soft support-IoU term), 'twin+support+chi2' (both) "
                   f"({d['loss']})")
    p.add_argument("--lr-schedule", choices=("constant", "cosine"), default=argparse.SUPPRESS,
                   help=f"({d['lr_schedule']})")
    p.add_argument("--photons", type=float, nargs=2, metavar=("LOW", "HIGH"), default=argparse.SUPPRESS,
                   help="Poisson-noise augmentation at log-uniform photon counts in [LOW, HIGH] (none)")
    p.add_argument("--noise-fraction", type=float, default=argparse.SUPPRESS,
                   help=f"fraction of examples --photons applies to ({d['noise_fraction']})")
    p.add_argument("--fresh", action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                   help="simulate EXAMPLES new training patterns for every epoch (on the fly), not one reused set "
                   f"({d['fresh']})")
    p.add_argument("--init", metavar="NETS", default=argparse.SUPPRESS, help="start from this network set's "
                   "weights (shipped name or folder; same --config) instead of random ones: fine-tuning")
    p.add_argument("--seed", type=int, default=argparse.SUPPRESS, help=f"({d['seed']})")
    p.add_argument("--data-shards", type=int, default=argparse.SUPPRESS, help="independently seeded data shards "
                   "per batch (a multi-worker run under TF_CONFIG uses one per worker; one process with the same "
                   f"number sees the same batches) ({d['data_shards']})")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("ablation", help="train recipe variants and score them on one test set",
                       description="Train each variant of the training recipe (see cdinn.model.ablation.VARIANTS) with "
                       "the same data budget and seed, and score all on the same test patterns; writes table.md.")
    p.add_argument("--config", choices=("paper", "edge"), default="edge")
    p.add_argument("--examples", type=int, default=60_000)
    p.add_argument("--val", type=int, default=10_000)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test", type=int, default=1000, help="test patterns")
    p.add_argument("--variants", default="", help="comma-separated subset (default: all)")
    p.add_argument("--out", default="results/ablation")
    p.set_defaults(func=cmd_ablation)

    p = sub.add_parser("refine-curve", help="quality vs iterations: NN-seeded refinement vs ER/HIO",
                       description="Median metrics and time per pattern for NN-seeded ER/HIO refinement and for "
                       "ER/HIO from random starts at each iteration count, on the same test patterns, in one run.")
    p.add_argument("--net", default="default")
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--iterations", default="0,10,20,30,50,100,200,620")
    p.add_argument("--out", default="results/refine")
    p.set_defaults(func=cmd_refine_curve)

    p = sub.add_parser("noise-sweep", help="metrics against Poisson photon count",
                       description="Score a network set on the same objects, noiseless and with Poisson counting "
                       "noise at each total photon count per pattern; writes a table and a plot.")
    p.add_argument("--net", default="default")
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--photons", default="1e4,1e5,1e6,1e7", help="comma-separated photon counts per pattern")
    p.add_argument("--out", default="results/noise")
    p.set_defaults(func=cmd_noise_sweep)

    p = sub.add_parser("evaluate", help="networks vs ER/HIO on a fresh test set", epilog=UNITS,
                       formatter_class=fmt, description="Score the float networks and ER/HIO phase retrieval "
                       "side by side on the same simulated patterns (random positions), with metrics "
                       "invariant to shift, twin image and global phase; writes report.json, table.md, "
                       "per-pattern metrics and figures.")
    p.add_argument("--n", type=int, default=1000, help="test patterns")
    p.add_argument("--seed", type=int, default=20_181_009)
    p.add_argument("--data", choices=("broad", "paper"), default="broad", help="test distribution")
    p.add_argument("--family-n", type=int, default=300, help="patterns per held-out phase family")
    p.add_argument("--nets", default="default,paper,edge", help="comma-separated network sets (names or folders)")
    p.add_argument("--iterations", type=int, default=620, help="ER/HIO iterations")
    p.add_argument("--photons", type=float, help="Poisson noise at this total photon count per pattern")
    p.add_argument("--latency-repeats", type=int, default=200, help="batch-1 network timings per set")
    p.add_argument("--update-cards", action="store_true", help="record the metrics in the model cards")
    p.add_argument("--refine", default="0", metavar="K|auto",
                   help="also score the first set seeding K ER/HIO iterations, or automatic refinement ('auto')")
    p.add_argument("--out", default="results/evaluation", help="output folder")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("reconstruct", help="diffraction frames -> amplitude and phase (HDF5)", epilog=UNITS,
                       formatter_class=fmt, description="Reconstruct (N,32,32) or (32,32) frames with a "
                       "network set; larger (detector) frames, NXmx masters included, go through the same "
                       "masking, centring, cropping and binning as `cdinn run`. Writes 'amplitude' (in [0, 1]), "
                       "'phase' (radians), 'frame_number', the per-frame fit error "
                       "'fit' (chi^2 against the measured pattern at the best scale; 'fit_before': the network's "
                       "own), 'iterations' and 'refined' to OUTPUT.")
    p.add_argument("input", help="FRAMES.npy, FILE.h5 or FILE.h5:/path/to/dataset")
    p.add_argument("output", help="output HDF5 file (written atomically)")
    p.add_argument("--net", default="default", help="network set: default, paper, edge, robust or a folder")
    p.add_argument("--backend", choices=("onnx", "keras", "emulator", "fpga"), default="onnx",
                   help="inference backend (onnx: the fastest exact float path)")
    p.add_argument("--intensity", action="store_true", help="frames are intensities (counts), not amplitudes")
    p.add_argument("--centre-pixel", help="detector-size frames: zero-frequency pixel as ROW,COL (else the "
                   "beam centre the file records, else the frame's middle pixel)")
    p.add_argument("--mask", help="detector-size frames: bad-pixel mask (.npy or HDF5 spec, nonzero = bad)")
    p.add_argument("--crop", type=int, help="detector-size frames: crop window (pixels, multiple of 32)")
    p.add_argument("--cluster", metavar="local:N|tcp://HOST:PORT", help="reprocess on Dask distributed: a "
                   "LocalCluster of N worker processes, or an existing scheduler; frames are read, preprocessed "
                   "and reconstructed on the workers in chunks, bad frames are rejected with reasons")
    p.add_argument("--chunk", type=int, default=256, help="frames per Dask task (with --cluster)")
    p.add_argument("--refine", default="0", metavar="K|auto",
                   help="frames are 2x oversampled (N,64,64) patterns; the networks' result seeds K ER/HIO "
                   "iterations, or with 'auto' only badly fitting frames are refined, each until its fit stops "
                   "improving")
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser("phase-retrieve", help="ER/HIO + shrink-wrap on oversampled frames", epilog=UNITS,
                       formatter_class=fmt, description="Iterative phase retrieval (the paper's recipe) on "
                       "(N,M,M) oversampled amplitudes; writes 'amplitude' and 'phase' (radians), unregistered.")
    p.add_argument("input", help="FRAMES.npy, FILE.h5 or FILE.h5:/path/to/dataset")
    p.add_argument("output", help="output HDF5 file (written atomically)")
    p.add_argument("--iterations", type=int, default=620)
    p.add_argument("--seed", type=int, default=0, help="seed of the random starting phases")
    p.add_argument("--intensity", action="store_true", help="frames are intensities, not amplitudes")
    p.set_defaults(func=cmd_phase_retrieve)

    p = sub.add_parser("quantize", help="prune and quantization-aware fine-tune (QKeras)", epilog=UNITS,
                       formatter_class=fmt, description="Prune a float network set (tfmot), build QKeras twins "
                       "(input quantizer, quantized_bits weights, quantized_relu activations, 'logits' output), "
                       "fine-tune them, and report every metric for float vs pruned vs quantized.")
    p.add_argument("--source", default="edge", help="float network set (name or folder), default edge")
    p.add_argument("--net", choices=("shape", "phase", "both"), default="both")
    p.add_argument("--bits", type=int, default=QUANT.weight_bits, help="weight and bias bits (sign included)")
    p.add_argument("--activation-bits", type=int, default=QUANT.activation_bits, help="bits of every ReLU output")
    p.add_argument("--input-bits", type=int, default=QUANT.input_bits,
                   help="bits of the input quantizer (sign included)")
    p.add_argument("--output-bits", type=int, default=QUANT.output_bits, help="bits of the logits the firmware outputs")
    p.add_argument("--layer-bits", default="", help="per-layer weight bits, e.g. enc0_conv0=6,out_conv=10")
    p.add_argument("--sparsity", type=float, default=0.25, help="target fraction of zero weights")
    p.add_argument("--examples", type=int, default=QUANT.examples, help="fine-tuning patterns")
    p.add_argument("--epochs", type=int, default=QUANT.epochs, help="QAT epochs")
    p.add_argument("--prune-epochs", type=int, default=QUANT.prune_epochs, help="pruning epochs")
    p.add_argument("--lr", type=float, default=QUANT.learning_rate,
                   help="Adam learning rate of the pruning and QAT fine-tuning")
    p.add_argument("--test", type=int, default=1000, help="test patterns for the report")
    p.add_argument("--seed", type=int, default=QUANT.seed)
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser("firmware", help="hls4ml projects, bit-exact emulation, estimates", epilog=UNITS,
                       formatter_class=fmt, description="Convert quantized networks with hls4ml (settings from a "
                       "checked-in YAML), write one HLS project per network and one for both, compile the C++ "
                       "emulation with g++, validate it bit for bit against QKeras, estimate resources and timing, "
                       "and compare float / QAT / emulation metrics.")
    p.add_argument("--source", default="model/weights/edge-q", help="folder of quantized networks")
    p.add_argument("--float-source", default="edge", help="the float network set they came from")
    p.add_argument("--config", default="edge", help="firmware YAML: a shipped name (edge, paper) or a file")
    p.add_argument("--out", default="firmware/build/edge", help="output folder for the projects and report")
    p.add_argument("--validate", type=int, default=200, help="patterns for the bit-accuracy check")
    p.add_argument("--compare", type=int, default=1000, help="patterns for the float/QAT/emulation table")
    p.add_argument("--workers", type=int, help="emulation processes (default: all cores)")
    p.add_argument("--no-combined", action="store_true", help="skip the project that streams both networks")
    p.add_argument("--stop-after", help="last step to run: load, test_vectors, convert, compile, validate, "
                   "estimate or compare (default: all)")
    p.set_defaults(func=cmd_firmware)

    p = sub.add_parser("csim", help="C simulation: each HLS project's own test bench, built with g++",
                       description="Build every project's <project>_test.cpp under --build (or the one project "
                       "--build names) with g++ and the ap_types headers hls4ml ships, run it, and compare its "
                       "outputs with tb_data/tb_output_predictions.dat within half an output LSB (what Vitis's "
                       "C simulation checks). Exit status 2 if any project differs.")
    p.add_argument("--build", default="firmware/build/edge", help="firmware build folder or one project folder")
    p.set_defaults(func=cmd_csim)

    p = sub.add_parser("synth", help="vendor C synthesis / co-simulation of a firmware project",
                       description="Run hls4ml's build (Vitis HLS C synthesis, co-simulation, export) on a project "
                       "written by `cdinn firmware`; fails with one line if the vendor tool is not on PATH.")
    p.add_argument("--project", default="firmware/build/edge/shape", help="project folder")
    p.add_argument("--no-cosim", action="store_true", help="skip RTL co-simulation")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("run", help="reconstruct frames from a detector source, as fast as they come", epilog=UNITS,
                       formatter_class=fmt, description="Frames from --source (FILE.npy, FILE.h5[:/dataset] or an "
                       "NXmx master, a glob of files, a folder to watch, a ZeroMQ endpoint tcp://HOST:PORT carrying "
                       "DECTRIS stream v1/v2 or cdinn's format, or an EPICS pvAccess NTNDArray channel "
                       "pva://CHANNEL) are validated, masked, "
                       "preprocessed (dark/background subtraction in counts, centring, crop, binning to 32x32, "
                       "intensities -> amplitudes), reconstructed by --backend in adaptive batches and written "
                       "incrementally to --out (HDF5, readable during the run). Bad frames are rejected with a "
                       "reason; SIGINT/SIGTERM stop the source and close the file cleanly.")
    p.add_argument("--source", required=True)
    p.add_argument("--backend", choices=("keras", "onnx", "emulator", "fpga"), default="onnx")
    p.add_argument("--out", required=True, help="output HDF5 file (must not exist)")
    p.add_argument("--net", default="default", help="network set (default, paper, edge, robust or a folder); "
                   "emulator/fpga use its quantized set and firmware project unless given below")
    p.add_argument("--threads", type=int, help="onnxruntime intra-op threads")
    p.add_argument("--project", help="firmware project (emulator, fpga; default: the set's firmware/build/<set>/both)")
    p.add_argument("--quantized", help="quantized networks (emulator; default: the set's model/weights/<set>-q)")
    p.add_argument("--bitstream", help="FPGA bitstream (fpga; default: cdinn.bit in the project)")
    p.add_argument("--refine", choices=("none", "auto"), default="none",
                   help="auto: frames are binned to 2x oversampled 64x64 patterns (the network sees every other "
                   "pixel); frames whose fit error exceeds the threshold get NN-seeded ER/HIO in worker threads "
                   "until their fit stops improving")
    p.add_argument("--refine-workers", type=int, default=1, help="refinement threads (with --refine auto)")
    p.add_argument("--input-kind", choices=("intensity", "amplitude"), default="intensity",
                   help="what the detector frames hold (counts = intensity)")
    p.add_argument("--dark", help=".npy dark frame (counts) to subtract")
    p.add_argument("--background", type=float, default=0.0, help="constant background (counts/pixel)")
    p.add_argument("--centre", choices=("frame", "max", "com"), default="frame",
                   help="zero-frequency pixel: the frame's middle pixel, the maximum or the centre of mass")
    p.add_argument("--centre-pixel", help="calibrated zero-frequency pixel as ROW,COL (row = y, col = x; "
                   "overrides the beam centre an NXmx file records, which overrides --centre)")
    p.add_argument("--mask", help="bad-pixel mask (.npy or HDF5 spec, nonzero = bad), combined with the "
                   "detector's own pixel_mask and the unsigned-maximum sentinel")
    p.add_argument("--crop", type=int, help="crop window (pixels, multiple of 32) around the centre")
    p.add_argument("--max-batch", type=int, default=64, help="largest adaptive batch")
    p.add_argument("--idle-timeout", type=float, help="stop after this many seconds without frames (live sources)")
    p.add_argument("--zmq-mode", choices=("pull", "sub"), default="pull")
    p.add_argument("--zmq-bind", action="store_true", help="bind the ZeroMQ endpoint instead of connecting")
    p.add_argument("--publish", metavar="pva://PREFIX", help="serve amplitude, phase and fit as EPICS pvAccess "
                   "NTNDArray channels PREFIX:amplitude, PREFIX:phase, PREFIX:fit (areaDetector viewers show them)")
    p.add_argument("--format", choices=("auto", "cdinn", "dectris-v1", "dectris-v2"), default="auto",
                   help="ZeroMQ message format: detected from the first message, or DECTRIS stream v1 (multipart "
                   "JSON), stream v2 (CBOR), or cdinn's own (cdinn stream-sim)")
    p.add_argument("--quiet", action="store_true", help="no live progress line")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("stream-sim", help="replay frames onto a ZeroMQ socket at a given rate",
                       description="Send frames (FILE.npy or FILE.h5[:/dataset]) as JSON header + raw bytes "
                       "messages on a bound PUSH or PUB socket, then one end marker per consumer.")
    p.add_argument("--source", required=True)
    p.add_argument("--endpoint", default="tcp://127.0.0.1:5555")
    p.add_argument("--rate", type=float, help="frames per second (default: as fast as possible)")
    p.add_argument("--mode", choices=("push", "pub"), default="push")
    p.add_argument("--consumers", type=int, default=1, help="end-of-stream markers to send")
    p.add_argument("--count", type=int, help="send this many frames (cycling through the file)")
    p.add_argument("--connect-wait", type=float, default=0.5, help="seconds to wait for consumers")
    p.set_defaults(func=cmd_stream_sim)

    p = sub.add_parser("merge", help="merge several runners' outputs in frame order",
                       description="Combine run outputs into one HDF5 file sorted by frame number; reports "
                       "missing and duplicated frame numbers.")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_merge)

    p = sub.add_parser("export-onnx", help="export the float networks to ONNX and check them against Keras",
                       description="Write shape.onnx, phase.onnx and cdinn.onnx (both outputs) for a network set "
                       "and report the largest difference from Keras on simulated patterns.")
    p.add_argument("--net", default="edge")
    p.add_argument("--out", help="output folder (default: beside the Keras weights)")
    p.set_defaults(func=cmd_export_onnx)

    p = sub.add_parser("baseline", help="CPU timing of every backend vs ER/HIO, in one run",
                       description="Per-pattern latency (median, p99) of Keras, onnxruntime (batch 1 with 1/2 "
                       "threads, batched), the emulation and 620-iteration ER/HIO on the same patterns, with "
                       "speed-ups over ER/HIO; writes JSON.")
    p.add_argument("--net", default="edge")
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=300)
    p.add_argument("--erhio-patterns", type=int, default=5)
    p.add_argument("--iterations", type=int, default=620)
    p.add_argument("--project", default="firmware/build/edge/both")
    p.add_argument("--quantized", default="model/weights/edge-q")
    p.add_argument("--out", default="results/baseline.json")
    p.set_defaults(func=cmd_baseline)

    p = sub.add_parser("bench-report", help="summarise the latest benchmark run (markdown + PNG)",
                       description="Turn the newest pytest-benchmark JSON under --storage into a table and a plot of "
                       "per-pattern latency per backend and batch, with speed-ups over ER/HIO from the same run.")
    p.add_argument("--storage", default="results/benchmarks", help="pytest-benchmark storage folder or a JSON file")
    p.add_argument("--out", default="results/benchmarks/summary", help="output prefix (.md and .png are added)")
    p.set_defaults(func=cmd_bench_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    args.argv = argv
    quiet.install()  # no native TensorFlow start-up lines (CUDA probing) on the terminal
    try:
        args.func(args)
    except CdinnError as exc:
        print(f"cdinn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cdinn: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
