"""``cdinn baseline``: per-pattern CPU timings of every backend and of ER/HIO, measured side by side in one
run on the same simulated patterns, with the speed-up of each over 620-iteration ER/HIO at batch 1.

Timed: Keras float (traced tf.function), onnxruntime at batch 1 with 1 and 2 intra-op threads and with
graph optimisation off (the tuning that was tried), onnxruntime batched, the hls4ml emulation (if a
compiled project exists) and ER/HIO on the 2x oversampled pattern. All timings include both networks
(shape and phase) and the host-side normalisation, not file I/O.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from cdinn.cards import library_versions
from cdinn.io import write_json_atomic, write_text_atomic
from cdinn.model.conventions import network_input
from cdinn.model.phase_retrieval import PhaseRetrievalConfig, phase_retrieve
from cdinn.model.simulate import SimulationConfig, simulate
from cdinn.model.timing import latency_summary, time_calls


def machine_info() -> dict:
    """CPU model, core count and library versions, to compare runs from different nodes honestly."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(), "versions": library_versions()}


def run_baseline(net: str = "edge", n: int = 200, batch: int = 64, repeats: int = 300, erhio_patterns: int = 5,
                 iterations: int = 620, emulator_project: str | None = "firmware/build/edge/both",
                 quantized: str = "model/weights/edge-q") -> dict:
    """Time every method; returns the report (also what ``cdinn baseline`` writes as JSON)."""
    from cdinn.host.backends.keras_backend import KerasBackend
    from cdinn.host.backends.onnx_backend import OnnxBackend
    from cdinn.host.onnx_export import session

    data = simulate(max(n, batch), seed=7, config=SimulationConfig(position="random"), oversampled=True)
    one = data.diffraction[:1]
    many = data.diffraction[:batch]
    methods: dict[str, dict] = {}

    def add(name: str, fn, patterns: int, count: int, warmup: int = 5) -> None:
        seconds = time_calls(fn, count, warmup) / patterns
        methods[name] = dict(latency_summary(seconds), batch=patterns)

    keras_backend = KerasBackend(net)
    add("keras float, batch 1", lambda: keras_backend.infer(one), 1, repeats // 3)
    onnx = OnnxBackend(net)
    for threads in (1, 2):
        backend = OnnxBackend(net, threads=threads)
        add(f"onnxruntime, batch 1, {threads} thread(s)", lambda b=backend: b.infer(one), 1, repeats)
    unoptimised = session(onnx.path, threads=2, optimize=False)
    x_one = network_input(one)
    add("onnxruntime, batch 1, graph optimisation off", lambda: unoptimised.run(None, {"diffraction": x_one}), 1,
        repeats)
    add(f"onnxruntime, batch {batch}", lambda: onnx.infer(many), batch, max(repeats // 10, 5))
    if emulator_project and Path(emulator_project, "manifest.json").is_file():
        from cdinn.host.backends.emulator_backend import EmulatorBackend

        emulator = EmulatorBackend(emulator_project, quantized)
        add("hls4ml emulation (C++), batch 1", lambda: emulator.infer(one), 1, 20, warmup=1)
    cfg = PhaseRetrievalConfig(iterations=iterations)
    singles = iter(data.diffraction_oversampled[i : i + 1] for i in range(erhio_patterns))
    add(f"ER/HIO {iterations} iterations, batch 1", lambda: phase_retrieve(next(singles), cfg), 1, erhio_patterns,
        warmup=0)
    reference = methods[f"ER/HIO {iterations} iterations, batch 1"]["median_us"]
    for m in methods.values():
        m["speedup_vs_erhio"] = reference / m["median_us"]
    return {"net": net, "machine": machine_info(), "methods": methods}


def markdown_table(report: dict) -> str:
    rows = [f"Network set `{report['net']}` on {report['machine']['cpu']} ({report['machine']['cores']} cores); "
            "per-pattern times, both networks.", "",
            "| method | median (us) | p99 (us) | speed-up vs ER/HIO |", "|---|---|---|---|"]
    for name, m in report["methods"].items():
        rows.append(f"| {name} | {m['median_us']:.1f} | {m['p99_us']:.1f} | {m['speedup_vs_erhio']:.0f}x |")
    return "\n".join(rows) + "\n"


def write_report(report: dict, path: str | os.PathLike) -> None:
    """The JSON report and, beside it, the markdown table (``.md``)."""
    write_json_atomic(path, report)
    head = f"Made by `{report['command']}`\n\n" if report.get("command") else ""
    write_text_atomic(Path(path).with_suffix(".md"), head + markdown_table(report))
