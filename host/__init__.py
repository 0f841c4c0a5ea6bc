"""The runner for the detector readout node: sources, preprocessing, backends, writer, and the CPU paths."""
