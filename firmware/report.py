"""The firmware build report as markdown: bit-exactness, estimates and the float/QAT/emulation table."""

from __future__ import annotations

from cdinn.model.scoring import Row, table


def markdown_report(report: dict) -> str:
    steps = report["steps"]
    lines = [
        f"# Firmware build ({report['firmware_config']['Part']}, {report['firmware_config']['IOType']}, "
        f"clock {report['firmware_config']['ClockPeriod']} ns)",
        "",
    ]
    if "validate" in steps:
        lines += [
            "## Bit accuracy (emulation vs QKeras, on-grid inputs)",
            "",
            "| project | patterns | identical values | max abs difference |",
            "|---|---|---|---|",
        ]
        for name, r in steps["validate"]["result"].items():
            lines.append(
                f"| {name} | {r['patterns']} | {r['identical_fraction']:.4%} | {r['max_abs_difference']:.3g} |"
            )
        lines.append("")
    if "estimate" in steps:
        lines += [
            "## Resources and timing (ESTIMATE, not synthesis)",
            "",
            "| project | II (cycles) | frame interval (us) | latency (us) | multipliers | BRAM18 "
            "| fits xcvu9p | fits xczu9eg |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, r in steps["estimate"]["result"].items():
            s = r["summary"]
            fit = {k: "yes" if all(v.values()) else "no" for k, v in s["fits"].items()}
            lines.append(
                f"| {name} | {s['initiation_interval_cycles']} | {s['frame_interval_us']:.2f} | "
                f"{s['latency_us']:.2f} | {s['multipliers']} | {s['bram18']} | {fit['xcvu9p']} | "
                f"{fit['xczu9eg']} |"
            )
        lines.append("")
    if "compare" in steps:
        r = steps["compare"]["result"]
        rows: list[Row] = [([name], r[name], []) for name in ("float", "qat_keras", "emulation")]
        lines += [
            f"## Float vs QAT vs emulation ({r['patterns']} test patterns)",
            "",
            table(["variant"], [], rows),
            "",
            f"Emulation outputs identical to QAT Keras: {r['emulation_equals_qat_keras']}",
        ]
    return "\n".join(lines) + "\n"
