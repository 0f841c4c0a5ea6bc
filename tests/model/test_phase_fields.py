"""The phase-field generators of the simulator."""

import numpy as np

from cdinn.model.phase_fields import _defect_phases, phase_field
from cdinn.model.simulate import broad


def test_a_dislocation_winds_the_phase_by_two_pi():
    inside = np.zeros((1, 32, 32), bool)
    inside[0, 4:28, 4:28] = True
    phase = _defect_phases(np.random.default_rng(0), inside)[0]
    # sum the wrapped phase steps around a large loop: +-2 pi per enclosed dislocation core (1 or 2 cores)
    loop = [(4, c) for c in range(4, 27)] + [(r, 27) for r in range(4, 27)]
    loop += [(27, c) for c in range(27, 4, -1)] + [(r, 4) for r in range(27, 3, -1)]
    values = np.array([phase[r, c] for r, c in loop])
    winding = np.sum(np.angle(np.exp(1j * np.diff(values)))) / (2 * np.pi)
    assert abs(winding) >= 0.99 and np.isclose(winding, np.round(winding), atol=0.05)


def test_every_family_is_zero_outside_and_spans_its_peak_to_peak():
    inside = np.zeros((8, 32, 32), bool)
    inside[:, 8:24, 6:26] = True
    for family in ("gratings", "zernike", "noise"):
        cfg = broad(phase_family=family, ptp_exponent=1.0)
        phase = phase_field(np.random.default_rng(1), inside, cfg)
        assert (phase[~inside] == 0).all()
        span = phase.max(axis=(1, 2)) - phase.min(axis=(1, 2))
        assert (span <= cfg.max_phase_ptp + 1e-9).all() and span.max() > 1.0
