"""``cdinn firmware``: quantized networks -> hls4ml projects, compiled emulation, bit-accuracy validation,
resource/timing estimates and a report — an ordered list of named steps, each writing its artefacts and
its section of ``report.json`` (after FINN's builder).

Output folder layout::

    <out>/<project>/            one complete HLS project per network (shape, phase) and one for both
        build_prj.tcl, firmware/, <project>_test.cpp, tb_data/   (hls4ml's project, ready for Vitis HLS)
        manifest.json            what the emulation library is and which quantized model it implements
        csim_tb, tb_data/csim_results.log   the project's C test bench built with g++ and its output
    <out>/test_vectors.npz       the on-grid inputs used for validation (simulated, random positions)
    <out>/report.json, report.md
    <out>/summary.json           set name, sha256s, bit_exact, csim_passed, ii_cycles, frame_interval_us,
                                 latency_us, multipliers, bram18 and fits (per device) of the design
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cdinn.artefacts import firmware_build, quantized_folder, set_name
from cdinn.cards import read_card
from cdinn.errors import CdinnError
from cdinn.firmware.config import FirmwareConfig, load_config, save_config
from cdinn.firmware.emulate import EmulatorSpec
from cdinn.firmware.estimate import DEVICES
from cdinn.firmware.manifest import write_manifest
from cdinn.io import write_json_atomic, write_text_atomic
from cdinn.model.conventions import GRID, ROLES, network_input
from cdinn.options import option

COMBINED = "both"


StepName = Literal["load", "test_vectors", "convert", "compile", "validate", "csim", "estimate", "compare", "summary"]
"""The build's named steps, in order (:data:`STEPS`)."""


@dataclass(frozen=True)
class FirmwareBuildConfig:
    """Inputs and knobs of one firmware build. Left out, the quantized networks, the firmware YAML and the
    output folder follow from the network set (:mod:`cdinn.artefacts`): the set's quantized networks, the
    YAML named after its architecture, and ``<build>/firmware/<set>``."""

    net: str = option(
        "default", "float network set the quantized networks came from: 'default', a shipped name or a folder"
    )
    quantized: str | None = option(None, "folder of quantized networks (default: the set's, model/weights/<set>-q)")
    config: str | None = option(
        None,
        "firmware YAML: a shipped name (robust, edge, paper) or a file (default: "
        "the one named after the set's architecture)",
    )
    out_dir: str | None = option(
        None, "output folder of the projects and the report (default: <build>/firmware/<set>)", flag="out"
    )
    combined: bool = option(True, "also build the project that streams both networks")
    validate_patterns: int = option(200, "patterns of the bit-accuracy check", flag="validate")
    compare_patterns: int = option(1000, "test patterns of the float / QAT / emulation table", flag="test_n")
    testbench_patterns: int = option(10, "patterns in each project's C test bench")
    workers: int | None = option(None, "emulation processes (default: all cores)")
    seed: int = option(424_242, "seed of the validation patterns")
    start_step: StepName | None = option(
        None,
        "first step to run (default: load); the earlier ones are taken from the previous build in the output "
        "folder: its report.json, test vectors, projects and compiled emulation, as FINN's builder resumes",
    )
    stop_step: StepName | None = option(None, "last step to run (default: summary)")

    def resolved(self) -> FirmwareBuildConfig:
        """This configuration with the quantized folder, YAML and output folder filled in from the set."""
        quantized = self.quantized or str(quantized_folder(self.net))
        config = self.config or read_card(Path(quantized) / "shape.h5")["architecture"]["name"]
        return replace(self, quantized=quantized, config=config, out_dir=self.out_dir or str(firmware_build(self.net)))


@dataclass
class BuildState:
    cfg: FirmwareBuildConfig
    fw_config: FirmwareConfig
    out: Path
    report: dict = field(default_factory=dict)
    qmodels: dict = field(default_factory=dict)
    fw_models: dict = field(default_factory=dict)
    cards: dict = field(default_factory=dict)
    hls: dict = field(default_factory=dict)
    specs: dict = field(default_factory=dict)
    x_grid: np.ndarray = field(default_factory=lambda: np.empty((0, GRID, GRID, 1)))  # the validation inputs


