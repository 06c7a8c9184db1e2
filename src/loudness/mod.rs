//! Loudness: EBU R128 measurement (our own ITU-R BS.1770-4 meter, exact
//! gating from kept 100 ms block energies: see [`Meter`]) and the gain plan
//! that brings a recording to the target.
//!
//! A recording whose loudness range already fits the target gets one linear
//! gain: nothing moves inside it, so nothing can pump. Only a recording whose
//! range is wider gets the leveller: a gain curve computed from the whole
//! recording's short-term loudness (EBU Tech 3341 §2.3: 3 s window), looked
//! up 1.5 s ahead so it is centred on the audio it describes, pulled toward
//! the target range, frozen in pauses and smoothed with a wide Gaussian so it
//! moves over seconds, never within a word.

mod kweight;
mod meter;
pub(crate) mod truepeak;

#[cfg(test)]
pub(crate) use meter::measure;
pub use meter::{integrated_from_blocks, Measurement, Measures, Meter};

use crate::audio::units::db_to_gain;
use crate::audio::{Block, Source};
use crate::error::Result;

/// Loudness targets and limits.
#[derive(Debug, Clone, PartialEq)]
pub struct LoudnessSettings {
    /// Target integrated loudness in LUFS (default −16).
    pub integrated_lufs: f64,
    /// Loudness range in LU above which the leveller is used (default 11).
    pub lra_lu: f64,
    /// True-peak ceiling of the delivered (decoded MP3) files in dBTP (default 0).
    pub true_peak_dbtp: f64,
    /// How far below the ceiling the limiters work, in dB, to leave room for
    /// the MP3 encoder's overshoot (default 1.0). Raised automatically when a
    /// delivered file would still exceed the ceiling.
    pub mp3_headroom_db: f64,
    /// Largest boost or cut the leveller may apply, in dB (default 12).
    pub leveller_max_db: f64,
}

impl Default for LoudnessSettings {
    fn default() -> Self {
        LoudnessSettings {
            integrated_lufs: -16.0,
            lra_lu: 11.0,
            true_peak_dbtp: 0.0,
            mp3_headroom_db: 1.0,
            leveller_max_db: 12.0,
        }
    }
}

/// Spacing of the short-term loudness series and of the leveller's curve.
pub const HOP_SECONDS: f64 = 0.1;
/// Half the EBU short-term window (3 s, EBU Tech 3341 §2.3): the look-ahead
/// that centres a short-term value on the audio it measured.
const SHORT_TERM_CENTRE_S: f64 = 1.5;
/// Standard deviation of the leveller's Gaussian smoothing, in seconds.
const LEVELLER_SIGMA_S: f64 = 2.0;
/// Short-term values this far below the integrated loudness count as pause:
/// the leveller holds its gain there (the relative gate of BS.1770 is −10 LU
/// on 400 ms blocks; a 3 s window straddling a pause reads lower, hence −20).
const LEVELLER_GATE_LU: f64 = 20.0;

/// The leveller's gain curve (dB per hop, hop `k` at frame `k·hop`), from the
/// short-term series of a recording with integrated loudness `integrated`.
/// The curve is relative: it keeps the integrated loudness roughly where it
/// was; the final linear gain is applied on top.
pub fn leveller_curve(series: &[f32], integrated: f64, settings: &LoudnessSettings) -> Vec<f32> {
    let n = series.len();
    let half = settings.lra_lu / 2.0;
    let lead = (SHORT_TERM_CENTRE_S / HOP_SECONDS).round() as usize;
    // Desired gain per hop, NaN where the recording pauses.
    let mut desired: Vec<f64> = (0..n)
        .map(|k| {
            // series[j] measures the 3 s ending at hop j+1: centred on hop j+1-15.
            let j = (k + lead).saturating_sub(1).min(n.saturating_sub(1));
            let s = f64::from(series[j]);
            if !s.is_finite() || s < integrated - LEVELLER_GATE_LU {
                return f64::NAN;
            }
            let d = s - integrated;
            let g = if d > half {
                half - d
            } else if d < -half {
                -half - d
            } else {
                0.0
            };
            g.clamp(-settings.leveller_max_db, settings.leveller_max_db)
        })
        .collect();
    // Freeze the gain through pauses: carry the last value forward (and the
    // first value backward over a leading pause).
    let first = desired
        .iter()
        .copied()
        .find(|v| v.is_finite())
        .unwrap_or(0.0);
    let mut last = first;
    for v in desired.iter_mut() {
        if v.is_finite() {
            last = *v;
        } else {
            *v = last;
        }
    }
    gaussian_smooth(&desired, LEVELLER_SIGMA_S / HOP_SECONDS)
        .into_iter()
        .map(|v| v as f32)
        .collect()
}

