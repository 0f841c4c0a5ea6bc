"""The runner for the detector readout node and CPU baselines."""
