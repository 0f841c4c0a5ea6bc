"""Reconstruction metrics, invariant to what |FT| cannot see: a shift, the twin image and a global phase.

Every comparison first *registers* the prediction to the truth (:func:`register`): of the prediction and
its twin, the one whose complex cross-correlation with the truth peaks higher is kept, shifted onto the
truth (integer peak refined to 1/100 pixel by upsampled DFTs, applied as a Fourier shift), and multiplied
by the global phase factor that best aligns it. All inputs are (B, N, N); phases in radians.
"""

from __future__ import annotations

import numpy as np

from cdinn.model.conventions import twin, wrap_phase

SUPPORT_THRESHOLD = 0.1  # fraction of the maximum amplitude that defines a support
METRICS = ("chi2", "shape_error", "support_iou", "phase_rmse", "phase_rmse_weighted")


def _cross_spectrum(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """FFT2(truth) * conj(FFT2(pred)): its inverse FFT is the circular cross-correlation
    c[s] = sum_x truth[x] * conj(pred[x - s]), which peaks at the shift that moves pred onto truth."""
    return np.fft.fft2(truth) * np.conj(np.fft.fft2(pred))


def _local_correlation(spectrum: np.ndarray, centre: np.ndarray, step: float, half: int) -> np.ndarray:
    """Cross-correlation sampled on a (2*half+1)^2 grid of shifts ``centre + step * (i, j)`` by matrix
    DFTs (the upsampled-DFT method of Guizar-Sicairos et al., Opt. Lett. 2008). Returns (B, K, K)."""
    n = spectrum.shape[-1]
    k = np.fft.fftfreq(n) * n
    offsets = np.arange(-half, half + 1) * step
    rows = centre[:, 0, None] + offsets  # (B, K)
    cols = centre[:, 1, None] + offsets
    kern_r = np.exp(2j * np.pi * rows[:, :, None] * k[None, None, :] / n)  # (B, K, N)
    kern_c = np.exp(2j * np.pi * k[None, :, None] * cols[:, None, :] / n)  # (B, N, K)
    return kern_r @ spectrum @ kern_c


def _peak(spectrum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shift (B, 2) of each correlation peak to 1/100 pixel, and the peak magnitude (B,)."""
    b, n, _ = spectrum.shape
    corr = np.abs(np.fft.ifft2(spectrum)).reshape(b, -1)
    r, c = np.unravel_index(corr.argmax(axis=1), (n, n))
    shift = (np.stack([r, c], axis=1).astype(np.float64) + n / 2) % n - n / 2
    for step in (0.1, 0.01):
        local = np.abs(_local_correlation(spectrum, shift, step, 8)).reshape(b, -1)
        i, j = np.unravel_index(local.argmax(axis=1), (17, 17))
        shift = shift + step * (np.stack([i, j], axis=1) - 8)
        peak = local.max(axis=1)
    return shift, peak


def fourier_shift(obj: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Shift each (N, N) image by (row, column) pixels (B, 2), sub-pixel, circularly."""
    n = obj.shape[-1]
    freq = np.fft.fftfreq(n)
    ramp = np.exp(
        -2j * np.pi * (shift[:, 0, None, None] * freq[None, :, None] + shift[:, 1, None, None] * freq[None, None, :])
    )
    return np.fft.ifft2(np.fft.fft2(obj) * ramp)


def register(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Align complex predictions (B, N, N) to the truth: twin choice, sub-pixel shift, global phase."""
    pred = pred.astype(np.complex128)
    truth = truth.astype(np.complex128)
    candidates = (pred, twin(pred))
    peaks = [_peak(_cross_spectrum(truth, cand)) for cand in candidates]
    use_twin = peaks[1][1] > peaks[0][1]
    chosen = np.where(use_twin[:, None, None], candidates[1], candidates[0])
    shift = np.where(use_twin[:, None], peaks[1][0], peaks[0][0])
    aligned = fourier_shift(chosen, shift)
    offset = np.angle((truth * np.conj(aligned)).sum(axis=(-2, -1)))
    return aligned * np.exp(1j * offset)[:, None, None]


def chi2(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Reciprocal-space error per pattern: sum (I_true - I_pred)^2 / sum I_true^2, I = |FFT2|^2 on the
    arrays' own grid. Needs no registration (intensities ignore shift, twin and global phase)."""
    i_true = np.abs(np.fft.fft2(truth)) ** 2
    i_pred = np.abs(np.fft.fft2(pred)) ** 2
    return ((i_true - i_pred) ** 2).sum(axis=(-2, -1)) / (i_true**2).sum(axis=(-2, -1))


def support(amplitude: np.ndarray, threshold: float = SUPPORT_THRESHOLD) -> np.ndarray:
    """Pixels above ``threshold`` (the metric's SUPPORT_THRESHOLD unless told) of each image's maximum
    amplitude, (B, N, N) bool."""
    return amplitude > threshold * amplitude.max(axis=(-2, -1), keepdims=True)


def support_iou(true_support: np.ndarray, pred_support: np.ndarray) -> np.ndarray:
    """Intersection over union of two (B, N, N) bool supports, (B,)."""
    return (true_support & pred_support).sum(axis=(-2, -1)) / (true_support | pred_support).sum(axis=(-2, -1))


def reconstruction_metrics(
    pred: np.ndarray, truth_amplitude: np.ndarray, truth_phase: np.ndarray
) -> dict[str, np.ndarray]:
    """All metrics per pattern, (B,) each, for complex predictions against the true amplitude and phase.

    ``chi2``: reciprocal-space error. ``shape_error``: ||a_pred - a_true|| / ||a_true|| after
    registration. ``support_iou``: intersection over union of the supports. ``phase_rmse``: RMS of the
    wrapped phase difference (radians) inside the true support; ``phase_rmse_weighted``: the same with
    each pixel weighted by the true amplitude.
    """
    truth = truth_amplitude * np.exp(1j * truth_phase)
    aligned = register(pred, truth)
    amp = np.abs(aligned)
    true_support = support(truth_amplitude)
    diff2 = wrap_phase(np.angle(aligned) - truth_phase) ** 2
    inside = true_support.sum(axis=(-2, -1))
    weights = truth_amplitude * true_support
    return {
        "chi2": chi2(pred, truth),
        "shape_error": np.linalg.norm(amp - truth_amplitude, axis=(-2, -1))
        / np.linalg.norm(truth_amplitude, axis=(-2, -1)),
        "support_iou": support_iou(true_support, support(amp)),
        "phase_rmse": np.sqrt((diff2 * true_support).sum(axis=(-2, -1)) / inside),
        "phase_rmse_weighted": np.sqrt((diff2 * weights).sum(axis=(-2, -1)) / weights.sum(axis=(-2, -1))),
    }


def summarise(metrics: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Median, 90th percentile and maximum of each metric (IoU: 10th percentile and minimum instead,
    since higher is better)."""
    out = {}
    for name, values in metrics.items():
        if name == "support_iou":
            out[name] = {
                "median": float(np.median(values)),
                "p10": float(np.percentile(values, 10)),
                "min": float(values.min()),
            }
        else:
            out[name] = {
                "median": float(np.median(values)),
                "p90": float(np.percentile(values, 90)),
                "max": float(values.max()),
            }
    return out