def step_load(state: BuildState) -> dict:
    """Load the quantized networks, verified against their model cards."""
    from cdinn.quantize.qat import firmware_model, input_bits_of, load_quantized

    src = Path(str(state.cfg.quantized))
    for role in ROLES:
        card = read_card(src / f"{role}.h5")
        state.cards[role] = card
        state.qmodels[role] = load_quantized(src / f"{role}.h5")
        state.fw_models[role] = firmware_model(state.qmodels[role])
    bits = {input_bits_of(m) for m in state.qmodels.values()}
    if len(bits) != 1:
        raise CdinnError(f"shape and phase networks quantize their input differently ({sorted(bits)} bits)")
    state.report["input_bits"] = bits.pop()
    if state.cfg.combined:
        from cdinn.firmware.combine import combine

        state.fw_models[COMBINED] = combine({role: state.fw_models[role] for role in ROLES})
    return {role: {"sha256": card["sha256"], "bit_widths": card["bit_widths"]} for role, card in state.cards.items()}


def step_test_vectors(state: BuildState) -> dict:
    """Simulate validation patterns (the broad distribution, random positions; through the detector forward
    model, mask included, for networks that take the mask) and put them on the input quantizer's grid."""
    from cdinn.model.architectures import input_channels
    from cdinn.model.forward import ExperimentConfig
    from cdinn.model.simulate import distribution, simulate
    from cdinn.quantize.grid import quantize_input

    channels = input_channels(next(iter(state.fw_models.values())))
    model = ExperimentConfig() if channels == 2 else None
    data = simulate(
        state.cfg.validate_patterns, state.cfg.seed, distribution("broad", position="random", experiment=model)
    )
    state.x_grid = quantize_input(network_input(data.diffraction, data.mask, channels), state.report["input_bits"])
    np.savez_compressed(state.out / "test_vectors.npz", inputs=state.x_grid)
    return {"patterns": len(state.x_grid), "seed": state.cfg.seed}


def step_convert(state: BuildState) -> dict:
    """Write one hls4ml project per network (and the combined one), test bench vectors included."""
    from cdinn.firmware.convert import convert
    from cdinn.firmware.validate import reference_outputs

    done = {}
    tb = state.x_grid[: state.cfg.testbench_patterns]
    for name, model in state.fw_models.items():
        project = f"{state.fw_config.ProjectName}_{name}"
        fw_cfg = FirmwareConfig(**dict(state.fw_config.as_dict(), ProjectName=project))
        state.hls[name] = convert(model, fw_cfg, state.out / name, tb, reference_outputs(model, tb))
        done[name] = str(state.out / name)
    save_config(state.fw_config, state.out / "firmware_config.yml")
    return done


def step_compile(state: BuildState) -> dict:
    """Compile each project's C++ emulation with g++ and record it in the project's manifest."""
    from cdinn.firmware.convert import compile_emulation
    from cdinn.quantize.qat import fraction_bits_of

    result = {}
    for name, hls_model in state.hls.items():
        start = time.perf_counter()
        library = compile_emulation(hls_model)
        model = state.fw_models[name]
        outputs = model.outputs
        spec = EmulatorSpec(
            str(library),
            hls_model.config.get_project_name(),
            int(np.prod(model.input_shape[1:])),
            tuple(int(np.prod(o.shape[1:])) for o in outputs),
        )
        state.specs[name] = spec
        roles = ROLES if name == COMBINED else (name,)
        fraction_bits = [fraction_bits_of(state.qmodels[n]) for n in roles]
        write_manifest(
            state.out / name,
            spec,
            roles,
            {n: state.cards[n]["sha256"] for n in roles},
            state.report["input_bits"],
            fraction_bits,
            state.fw_config,
        )
        result[name] = {"library": Path(library).name, "seconds": round(time.perf_counter() - start, 1)}
    return result


