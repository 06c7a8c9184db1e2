//! Test signals for noise suppression, shared by `tests/denoise.rs` and the
//! `denoise` group of `benches/stages.rs` (which includes this file by
//! path), so the benchmark measures exactly what the tests assert on.

/// The rate the signals are made at (RNNoise's only rate).
const RATE: f64 = 48_000.0;

/// Steady noise, deterministic: white noise from a fixed-seed LCG, pinked
/// by a one-pole low-pass mixed with it, plus a fan-like hum (120 Hz and
/// its harmonics at 240 and 360 Hz). Unit RMS.
pub fn room_noise(n: usize) -> Vec<f32> {
    let mut s = 20_261_201u32;
    let mut lp = 0f64;
    let raw: Vec<f64> = (0..n)
        .map(|i| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let w = f64::from(s >> 8) / f64::from(1u32 << 24) * 2.0 - 1.0;
            lp = 0.97 * lp + 0.03 * w;
            let t = i as f64 / RATE;
            let hum: f64 = [(120.0, 1.0), (240.0, 0.5), (360.0, 0.25)]
                .iter()
                .map(|&(f, a)| a * (2.0 * std::f64::consts::PI * f * t).sin())
                .sum();
            0.3 * w + 3.0 * lp + 0.05 * hum
        })
        .collect();
    let rms = (raw.iter().map(|x| x * x).sum::<f64>() / n as f64).sqrt();
    raw.iter().map(|&x| (x / rms) as f32).collect()
}

/// RNNoise's fixed input filter (a DC blocker: double zero at DC, poles
/// at radius 0.998; coefficients from RNNoise's `denoise.c`), applied to
/// the reference so the SNR measures the suppression, not that filter's
/// phase lead on the voice's lowest harmonics (about 12° at 140 Hz, which
/// alone would cap any SNR near 14 dB).
pub fn dc_blocked(x: &[f32]) -> Vec<f32> {
    let (b, a) = ([-2.0f64, 1.0], [-1.99599f64, 0.99600]);
    let (mut x1, mut x2, mut y1, mut y2) = (0f64, 0f64, 0f64, 0f64);
    x.iter()
        .map(|&v| {
            let v = f64::from(v);
            let y = v + b[0] * x1 + b[1] * x2 - a[0] * y1 - a[1] * y2;
            (x2, x1, y2, y1) = (x1, v, y1, y);
            y as f32
        })
        .collect()
}
