//! Bumpers matched to the voices, and the episode on target.
//!
//! Why: the production bumpers are mastered at about −11.5, −11.5 and
//! −14 LUFS. Left as they are beside voices at −16 LUFS, the music is
//! 4.5 LU louder than the question after it and the episode measured
//! −15.66 LUFS (issue 13). So each bumper is measured once per run
//! (integrated loudness and true peak, while it is decoded) and gained to
//! the target plus an offset ([`crate::settings::BumperLoudness`]). A gain
//! that raises its peaks over the episode limiter's ceiling is compensated:
//! the gained bumper is run once through a limiter like the episode's and
//! measured, and the gain is raised by what the limiter took (bumpers are
//! at most two minutes, so this costs milliseconds).
//!
//! With every part on target the episode is still not: in each of the four
//! 1 s crossfades a voice at full level overlaps a ramped bumper, which
//! adds about a third of a second of bumper energy per crossfade (the mean
//! of a linear ramp squared is 1/3). On the 32 s test episode with the
//! embedded bumpers (all parts at −16) the episode measured −15.83 LUFS. Rather than measure the mixed
//! episode in another pass (mixer, stereo limiter and meter over the whole
//! programme, to be repeated for each correction), [`predict_episode`]
//! builds the episode's 100 ms K-weighted block energies from the parts'
//! own block energies, which the meters of the first pass, the calibration
//! pass and the bumper measurement already keep: each part's blocks are
//! placed at its offset in the episode, weighted by the mean square of its
//! crossfade ramp, and summed (a voice and a bumper are uncorrelated, so
//! their energies add). The integrated loudness is then gated exactly as
//! the meter does. [`bumper_trim`] finds the one trim, common to the three
//! bumpers and bounded to ±1 dB so each bumper stays within 1 LU of its
//! level, that puts the predicted episode on target. A limited bumper's
//! blocks change shape, not only level, so when one was limited the trim
//! is solved again on its limited blocks (at most three rounds). The voices are never
//! touched: their segments and their stretches of the episode keep the
//! target their calibration gave them. How close the prediction comes is
//! measured in `tests/listener.rs` against the decoded episode (see the
//! README, "What the listener hears").

use crate::loudness::integrated_from_blocks;

/// One part of the episode as the loudness model sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PartEnergy<'a> {
    /// The part's own 100 ms block energies (K-weighted mean square, summed
    /// over the channels as they reach the episode), before `gain_db`.
    pub blocks: &'a [f64],
    /// Gain applied to the part in the episode, dB.
    pub gain_db: f64,
    /// Frames of the part.
    pub len: u64,
    /// Frames over which its head ramps up (0: no ramp).
    pub ramp_in: u64,
    /// Frames over which its tail ramps down (0: no ramp).
    pub ramp_out: u64,
}

/// Sub-steps per block at which the ramp's square is sampled.
const STEPS: u64 = 20;

/// Mean square of the part's crossfade gain over its frames `a..b`.
fn ramp_weight(p: &PartEnergy<'_>, a: u64, b: u64) -> f64 {
    if (p.ramp_in == 0 || a >= p.ramp_in) && (p.ramp_out == 0 || b <= p.len - p.ramp_out) {
        return 1.0;
    }
    let step = ((b - a) as f64 / STEPS as f64).max(1.0);
    let mut sum = 0.0;
    for i in 0..STEPS {
        let t = a as f64 + (i as f64 + 0.5) * step;
        let mut g = 1.0;
        if p.ramp_in > 0 && t < p.ramp_in as f64 {
            g *= t / p.ramp_in as f64;
        }
        let from_end = p.len as f64 - t;
        if p.ramp_out > 0 && from_end < p.ramp_out as f64 {
            g *= from_end / p.ramp_out as f64;
        }
        sum += g * g;
    }
    sum / STEPS as f64
}