/// Smooths `v` with a normalised Gaussian of standard deviation `sigma`
/// samples, holding the end values beyond the edges.
fn gaussian_smooth(v: &[f64], sigma: f64) -> Vec<f64> {
    let n = v.len();
    if n == 0 {
        return Vec::new();
    }
    let r = (3.0 * sigma).ceil() as isize;
    let kernel: Vec<f64> = (-r..=r)
        .map(|i| (-(i as f64).powi(2) / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f64 = kernel.iter().sum();
    (0..n as isize)
        .map(|i| {
            let mut acc = 0.0;
            for (k, w) in kernel.iter().enumerate() {
                let j = (i + k as isize - r).clamp(0, n as isize - 1) as usize;
                acc += w * v[j];
            }
            acc / total
        })
        .collect()
}

/// How a recording's level is changed: a linear gain, optionally on top of
/// a leveller curve.
#[derive(Debug, Clone, PartialEq)]
pub struct GainPlan {
    /// Linear gain in dB applied to everything.
    pub gain_db: f64,
    /// Leveller curve in dB, one value per hop, or `None` for a linear gain only.
    pub curve: Option<Vec<f32>>,
    /// Frames per hop of the curve.
    pub hop: usize,
}

/// A [`Source`] that applies a [`GainPlan`].
pub struct Gain<S: Source> {
    inner: S,
    gain: f32,
    /// The curve as linear factors including the overall gain.
    curve: Option<Vec<f32>>,
    hop: usize,
    pos: u64,
}

impl<S: Source> Gain<S> {
    /// Applies `plan` to `inner`.
    pub fn new(inner: S, plan: &GainPlan) -> Self {
        let gain = db_to_gain(plan.gain_db);
        Gain {
            inner,
            gain: gain as f32,
            curve: plan.curve.as_ref().map(|c| {
                c.iter()
                    .map(|&db| (gain * db_to_gain(f64::from(db))) as f32)
                    .collect()
            }),
            hop: plan.hop.max(1),
            pos: 0,
        }
    }
}

impl<S: Source> Source for Gain<S> {
    fn sample_rate(&self) -> u32 {
        self.inner.sample_rate()
    }

    fn channels(&self) -> usize {
        self.inner.channels()
    }

    fn read(&mut self, block: &mut Block) -> Result<bool> {
        if !self.inner.read(block)? {
            return Ok(false);
        }
        let n = block.frames();
        match &self.curve {
            None => {
                for c in 0..block.channels() {
                    for x in block.channel_mut(c).iter_mut() {
                        *x *= self.gain;
                    }
                }
            }
            Some(curve) if !curve.is_empty() => {
                // Linear interpolation of the factor between hop points,
                // one run of frames per hop.
                let last = curve.len() - 1;
                let hop = self.hop as u64;
                let step = 1.0 / self.hop as f32;
                let mut i = 0usize;
                while i < n {
                    let t = self.pos + i as u64;
                    let k = ((t / hop) as usize).min(last);
                    let in_hop = (t % hop) as usize;
                    let run = (self.hop - in_hop).min(n - i);
                    let a = curve[k];
                    let slope = (curve[(k + 1).min(last)] - a) * step;
                    for c in 0..block.channels() {
                        let seg = &mut block.channel_mut(c)[i..i + run];
                        for (j, x) in seg.iter_mut().enumerate() {
                            *x *= a + slope * (in_hop + j) as f32;
                        }
                    }
                    i += run;
                }
            }
            Some(_) => {}
        }
        self.pos += n as u64;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::MemorySource;

    fn sine(rate: u32, secs: f64, freq: f64, amp: f64) -> Vec<f32> {
        (0..(secs * f64::from(rate)) as usize)
            .map(|i| {
                (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin())
                    as f32
            })
            .collect()
    }

    #[test]
    fn linear_gain_reaches_known_loudness() {
        // A 1 kHz sine at -20 dBFS (mono) reads -23.0 LUFS (EBU Tech 3341 case 1 is
        // stereo at -23 dBFS per channel; a single channel of -20 dBFS is -23.0 LUFS
        // plus the K-weighting's ~+0.7 dB at 1 kHz).
        let rate = 48000;
        let sig = sine(rate, 20.0, 1000.0, 0.1);
        let m0 = measure(
            &mut MemorySource::new(rate, Block::from_channels(&[&sig]), 4096),
            Measures::INTEGRATED,
        )
        .unwrap();
        let plan = GainPlan {
            gain_db: -16.0 - m0.integrated_lufs,
            curve: None,
            hop: 4800,
        };
        let src = MemorySource::new(rate, Block::from_channels(&[&sig]), 1000);
        let m1 = measure(&mut Gain::new(src, &plan), Measures::LOUDNESS_AND_PEAK).unwrap();
        assert!((m1.integrated_lufs + 16.0).abs() < 0.1, "{m1:?}");
        // The gained sine's true peak is its amplitude.
        let expected_tp = 20.0 * (0.1f64).log10() + plan.gain_db;
        assert!(
            (m1.true_peak_dbtp - expected_tp).abs() < 0.1,
            "{m1:?} {expected_tp}"
        );
    }

    #[test]
    fn gain_curve_interpolates_between_hops_whatever_the_block_size() {
        // Curve 0 dB then +6.02 dB (x2) with 10-frame hops, on top of -6.02 dB.
        let plan = GainPlan {
            gain_db: -20.0 * 2f64.log10(),
            curve: Some(vec![0.0, (20.0 * 2f64.log10()) as f32]),
            hop: 10,
        };
        for chunk in [1, 3, 7, 64] {
            let src = MemorySource::new(1000, Block::from_channels(&[&[1.0f32; 25]]), chunk);
            let mut g = Gain::new(src, &plan);
            let mut out = Vec::new();
            let mut b = Block::default();
            while g.read(&mut b).unwrap() {
                out.extend_from_slice(b.channel(0));
            }
            assert_eq!(out.len(), 25);
            assert!((out[0] - 0.5).abs() < 1e-6, "chunk {chunk}");
            assert!((out[5] - 0.75).abs() < 1e-6, "chunk {chunk}: {}", out[5]);
            assert!((out[10] - 1.0).abs() < 1e-6);
            assert!((out[24] - 1.0).abs() < 1e-6, "held after the last hop");
        }
    }

    #[test]
    fn leveller_pulls_wide_range_in_and_flat_range_untouched() {
        let settings = LoudnessSettings::default();
        // 60 s flat at the integrated level: zero gain everywhere.
        let flat = vec![-20.0f32; 600];
        let c = leveller_curve(&flat, -20.0, &settings);
        assert!(c.iter().all(|g| g.abs() < 1e-6));
        // 60 s at -35 then 60 s at -15 around an integrated -20: the quiet half
        // (15 LU under) is lifted by 15 - 5.5 = 9.5 dB in its middle, the loud
        // half (5 LU over) stays within range: 0 dB in its middle.
        let mut wide = vec![-35.0f32; 600];
        wide.extend(std::iter::repeat_n(-15.0f32, 600));
        let c = leveller_curve(&wide, -20.0, &settings);
        assert!((c[300] - 9.5).abs() < 0.01, "{}", c[300]);
        assert!(c[900].abs() < 0.01, "{}", c[900]);
        // Smooth: no step between hops larger than 0.5 dB.
        assert!(c.windows(2).all(|w| (w[1] - w[0]).abs() < 0.5));
    }

    #[test]
    fn leveller_freezes_in_pauses() {
        let settings = LoudnessSettings::default();
        let mut s = vec![-35.0f32; 300];
        s.extend(std::iter::repeat_n(f32::NEG_INFINITY, 300));
        s.extend(std::iter::repeat_n(-35.0f32, 300));
        let c = leveller_curve(&s, -20.0, &settings);
        // The pause keeps the boost of the speech around it.
        assert!((c[450] - 9.5).abs() < 0.01, "{}", c[450]);
    }

    #[test]
    fn meter_series_has_one_value_per_hop() {
        let rate = 44100;
        let sig = sine(rate, 10.0, 440.0, 0.5);
        let mut m = Meter::new(1, rate, Measures::ALL).unwrap();
        for part in sig.chunks(1234) {
            m.add(&[part]).unwrap();
        }
        assert_eq!(m.take_series().len(), 100);
    }
}