def step_validate(state: BuildState) -> dict:
    """Bit-accuracy of every project on the validation patterns; traces the first mismatching layer."""
    from cdinn.firmware.validate import first_mismatching_layer, validate

    result = {}
    for name, spec in state.specs.items():
        model = state.fw_models[name]
        stats = validate(model, spec, state.x_grid, state.cfg.workers)
        if stats["identical_fraction"] < 1.0 and name != COMBINED:
            stats["first_mismatching_layer"] = first_mismatching_layer(state.hls[name], model, state.x_grid)
        result[name] = stats
    state.report["bit_exact"] = all(r["identical_fraction"] == 1.0 for r in result.values())
    return result


def step_csim(state: BuildState) -> dict:
    """Each project's own C test bench built with g++ and run (Vitis C simulation without Vitis)."""
    from cdinn.firmware.csim import run_csim

    result = {name: run_csim(state.out / name) for name in state.hls}
    state.report["csim_passed"] = all(r["passed"] for r in result.values())
    return result


def step_estimate(state: BuildState) -> dict:
    """Per-layer resource and timing estimate of every project (labelled as an estimate)."""
    from cdinn.firmware.estimate import estimate_layers, markdown_estimate, summarise_estimate
    from cdinn.firmware.synth import read_synthesis_report

    result = {}
    for name, hls_model in state.hls.items():
        layers = estimate_layers(hls_model)
        summary = summarise_estimate(layers, state.fw_config.ClockPeriod, state.fw_config.Part)
        write_text_atomic(state.out / name / "estimate.md", markdown_estimate(layers, summary))
        synthesis = read_synthesis_report(state.out / name)
        result[name] = {
            "summary": summary,
            "layers": [layer.as_dict() for layer in layers],
            "synthesis_report": synthesis,
        }
    return result


def step_compare(state: BuildState) -> dict:
    """Every reconstruction metric for float, QAT Keras and emulation on the same test patterns."""
    from cdinn.firmware.metrics_table import compare_float_qat_emulation

    return compare_float_qat_emulation(state)


def step_summary(state: BuildState) -> dict:
    """``summary.json`` beside the report: what was built from what, whether it is exact, and the estimate of
    the design that runs (the combined project if built, else each network's)."""
    estimates = state.report["steps"].get("estimate", {}).get("result", {})
    design = COMBINED if COMBINED in estimates else None
    parts = [design] if design else [n for n in ROLES if n in estimates]
    summaries = [estimates[p]["summary"] for p in parts]
    summary: dict[str, Any] = {
        "net": set_name(state.cfg.net),
        "quantized": str(state.cfg.quantized),
        "sha256": {role: card["sha256"] for role, card in state.cards.items()},
        "float_sha256": {role: card["source_sha256"] for role, card in state.cards.items()},
        "bit_exact": state.report.get("bit_exact"),
        "csim_passed": state.report.get("csim_passed"),
        "design": design or "+".join(parts),
        "part": state.fw_config.Part,
        "clock_ns": state.fw_config.ClockPeriod,
        "label": "ESTIMATE from a model of hls4ml io_stream (not a synthesis result)",
    }
    if summaries:
        summary.update(
            ii_cycles=max(s["initiation_interval_cycles"] for s in summaries),
            frame_interval_us=max(s["frame_interval_us"] for s in summaries),
            latency_us=max(s["latency_us"] for s in summaries),
            multipliers=sum(s["multipliers"] for s in summaries),
            bram18=sum(s["bram18"] for s in summaries),
        )
        summary["fits"] = {
            device: summary["multipliers"] <= budget["dsp"] and summary["bram18"] <= budget["bram18"]
            for device, budget in DEVICES.items()
        }
    write_json_atomic(state.out / "summary.json", summary)
    return summary


STEPS: list[tuple[str, Callable[[BuildState], dict]]] = [
    ("load", step_load),
    ("test_vectors", step_test_vectors),
    ("convert", step_convert),
    ("compile", step_compile),
    ("validate", step_validate),
    ("csim", step_csim),
    ("estimate", step_estimate),
    ("compare", step_compare),
    ("summary", step_summary),
]


