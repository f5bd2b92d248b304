"""YIN pitch tracking in numpy (de Cheveigné & Kawahara 2002, "YIN, a fundamental frequency estimator").

Why our own: the light, accurate trackers on PyPI are Praat's (`praat-parselmouth`, GPL-3.0, which an Apache-2.0
server should not link) and librosa's pyin (ISC, but it pulls numba, scipy and scikit-learn and runs slower). YIN
is a page of vectorised numpy: difference function by FFT, cumulative-mean normalisation, absolute threshold,
parabolic interpolation. The tests check it against Praat's tracker on the same speech (Praat is a test tool only).
"""

from __future__ import annotations

import numpy as np

# Absolute threshold on the normalised difference. The paper's 0.1-0.15 leaves most of real (non-stationary) speech
# unvoiced; 0.35 gives about Praat's voiced-frame count on the test voice with the same median F0.
THRESHOLD = 0.35
FRAMES_PER_BLOCK = 1024  # frames processed at once: bounds memory on long audio


def yin(
    samples: np.ndarray,
    rate: int,
    *,
    fmin: float = 75.0,
    fmax: float = 500.0,
    hop_seconds: float = 0.010,
    window_seconds: float = 0.025,
    threshold: float = THRESHOLD,
) -> np.ndarray:
    """F0 in Hz per hop (0 where unvoiced). Frame i starts at sample i * hop."""
    x = samples.astype(np.float64)
    hop = int(hop_seconds * rate)
    tau_min, tau_max = max(2, int(rate / fmax)), int(np.ceil(rate / fmin))
    width = max(int(window_seconds * rate), tau_max)
    length = width + tau_max + 1
    if len(x) < length:
        x = np.pad(x, (0, length - len(x)))
    starts = np.arange(0, len(x) - length + 1, hop)
    out = np.zeros(len(starts))
    for b in range(0, len(starts), FRAMES_PER_BLOCK):
        block = starts[b : b + FRAMES_PER_BLOCK]
        frames = x[block[:, None] + np.arange(length)[None, :]]
        out[b : b + len(block)] = _block_f0(frames, width, tau_min, tau_max, threshold, rate)
    return out


def _block_f0(frames: np.ndarray, width: int, tau_min: int, tau_max: int, threshold: float, rate: int) -> np.ndarray:
    n = frames.shape[1]
    size = 1 << int(np.ceil(np.log2(n + width)))
    # Cross term sum_j x[j] x[j + tau] for j < width, all tau at once, as a correlation by FFT.
    spectrum = np.fft.rfft(frames, size) * np.conj(np.fft.rfft(frames[:, :width], size))
    cross = np.fft.irfft(spectrum, size)[:, : tau_max + 1]
    squares = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames**2, axis=1)], axis=1)
    taus = np.arange(tau_max + 1)
    energy0 = squares[:, width][:, None]
    energy_tau = squares[:, taus + width] - squares[:, taus]
    diff = np.maximum(energy0 + energy_tau - 2.0 * cross, 0.0)
    # Cumulative mean normalised difference: d'(0) = 1, d'(tau) = d(tau) * tau / sum_{1..tau} d.
    running = np.cumsum(diff[:, 1:], axis=1)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] * taus[1:] / np.maximum(running, 1e-12)

    f0 = np.zeros(len(frames))
    window = cmnd[:, tau_min : tau_max + 1]
    below = window < threshold
    has = below.any(axis=1) & (energy0[:, 0] > 1e-10 * width)  # digital silence has d = 0 everywhere
    for i in np.flatnonzero(has):
        tau = int(np.argmax(below[i])) + tau_min
        while tau + 1 <= tau_max and cmnd[i, tau + 1] < cmnd[i, tau]:  # walk down to the dip's minimum
            tau += 1
        f0[i] = rate / _parabolic(cmnd[i], tau, tau_max)
    return f0


def _parabolic(curve: np.ndarray, tau: int, tau_max: int) -> float:
    if tau <= 0 or tau >= tau_max:
        return float(tau)
    a, b, c = curve[tau - 1], curve[tau], curve[tau + 1]
    denom = a - 2 * b + c
    return float(tau) if abs(denom) < 1e-12 else tau + 0.5 * (a - c) / denom
