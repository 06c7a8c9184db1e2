//! Loudness calibration through the limiter, in (usually) one pass.
//!
//! A limiter lowers loudness by an amount that depends on the signal, so the
//! gain that brings the *limited* signal to the target is not known in
//! advance. The first pass records, per 100 ms hop of the trimmed recording,
//! its sample peak and energy ([`HopStats`]); from them [`predicted_loss`]
//! estimates what the limiter will take at a given gain, erring on the high
//! side. The calibration pass then runs gain → limiter once at the predicted
//! gain, measures the limited signal and spools it; because the estimate is
//! high, the result is usually a little loud, and a plain attenuation after
//! the limiter (which scales loudness exactly and only lowers peaks) puts it
//! on target. Only when the limited signal comes out quieter than the target
//! (or far louder) does a further pass run, with the gain corrected by a
//! secant step.

use crate::audio::units::gain_to_db;
use crate::loudness::GainPlan;

/// Per-hop sample peak and energy of a mono recording, for
/// [`predicted_loss`]; 8 bytes per hop (about 290 kB per hour at 100 ms).
#[derive(Debug, Clone, Default)]
pub struct HopStats {
    hop: usize,
    in_hop: usize,
    peak: f32,
    energy: f32,
    /// Per completed hop: `(sample peak, mean square)`.
    hops: Vec<(f32, f32)>,
}

impl HopStats {
    /// Statistics over hops of `hop` frames (at least 1).
    pub fn new(hop: usize) -> Self {
        HopStats {
            hop: hop.max(1),
            ..HopStats::default()
        }
    }

    /// Feeds mono samples.
    pub fn add(&mut self, samples: &[f32]) {
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (self.hop - self.in_hop).min(rest.len());
            let (now, later) = rest.split_at(take);
            for &x in now {
                self.peak = self.peak.max(x.abs());
                self.energy += x * x;
            }
            self.in_hop += take;
            if self.in_hop == self.hop {
                self.close();
            }
            rest = later;
        }
    }

    fn close(&mut self) {
        if self.in_hop > 0 {
            let ms = self.energy / self.in_hop as f32;
            self.hops.push((self.peak, ms));
        }
        self.in_hop = 0;
        self.peak = 0.0;
        self.energy = 0.0;
    }

    /// Closes the last, partial hop.
    pub fn finish(&mut self) {
        self.close();
    }

    /// Completed hops: `(sample peak, mean square)` each.
    pub fn hops(&self) -> &[(f32, f32)] {
        &self.hops
    }
}

/// How far (in dB) the leveller curve of `plan` and a limiter with threshold
/// `thresh_db` (dBFS) are expected to lower the loudness of the recording
/// described by `stats` below what `plan.gain_db` alone would give
/// (negative when the curve raises it more than the limiter takes).
///
/// Model: the curve's gain applies per hop; every hop whose peak after gain exceeds the threshold loses the
/// whole excess over the whole hop, and 37 % of it (one release time
/// constant) over the next hop; hops more than 20 dB under the loudest
/// hops' mean level are left out, as loudness gating would. A real limiter
/// only dips around each peak, so the estimate is high, which is the side
/// calibration wants (see the [module documentation](self)).
pub fn predicted_loss(stats: &HopStats, plan: &GainPlan, thresh_db: f64) -> f64 {
    let hops = stats.hops();
    if hops.is_empty() {
        return 0.0;
    }
    let gain_at = |k: usize| -> f64 {
        let curve = plan.curve.as_deref().unwrap_or(&[]);
        let c = if curve.is_empty() {
            0.0
        } else {
            f64::from(curve[k.min(curve.len() - 1)])
        };
        plan.gain_db + c
    };
    // Relative gate on the hops' mean level (energy-weighted mean, like BS.1770).
    let mean: f64 = hops.iter().map(|h| f64::from(h.1)).sum::<f64>() / hops.len() as f64;
    if mean <= 0.0 {
        return 0.0;
    }
    let gate = mean * 0.01;
    let (mut before, mut after) = (0.0f64, 0.0f64);
    let mut carry = 0.0f64;
    for (k, &(peak, ms)) in hops.iter().enumerate() {
        let g = gain_at(k);
        let over = if peak > 0.0 {
            (gain_to_db(f64::from(peak)) + g - thresh_db).max(0.0)
        } else {
            0.0
        };
        let cut = over.max(carry);
        carry = cut * 0.37;
        let ms = f64::from(ms);
        if ms < gate {
            continue;
        }
        before += ms * 10f64.powf(plan.gain_db / 10.0);
        after += ms * 10f64.powf((g - cut) / 10.0);
    }
    if before <= 0.0 || after <= 0.0 {
        return 0.0;
    }
    10.0 * (before / after).log10()
}

