"""A per-layer resource and timing *estimate* of an hls4ml io_stream design, for when the vendor tools
are absent. It is a documented model of hls4ml's streaming implementation (the Vitis templates of hls4ml
1.3), not a synthesis result.

Model (one frame, clock cycles at the configured period):

* a Conv2D (line buffer) computes one output pixel's ``C_out`` values from ``K*K*C_in`` inputs with
  ``ceil(K*K*C_in*C_out / R)`` multipliers reused ``R`` times. What that costs depends on the strategy:

  - ``Latency``: the loop over input pixels is pipelined at II = R, so every input pixel (padding
    included) takes R cycles, and an output leaves :data:`LATENCY_DEPTH_CYCLES` after the pixel that
    completes its window;
  - ``Resource``: that loop is not pipelined, so every input pixel costs :data:`RESOURCE_PIXEL_CYCLES`,
    and one that completes a window R + :data:`RESOURCE_WINDOW_CYCLES` more;

* ZeroPadding2D (inserted by hls4ml for 'same' padding), activations, pooling and the stream copies are
  pipelined at one pixel per cycle; nearest up-sampling reads an input row, then writes its ``2 x 2W``
  output pixels;
* every layer's per-pixel output times for one frame are simulated from its input's (a layer starts a
  pixel when the pixel has arrived and the layer is free), the input arriving one pixel per cycle;
* the frame interval (initiation interval, II) is the busiest layer's cycles per frame; the latency is the
  time from the frame's first input pixel to the last output pixel (the two networks of a combined design
  run side by side);
* weight memory = weights x weight bits + biases x bias bits, in block RAM for the Resource strategy (the
  Latency strategy partitions its weights into logic); line buffers = ``(K-1)`` padded rows x ``C_in`` x
  input bits. Multipliers are an upper bound on DSP slices (narrow products may map to LUTs).

The cycle constants below are read off hls4ml's code, not measured (no vendor tool here): a synthesis
report, where one exists, is the number to trust.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

RESOURCE_PIXEL_CYCLES = 4
"""Resource-strategy Conv2D, cycles per input pixel: the stream read, the call of the non-inlined
``compute_output_buffer_2d``, the (pipelined) line-buffer shift and the counter update, in sequence."""
RESOURCE_WINDOW_CYCLES = 7
"""Resource-strategy Conv2D, cycles per output pixel beyond ``dense_resource``'s R loop iterations: the
accumulator initialisation, the loop's pipeline depth (weight read, multiply, accumulate), the result cast
and the stream write."""
LATENCY_DEPTH_CYCLES = 8
"""Latency-strategy Conv2D, cycles from the pixel that completes a window to its output leaving: the
multiplies, the adder tree and the stream write."""

DEVICES = {  # resources of the target parts (DSP slices, 18 kb block RAMs, LUTs)
    "xcvu9p": {"dsp": 6840, "bram18": 4320, "lut": 1_182_240},
    "xczu9eg": {"dsp": 2520, "bram18": 1824, "lut": 274_080},
}


@dataclass
class LayerEstimate:
    name: str
    kind: str
    input_pixels: int
    output_pixels: int
    reuse: int
    multipliers: int
    weight_bits: int
    line_buffer_bits: int
    strategy: str
    cycles: int  # busy cycles per frame
    first_output: float  # cycles from the frame's first input pixel to this layer's first / last output pixel
    last_output: float
    inputs: tuple[str, ...] = ()  # the layers feeding this one

    def as_dict(self) -> dict:
        return asdict(self)


def _bits(precision) -> int:
    return int(getattr(precision, "width", 16))


def _stream(arrivals: np.ndarray, cost: np.ndarray, depth: float = 0.0) -> np.ndarray:
    """Done times of a layer that takes pixel i when it has arrived (``arrivals[i]``) and the layer is free,
    is busy for ``cost[i]`` cycles, and emits its result ``depth`` cycles after that."""
    done, free = np.empty(len(arrivals)), 0.0
    for i, (arrival, busy) in enumerate(zip(arrivals.tolist(), cost.tolist(), strict=True)):
        free = max(arrival, free) + busy
        done[i] = free
    return done + depth


def _window_ends(height: int, width: int, size: int, stride: int) -> np.ndarray:
    """Which input pixels (raster order) complete a ``size`` x ``size`` window at ``stride``."""
    rows, cols = np.divmod(np.arange(height * width), width)
    return (
        (rows >= size - 1) & ((rows - size + 1) % stride == 0) & (cols >= size - 1) & ((cols - size + 1) % stride == 0)
    )


def _layer_timing(
    layer, kind: str, arrivals: np.ndarray, in_shape, out_shape, reuse: int, strategy: str
) -> tuple[np.ndarray, int]:
    """Output pixel times (raster order) of one layer for one frame, and its busy cycles per frame."""
    (in_h, in_w), (out_h, out_w) = in_shape[:2], out_shape[:2]
    ones = np.ones(in_h * in_w)
    if kind.startswith("Conv2D"):
        ends = _window_ends(in_h, in_w, layer.get_attr("filt_height"), layer.get_attr("stride_height"))
        if strategy == "latency":
            done = _stream(arrivals, reuse * ones, LATENCY_DEPTH_CYCLES)
            return done[ends], in_h * in_w * reuse
        cost = RESOURCE_PIXEL_CYCLES + ends * (reuse + RESOURCE_WINDOW_CYCLES)
        return _stream(arrivals, cost)[ends], int(cost.sum())
    if kind.startswith("Pooling2D"):
        ends = _window_ends(in_h, in_w, layer.get_attr("pool_height"), layer.get_attr("stride_height"))
        return _stream(arrivals, ones)[ends], in_h * in_w
    if kind == "ZeroPadding2D":  # padding pixels need no input: they cost their write cycle alone
        top, left = layer.get_attr("pad_top"), layer.get_attr("pad_left")
        source = np.zeros((out_h, out_w))
        source[top : top + in_h, left : left + in_w] = arrivals.reshape(in_h, in_w)
        return _stream(source.ravel(), np.ones(out_h * out_w)), out_h * out_w
    if kind == "Resize":  # per input row: read its pixels, then write the up-sampled rows a pixel a cycle
        per_row = out_h // in_h * out_w
        row_ends = (np.arange(in_h * in_w) % in_w) == in_w - 1
        written = _stream(arrivals, ones + row_ends * per_row)[row_ends]  # each row's last write
        return (written[:, None] - per_row + 1 + np.arange(per_row)).ravel(), in_h * in_w + out_h * out_w
    return _stream(arrivals, ones), in_h * in_w  # activations, stream copies: a pixel a cycle


def estimate_layers(hls_model) -> list[LayerEstimate]:
    """Estimates for every layer of a converted hls4ml ModelGraph (shapes, precisions, strategies and reuse
    from the model itself), with the per-pixel timing of one frame."""
    out = []
    producer = {name: layer.name for layer in hls_model.get_layers() for name in layer.outputs}
    times: dict[str, np.ndarray] = {}
    for layer in hls_model.get_layers():
        kind = layer.class_name
        in_var, out_var = layer.get_input_variable(), layer.get_output_variable()
        in_shape = (in_var or out_var).shape
        out_shape = out_var.shape
        in_px, out_px = in_shape[0] * in_shape[1], out_shape[0] * out_shape[1]
        inputs = tuple(producer[name] for name in layer.inputs if name in producer)
        reuse, mults, wbits, lbits, strategy = 1, 0, 0, 0, ""
        if kind.startswith("Conv2D"):
            k, c_in, c_out = layer.get_attr("filt_height"), layer.get_attr("n_chan"), layer.get_attr("n_filt")
            reuse, strategy = int(layer.get_attr("reuse_factor")), str(layer.get_attr("strategy")).lower()
            mults = math.ceil(k * k * c_in * c_out / reuse)
            wbits = k * k * c_in * c_out * _bits(layer.get_weights("weight").type.precision) + c_out * _bits(
                layer.get_weights("bias").type.precision
            )
            lbits = (k - 1) * in_shape[1] * c_in * _bits(layer.get_input_variable().type.precision)
        if kind == "Input" or not inputs:
            emitted, cycles = np.arange(1.0, out_px + 1), out_px
        else:
            arrivals = np.max([times[name] for name in inputs], axis=0)
            emitted, cycles = _layer_timing(layer, kind, arrivals, in_shape, out_shape, reuse, strategy)
        times[layer.name] = emitted
        out.append(
            LayerEstimate(
                layer.name,
                kind,
                in_px,
                out_px,
                reuse,
                mults,
                wbits,
                lbits,
                strategy,
                int(cycles),
                float(emitted[0]),
                float(emitted[-1]),
                inputs,
            )
        )
    return out


def summarise_estimate(layers: list[LayerEstimate], clock_ns: float, part: str) -> dict:
    """Frame interval, latency and totals, and whether they fit the named parts."""
    ii = max(layer.cycles for layer in layers)
    latency = max(layer.last_output for layer in layers)
    mults = sum(layer.multipliers for layer in layers)
    memory = sum(layer.weight_bits + layer.line_buffer_bits for layer in layers)
    in_ram = [layer.line_buffer_bits + (layer.weight_bits if layer.strategy == "resource" else 0) for layer in layers]
    bram18 = sum(math.ceil(bits / 18_432) for bits in in_ram if bits > 4096)  # small arrays go to LUT RAM
    fits = {name: {"dsp": mults <= dev["dsp"], "bram18": bram18 <= dev["bram18"]} for name, dev in DEVICES.items()}
    return {
        "label": "ESTIMATE from a model of hls4ml io_stream (not a synthesis result)",
        "part": part,
        "clock_ns": clock_ns,
        "initiation_interval_cycles": int(ii),
        "frame_interval_us": ii * clock_ns / 1e3,
        "latency_cycles": int(round(latency)),
        "latency_us": latency * clock_ns / 1e3,
        "bottleneck": max(layers, key=lambda layer: layer.cycles).name,
        "multipliers": mults,
        "memory_bits": memory,
        "bram18": bram18,
        "fits": fits,
    }


def markdown_estimate(layers: list[LayerEstimate], summary: dict) -> str:
    """Per-layer table plus the totals."""
    rows = [
        f"**{summary['label']}** — part {summary['part']}, clock {summary['clock_ns']} ns",
        "",
        "| layer | kind | strategy | in px | out px | reuse | multipliers | weight bits | line-buffer bits "
        "| cycles per frame | first / last output (cycle) |",
        "|" + "---|" * 11,
    ]
    for layer in layers:
        rows.append(
            f"| {layer.name} | {layer.kind} | {layer.strategy} | {layer.input_pixels} | {layer.output_pixels} "
            f"| {layer.reuse} | {layer.multipliers} | {layer.weight_bits} | {layer.line_buffer_bits} "
            f"| {layer.cycles} | {layer.first_output:.0f} / {layer.last_output:.0f} |"
        )
    rows += [
        "",
        f"II {summary['initiation_interval_cycles']} cycles ({summary['frame_interval_us']:.2f} us per "
        f"frame, bottleneck {summary['bottleneck']}); latency ~{summary['latency_cycles']} cycles "
        f"({summary['latency_us']:.2f} us); {summary['multipliers']} multipliers; {summary['bram18']} BRAM18; "
        f"fits: {summary['fits']}",
    ]
    return "\n".join(rows) + "\n"