def _restore_test_vectors(state: BuildState) -> None:
    path = state.out / "test_vectors.npz"
    if not path.is_file():
        raise CdinnError(f"the previous build in {state.out} has no test vectors ({path.name}); start earlier")
    with np.load(path, allow_pickle=False) as saved:
        state.x_grid = saved["inputs"]


def _restore_convert(state: BuildState) -> None:
    """The hls4ml models of the projects already written (made again from the networks, nothing rewritten)."""
    from cdinn.firmware.convert import convert

    for name, model in state.fw_models.items():
        project = f"{state.fw_config.ProjectName}_{name}"
        fw_cfg = FirmwareConfig(**dict(state.fw_config.as_dict(), ProjectName=project))
        state.hls[name] = convert(model, fw_cfg, state.out / name, write=False)


def _restore_compile(state: BuildState) -> None:
    """The compiled emulation of each project, through its manifest (checked as every user of it checks it)."""
    from cdinn.firmware.manifest import read_manifest

    for name in state.fw_models:
        state.specs[name] = read_manifest(state.out / name)[1]


RESTORE: dict[str, Callable[[BuildState], Any]] = {
    "load": step_load,  # the networks in memory: what every later step works on
    "test_vectors": _restore_test_vectors,
    "convert": _restore_convert,
    "compile": _restore_compile,
}
"""How a step that is not run (before ``start_step``) gives the later steps what it would have made; steps
without an entry leave only their results in the report."""


def build(cfg: FirmwareBuildConfig, progress: Callable[[str], None] = print) -> dict:
    """Run the steps in order from ``cfg.start_step`` to ``cfg.stop_step`` (default: all); the steps before the
    start are restored from the previous build in the output folder (:data:`RESTORE`, their results from its
    report.json). Writes report.json after every step and report.md at the end; returns the report."""
    names = [name for name, _ in STEPS]
    for step in (cfg.start_step, cfg.stop_step):
        if step is not None and step not in names:
            raise CdinnError(f"unknown firmware step {step!r}; steps are {names}")
    start, stop = names.index(cfg.start_step or names[0]), names.index(cfg.stop_step or names[-1])
    if start > stop:
        raise CdinnError(f"the start step {names[start]} comes after the stop step {names[stop]}")
    cfg = cfg.resolved()
    out = Path(str(cfg.out_dir))
    previous = _previous_report(out, names[:start])
    out.mkdir(parents=True, exist_ok=True)
    state = BuildState(cfg, load_config(str(cfg.config)), out)
    state.report.update(config=asdict(cfg), firmware_config=state.fw_config.as_dict(), steps={})
    state.report.update({k: previous[k] for k in ("bit_exact", "csim_passed") if k in previous})  # rerun: replaced
    for index, (name, fn) in enumerate(STEPS[: stop + 1]):
        started = time.perf_counter()
        if index < start:
            progress(f"[firmware] {name} (restored from the previous build)")
            if name in RESTORE:
                RESTORE[name](state)
            state.report["steps"][name] = previous["steps"][name]
            continue
        progress(f"[firmware] {name} ...")
        state.report["steps"][name] = {"result": fn(state), "seconds": round(time.perf_counter() - started, 1)}
        write_json_atomic(out / "report.json", state.report)
    from cdinn.firmware.report import markdown_report

    write_text_atomic(out / "report.md", markdown_report(state.report))
    return state.report


def _previous_report(out: Path, skipped: list[str]) -> dict:
    """The previous build's report, which must hold every step in ``skipped`` (none: nothing needed)."""
    if not skipped:
        return {}
    try:
        previous = json.loads((out / "report.json").read_text())
    except (OSError, ValueError):
        raise CdinnError(
            f"--start-step {STEPS[len(skipped)][0]} needs a previous build in {out} (no readable report.json); "
            "run the earlier steps first"
        ) from None
    missing = [name for name in skipped if name not in previous.get("steps", {})]
    if missing:
        raise CdinnError(f"the previous build in {out} did not run {', '.join(missing)}; start earlier")
    return previous