/// The episode's predicted 100 ms block energies: `parts` placed at
/// `offsets` (frames) in an episode of `total` frames, `hop` frames per
/// block. A part block that straddles two episode blocks is shared between
/// them in proportion.
pub(crate) fn episode_blocks(
    parts: &[PartEnergy<'_>],
    offsets: &[u64],
    total: u64,
    hop: u64,
) -> Vec<f64> {
    let hop = hop.max(1);
    let mut out = vec![0.0; (total / hop) as usize];
    for (p, &o) in parts.iter().zip(offsets) {
        let g = 10f64.powf(p.gain_db / 10.0);
        for (j, &e) in p.blocks.iter().enumerate() {
            let a = j as u64 * hop;
            let b = (a + hop).min(p.len);
            if a >= b {
                break;
            }
            let e = e * g * ramp_weight(p, a, b);
            let (s, t) = (o + a, o + b);
            let m = s / hop;
            let split = ((m + 1) * hop).min(t);
            let first = (split - s) as f64 / hop as f64;
            let second = (t - split) as f64 / hop as f64;
            if let Some(x) = out.get_mut(m as usize) {
                *x += e * first;
            }
            if second > 0.0 {
                if let Some(x) = out.get_mut(m as usize + 1) {
                    *x += e * second;
                }
            }
        }
    }
    out
}

/// Predicted integrated loudness of the episode, LUFS.
pub(crate) fn predict_episode(
    parts: &[PartEnergy<'_>],
    offsets: &[u64],
    total: u64,
    hop: u64,
) -> f64 {
    integrated_from_blocks(&episode_blocks(parts, offsets, total, hop))
}

/// Largest trim [`bumper_trim`] applies, dB: a bumper stays within 1 LU
/// of the level it was gained to.
pub(crate) const MAX_TRIM_DB: f64 = 1.0;

/// The trim (dB, within ±[`MAX_TRIM_DB`]) to add to the gain of the parts
/// marked in `bumper` so that the predicted episode measures `target`; also
/// returns the predicted loudness with that trim. Bisection: the predicted
/// loudness grows with the trim.
pub(crate) fn bumper_trim(
    parts: &[PartEnergy<'_>],
    bumper: &[bool],
    offsets: &[u64],
    total: u64,
    hop: u64,
    target: f64,
) -> (f64, f64) {
    let at = |trim: f64| {
        let trimmed: Vec<PartEnergy<'_>> = parts
            .iter()
            .zip(bumper)
            .map(|(p, &b)| PartEnergy {
                gain_db: p.gain_db + if b { trim } else { 0.0 },
                ..*p
            })
            .collect();
        predict_episode(&trimmed, offsets, total, hop)
    };
    let (mut lo, mut hi) = (-MAX_TRIM_DB, MAX_TRIM_DB);
    let (l_lo, l_hi) = (at(lo), at(hi));
    if !(l_lo.is_finite() && l_hi.is_finite()) {
        return (0.0, at(0.0));
    }
    if l_lo >= target {
        return (lo, l_lo);
    }
    if l_hi <= target {
        return (hi, l_hi);
    }
    for _ in 0..30 {
        let mid = 0.5 * (lo + hi);
        if at(mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let trim = 0.5 * (lo + hi);
    (trim, at(trim))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loudness::{Measures, Meter};

    /// Block energies of a mono signal (as the meter keeps them).
    fn blocks_of(x: &[f32]) -> Vec<f64> {
        let mut m = Meter::new(1, 1000 * 44, Measures::INTEGRATED).unwrap();
        m.add(&[x]).unwrap();
        m.take_block_energies()
    }

    /// A deterministic noise of roughly constant loudness.
    fn noise(n: usize, amp: f32, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((s >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0) * amp
            })
            .collect()
    }

    #[test]
    fn prediction_of_a_crossfaded_mix_matches_its_measurement() {
        // Two uncorrelated noises, the second ramped in over the first's
        // last second, mixed by hand and measured: the model, built from
        // the two parts' own block energies, must agree within 0.05 LU.
        let rate = 44_000usize;
        let (la, lb, fade) = (6 * rate + 1234, 5 * rate + 77, rate);
        let a = noise(la, 0.3, 1);
        let b = noise(lb, 0.25, 2);
        let mut mix = a.clone();
        mix.truncate(la - fade);
        for i in 0..fade {
            mix.push(a[la - fade + i] + b[i] * (i as f32 / fade as f32));
        }
        mix.extend_from_slice(&b[fade..]);
        let measured = {
            let mut m = Meter::new(1, rate as u32, Measures::INTEGRATED).unwrap();
            m.add(&[&mix]).unwrap();
            m.measurement().unwrap().integrated_lufs
        };
        let (ea, eb) = (blocks_of(&a), blocks_of(&b));
        let parts = [
            PartEnergy {
                blocks: &ea,
                gain_db: 0.0,
                len: la as u64,
                ramp_in: 0,
                ramp_out: 0,
            },
            PartEnergy {
                blocks: &eb,
                gain_db: 0.0,
                len: lb as u64,
                ramp_in: fade as u64,
                ramp_out: 0,
            },
        ];
        let offsets = [0, (la - fade) as u64];
        let total = mix.len() as u64;
        let predicted = predict_episode(&parts, &offsets, total, (rate / 10) as u64);
        assert!(
            (predicted - measured).abs() < 0.05,
            "predicted {predicted:.3}, measured {measured:.3}"
        );
        // The trim moves only the marked part, towards the target.
        let (trim, at) = bumper_trim(
            &parts,
            &[false, true],
            &offsets,
            total,
            4400,
            measured - 0.2,
        );
        assert!(
            trim < 0.0 && (at - (measured - 0.2)).abs() < 0.01,
            "{trim} {at}"
        );
        let (trim, _) = bumper_trim(
            &parts,
            &[false, true],
            &offsets,
            total,
            4400,
            measured + 9.0,
        );
        assert_eq!(trim, MAX_TRIM_DB);
    }
}