/// Most gain [`predicted_gain`] adds to make up for the predicted loss, in dB.
pub const MAX_MAKEUP_DB: f64 = 6.0;

/// The gain (dB) at which the limited signal is predicted to reach the
/// loudness that `base_db` of gain would give without leveller and limiter:
/// the `g` with `g - predicted_loss(g) = base_db`, found by bisection (the
/// left side never falls as `g` rises: a limiter cannot take back more than
/// the gain added), at most [`MAX_MAKEUP_DB`] above `base_db`.
pub fn predicted_gain(stats: &HopStats, plan: &GainPlan, base_db: f64, thresh_db: f64) -> f64 {
    let mut p = plan.clone();
    let mut reached = |g: f64| {
        p.gain_db = g;
        g - predicted_loss(stats, &p, thresh_db)
    };
    let (mut lo, mut hi) = (base_db - MAX_MAKEUP_DB, base_db + MAX_MAKEUP_DB);
    if reached(hi) <= base_db {
        return hi;
    }
    if reached(lo) >= base_db {
        return lo;
    }
    while hi - lo > 0.005 {
        let mid = 0.5 * (lo + hi);
        if reached(mid) < base_db {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(gain_db: f64) -> GainPlan {
        GainPlan {
            gain_db,
            curve: None,
            hop: 10,
        }
    }

    #[test]
    fn hop_stats_record_peak_and_energy_per_hop() {
        let mut s = HopStats::new(4);
        s.add(&[0.5, -1.0, 0.0, 0.0, 0.25]);
        s.add(&[0.25, 0.25, 0.25, 0.1]);
        s.finish();
        assert_eq!(s.hops().len(), 3);
        assert_eq!(s.hops()[0], (1.0, 1.25 / 4.0));
        assert_eq!(s.hops()[1], (0.25, 0.0625));
        assert!((s.hops()[2].1 - 0.01).abs() < 1e-7);
    }

    #[test]
    fn loss_is_zero_under_the_threshold_and_grows_with_gain() {
        let mut s = HopStats::new(100);
        let sig: Vec<f32> = (0..10_000)
            .map(|i| if (i / 100) % 5 == 0 { 0.9 } else { 0.3 })
            .collect();
        s.add(&sig);
        s.finish();
        assert_eq!(predicted_loss(&s, &plan(-3.0), -1.0), 0.0);
        let a = predicted_loss(&s, &plan(3.0), -1.0);
        let b = predicted_loss(&s, &plan(6.0), -1.0);
        assert!(a > 0.5 && b > a, "{a} {b}");
        // The predicted gain makes up for the predicted loss at that gain.
        let g = predicted_gain(&s, &plan(0.0), 3.0, -1.0);
        assert!(g > 3.5, "{g}");
        assert!((g - 3.0 - predicted_loss(&s, &plan(g), -1.0)).abs() < 0.02);
        // Loudness that the limiter would take back entirely: capped.
        let mut flat = HopStats::new(100);
        flat.add(&vec![0.9; 10_000]);
        flat.finish();
        let capped = predicted_gain(&flat, &plan(0.0), 3.0, -1.0);
        assert!((capped - 3.0 - MAX_MAKEUP_DB).abs() < 0.01, "{capped}");
        // Under the threshold nothing is added.
        assert!((predicted_gain(&s, &plan(0.0), -3.0, -1.0) + 3.0).abs() < 0.01);
    }
}
