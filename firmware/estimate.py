"""A per-layer resource and timing *estimate* of an hls4ml io_stream design, for when the vendor tools
are absent. It is a documented model of hls4ml's streaming implementation, not a synthesis result.

Model (one frame through the dataflow pipeline, clock cycles at the configured period):

* every layer reads its input stream at most one pixel (all channels) per cycle;
* a Conv2D (Resource strategy, line buffer) computes one output pixel's ``C_out`` values from
  ``K*K*C_in`` inputs with ``ceil(K*K*C_in*C_out / R)`` multipliers reused ``R`` times, so it needs
  ``max(input_pixels, output_pixels * R)`` cycles per frame; ZeroPadding2D (inserted by hls4ml for 'same'
  padding) writes ``(H+2)*(W+2)`` pixels; pooling reads ``H*W``; nearest up-sampling writes ``2H*2W``;
* the frame interval (initiation interval, II) is the slowest layer's cycle count;
* the latency is II plus the pipeline fill: each layer's wait for its first output (a 3x3 conv needs two
  padded rows and three pixels, a 2x2 pool one row and two pixels, element-wise layers one pixel), in
  units of that layer's input pixel period ``II / input_pixels``, summed along the longest path through
  the graph (the two networks of a combined design run side by side);
* weight memory = weights x weight bits + biases x bias bits; line buffers = ``(K-1)`` padded rows x
  ``C_in`` x input bits. Multipliers are an upper bound on DSP slices (narrow products may map to LUTs).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

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
    cycles: int
    fill_pixels: int
    inputs: tuple[str, ...] = ()  # the layers feeding this one

    def as_dict(self) -> dict:
        return asdict(self)


def _bits(precision) -> int:
    return int(getattr(precision, "width", 16))


def estimate_layers(hls_model) -> list[LayerEstimate]:
    """Estimates for every layer of a converted hls4ml ModelGraph (shapes, precisions and reuse from the
    model itself)."""
    out = []
    producer = {name: layer.name for layer in hls_model.get_layers() for name in layer.outputs}
    for layer in hls_model.get_layers():
        kind = layer.class_name
        in_var, out_var = layer.get_input_variable(), layer.get_output_variable()
        in_shape = (in_var or out_var).shape
        out_shape = out_var.shape
        in_px, out_px = in_shape[0] * in_shape[1], out_shape[0] * out_shape[1]
        reuse, mults, wbits, lbits, fill = 1, 0, 0, 0, 1
        cycles = max(in_px, out_px)
        if kind == "Input":
            in_px = out_px
            cycles, fill = out_px, 0
        elif kind.startswith("Conv2D"):
            k, c_in, c_out = layer.get_attr("filt_height"), layer.get_attr("n_chan"), layer.get_attr("n_filt")
            reuse = int(layer.get_attr("reuse_factor"))
            mults = math.ceil(k * k * c_in * c_out / reuse)
            wbits = (k * k * c_in * c_out * _bits(layer.get_weights("weight").type.precision)
                     + c_out * _bits(layer.get_weights("bias").type.precision))
            lbits = (k - 1) * in_shape[1] * c_in * _bits(layer.get_input_variable().type.precision)
            cycles = max(in_px, out_px * reuse)
            fill = (k - 1) * in_shape[1] + k
        elif kind.startswith("Pooling2D"):
            fill = in_shape[1] + 2
        inputs = tuple(producer[name] for name in layer.inputs if name in producer)
        out.append(LayerEstimate(layer.name, kind, in_px, out_px, reuse, mults, wbits, lbits, cycles, fill, inputs))
    return out


def summarise_estimate(layers: list[LayerEstimate], clock_ns: float, part: str) -> dict:
    """Frame interval, latency and totals, and whether they fit the named parts."""
    ii = max(layer.cycles for layer in layers)
    ready: dict[str, float] = {}  # cycles from the frame's first pixel to each layer's first output
    for layer in layers:  # hls4ml lists layers in topological order
        ready[layer.name] = (layer.fill_pixels * ii / max(layer.input_pixels, 1)
                             + max((ready[name] for name in layer.inputs if name in ready), default=0.0))
    latency = ii + max(ready.values())
    mults = sum(layer.multipliers for layer in layers)
    memory = sum(layer.weight_bits + layer.line_buffer_bits for layer in layers)
    bram18 = sum(math.ceil((layer.weight_bits + layer.line_buffer_bits) / 18_432) for layer in layers
                 if layer.weight_bits + layer.line_buffer_bits > 4096)  # small arrays go to LUT RAM
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
    rows = [f"**{summary['label']}** — part {summary['part']}, clock {summary['clock_ns']} ns", "",
            "| layer | kind | in px | out px | reuse | multipliers | weight bits | line-buffer bits | cycles |",
            "|" + "---|" * 9]
    for layer in layers:
        rows.append(f"| {layer.name} | {layer.kind} | {layer.input_pixels} | {layer.output_pixels} | {layer.reuse} "
                    f"| {layer.multipliers} | {layer.weight_bits} | {layer.line_buffer_bits} | {layer.cycles} |")
    rows += ["", f"II {summary['initiation_interval_cycles']} cycles ({summary['frame_interval_us']:.2f} us per "
             f"frame, bottleneck {summary['bottleneck']}); latency ~{summary['latency_cycles']} cycles "
             f"({summary['latency_us']:.2f} us); {summary['multipliers']} multipliers; {summary['bram18']} BRAM18; "
             f"fits: {summary['fits']}"]
    return "\n".join(rows) + "\n"
