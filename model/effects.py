"""The detector effects every evaluation scores, each at fixed strengths (:func:`cdinn.model.forward.fixed`).

:data:`EFFECTS` maps a label to ``(regime, model)``: ``regime`` is "moderate", "strong", "combined" (all
moderate effects at once) or "held out" (effect kinds the networks never train on,
:data:`cdinn.model.forward.HELD_OUT_EFFECTS`); lengths in network-grid pixels. Every kind the networks train on
has a moderate and a strong row; the strong ones lie at or beyond the edge of the training ranges
(:class:`cdinn.model.forward.ExperimentConfig`).
"""

from __future__ import annotations

from cdinn.model.forward import ExperimentConfig, fixed

COMBINED_EFFECTS = "all moderate at once"
"""The label of the row with every moderate effect together."""
_BEAMSTOP = {"beamstop": 1.0, "beamstop_shape": "square", "beamstop_arm": False}  # the 3x3 pixels at the centre

EFFECTS: dict[str, tuple[str, ExperimentConfig]] = {
    "coherence 0.5 px": ("moderate", fixed(coherence_sigma=0.5)),
    "PSF 0.5 px": ("moderate", fixed(psf_sigma=0.5)),
    "background 1e-4": ("moderate", fixed(background=1e-4, background_kind="flat")),
    "1e4 photons": ("moderate", fixed(flux=1e4)),
    "0.5 % saturated": ("moderate", fixed(saturation=0.005)),
    "3x3 beamstop": ("moderate", fixed(**_BEAMSTOP)),
    "gaps of 2 rows and 2 columns": ("moderate", fixed(gap_width=2.0)),
    "1 % dead pixels": ("moderate", fixed(dead_fraction=0.01)),
    "centre offset <= 0.5 px": ("moderate", fixed(centre_offset=0.5)),
    "coherence 1 px": ("strong", fixed(coherence_sigma=1.0)),
    "PSF 1 px": ("strong", fixed(psf_sigma=1.0)),
    "background 1e-3": ("strong", fixed(background=1e-3, background_kind="flat")),
    "1e3 photons": ("strong", fixed(flux=1e3)),
    "2 % saturated": ("strong", fixed(saturation=0.02)),
    "5x5 beamstop": ("strong", fixed(**{**_BEAMSTOP, "beamstop": 2.0})),
    "gaps of 4 rows and 4 columns": ("strong", fixed(gap_width=4.0)),
    "5 % dead pixels": ("strong", fixed(dead_fraction=0.05)),
    "centre offset <= 1 px": ("strong", fixed(centre_offset=1.0)),
    COMBINED_EFFECTS: (
        "combined",
        fixed(
            coherence_sigma=0.5,
            psf_sigma=0.3,
            background=1e-4,
            background_kind="flat",
            flux=1e5,
            dead_fraction=0.01,
            **_BEAMSTOP,
        ),
    ),
    "lorentzian coherence 0.5 px": ("held out", fixed(coherence_sigma=0.5, coherence_kernel="lorentzian")),
    "streak background 1e-4": ("held out", fixed(background=1e-4, background_kind="streak")),
    "rectangular beamstop 3x7": ("held out", fixed(beamstop=1.0, beamstop_shape="rectangle", beamstop_arm=False)),
}
