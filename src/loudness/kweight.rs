//! The K-weighting pre-filter of ITU-R BS.1770-4 (Annex 1): a high
//! shelf that models the head's acoustic effect, then a high-pass (the
//! revised low-frequency B curve).
//!
//! BS.1770-4 publishes the two biquads only at 48 kHz (Tables 1 and 2), and
//! those coefficients come from analog prototypes. Podstitch measures at any
//! rate a decoder delivers, so the prototypes' parameters are kept here and
//! each rate gets its own coefficients by the bilinear transform with the
//! centre frequency pre-warped, the derivation libebur128 uses. At 48 kHz it
//! reproduces the published tables (a test checks it).
//!
//! The filter runs in `f64` as direct form I, one state per channel. Form I
//! keeps the loop-carried dependency of each stage to one multiply and one
//! subtraction (the feedback term `a1·y[n-1]` is added last), which is what
//! bounds the speed of a recursive filter; the rest of each sample's work
//! overlaps with it.

use std::f64::consts::PI;

/// Stage 1 analog prototype, `H(s) = (Vh·s² + Vb·s/Q + 1) / (s² + s/Q + 1)`
/// with `s` normalised to the centre frequency: the centre frequency in Hz.
const SHELF_HZ: f64 = 1681.974450955533;
/// Stage 1: high-frequency gain in dB (`Vh = 10^(gain/20)`).
const SHELF_GAIN_DB: f64 = 3.999843853973347;
/// Stage 1: quality factor.
const SHELF_Q: f64 = 0.7071752369554196;
/// Stage 1: the mid term's gain is `Vb = Vh^SHELF_VB_EXP`.
const SHELF_VB_EXP: f64 = 0.4996667741545416;
/// Stage 2 analog prototype, `H(s) = s² / (s² + s/Q + 1)`: the corner in Hz.
const HIGHPASS_HZ: f64 = 38.13547087602444;
/// Stage 2: quality factor.
const HIGHPASS_Q: f64 = 0.5003270373238773;

/// Filter states smaller than this are set to zero after every 100 ms
/// block. In digital silence the states decay towards the subnormal range,
/// where arithmetic is many times slower; 1e-30 is 600 dB under full scale,
/// so the figures do not change.
const FLUSH_BELOW: f64 = 1e-30;

/// The lowest rate the shelf can be built for: its centre must lie below
/// the Nyquist frequency.
pub(crate) const MIN_RATE: f64 = 2.0 * SHELF_HZ;

/// One second-order section, normalised so that `a0 = 1`:
/// `y[n] = b0·x[n] + b1·x[n-1] + b2·x[n-2] − a1·y[n-1] − a2·y[n-2]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Biquad {
    pub b0: f64,
    pub b1: f64,
    pub b2: f64,
    pub a1: f64,
    pub a2: f64,
}

impl Biquad {
    /// Stage 1 at `rate` Hz. With `K = tan(π·f0/rate)` the bilinear
    /// transform `s = (1 − z⁻¹) / (K·(1 + z⁻¹))` maps the prototype's
    /// numerator to `Vh·(1 − z⁻¹)² + Vb·(K/Q)·(1 − z⁻²) + K²·(1 + z⁻¹)²`
    /// and its denominator likewise with `Vh = Vb = 1`.
    pub(crate) fn shelf(rate: f64) -> Biquad {
        let k = (PI * SHELF_HZ / rate).tan();
        let vh = 10f64.powf(SHELF_GAIN_DB / 20.0);
        let vb = vh.powf(SHELF_VB_EXP);
        let kq = k / SHELF_Q;
        let a0 = 1.0 + kq + k * k;
        Biquad {
            b0: (vh + vb * kq + k * k) / a0,
            b1: 2.0 * (k * k - vh) / a0,
            b2: (vh - vb * kq + k * k) / a0,
            a1: 2.0 * (k * k - 1.0) / a0,
            a2: (1.0 - kq + k * k) / a0,
        }
    }

    /// Stage 2 at `rate` Hz. BS.1770-4 Table 2 gives the numerator as
    /// exactly 1, −2, 1 (not divided by `a0`, so the pass band sits about
    /// +0.04 dB high, which the −0.691 dB of the loudness formula absorbs);
    /// only the poles depend on the rate.
    pub(crate) fn high_pass(rate: f64) -> Biquad {
        let k = (PI * HIGHPASS_HZ / rate).tan();
        let kq = k / HIGHPASS_Q;
        let a0 = 1.0 + kq + k * k;
        Biquad {
            b0: 1.0,
            b1: -2.0,
            b2: 1.0,
            a1: 2.0 * (k * k - 1.0) / a0,
            a2: (1.0 - kq + k * k) / a0,
        }
    }
}

/// Both stages' coefficients for one rate.
#[derive(Debug, Clone)]
pub(crate) struct KWeighting {
    shelf: Biquad,
    /// Stage 2's feedback coefficients (its numerator is fixed: 1, −2, 1).
    hp_a1: f64,
    hp_a2: f64,
}

/// One channel's filter memory and its running sum of squared output.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Channel {
    /// Input, one and two samples back.
    x1: f64,
    x2: f64,
    /// Stage 1 output, one and two samples back.
    u1: f64,
    u2: f64,
    /// Stage 2 (K-weighted) output, one and two samples back.
    v1: f64,
    v2: f64,
    /// Sum of squared K-weighted output since the last [`Channel::take_sum`].
    sum: f64,
}

impl Channel {
    /// The sum of squares since the last call; starts a new sum and flushes
    /// vanishing filter states to zero.
    pub(crate) fn take_sum(&mut self) -> f64 {
        for s in [
            &mut self.x1,
            &mut self.x2,
            &mut self.u1,
            &mut self.u2,
            &mut self.v1,
            &mut self.v2,
        ] {
            if s.abs() < FLUSH_BELOW {
                *s = 0.0;
            }
        }
        std::mem::take(&mut self.sum)
    }
}

impl KWeighting {
    /// The filter for `rate` Hz (at least [`MIN_RATE`]).
    pub(crate) fn new(rate: f64) -> Self {
        let hp = Biquad::high_pass(rate);
        KWeighting {
            shelf: Biquad::shelf(rate),
            hp_a1: hp.a1,
            hp_a2: hp.a2,
        }
    }

    /// Filters `input` through `ch` and adds the squared output to its sum
    /// (NaN and infinities count as 0). The sum is carried in the state, so
    /// it does not depend on how the input is split into calls.
    pub(crate) fn process(&self, ch: &mut Channel, input: &[f32]) {
        let Biquad { b0, b1, b2, a1, a2 } = self.shelf;
        let (c1, c2) = (self.hp_a1, self.hp_a2);
        let Channel {
            mut x1,
            mut x2,
            mut u1,
            mut u2,
            mut v1,
            mut v2,
            mut sum,
        } = *ch;
        for &s in input {
            // NaN or infinity would stay in the recursion for good: count
            // it as silence, as the true-peak meter does.
            let x = if s.is_finite() { f64::from(s) } else { 0.0 };
            // Everything but the newest feedback term first: only `a1·u1`
            // (and `c1·v1`) waits for the previous sample's result.
            let u = (b0 * x + b1 * x1 + b2 * x2 - a2 * u2) - a1 * u1;
            let v = ((u2 - c2 * v2 - 2.0 * u1) + u) - c1 * v1;
            sum += v * v;
            (x2, x1) = (x1, x);
            (u2, u1) = (u1, u);
            (v2, v1) = (v1, v);
        }
        *ch = Channel {
            x1,
            x2,
            u1,
            u2,
            v1,
            v2,
            sum,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ITU-R BS.1770-4 Annex 1, Tables 1 and 2 (48 kHz).
    #[test]
    fn coefficients_at_48k_are_the_published_ones() {
        let shelf = Biquad::shelf(48_000.0);
        let published = Biquad {
            b0: 1.53512485958697,
            b1: -2.69169618940638,
            b2: 1.19839281085285,
            a1: -1.69065929318241,
            a2: 0.73248077421585,
        };
        let hp = Biquad::high_pass(48_000.0);
        let published_hp = Biquad {
            b0: 1.0,
            b1: -2.0,
            b2: 1.0,
            a1: -1.99004745483398,
            a2: 0.99007225036621,
        };
        for (got, want) in [(shelf, published), (hp, published_hp)] {
            let g = [got.b0, got.b1, got.b2, got.a1, got.a2];
            let w = [want.b0, want.b1, want.b2, want.a1, want.a2];
            for (g, w) in g.iter().zip(w) {
                assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
            }
        }
    }

    /// Gain of the cascade at `freq` Hz, in dB, from its steady-state
    /// response to a sine.
    fn gain_db(rate: u32, freq: f64) -> f64 {
        let kw = KWeighting::new(f64::from(rate));
        let mut ch = Channel::default();
        let n = rate as usize;
        let x: Vec<f32> = (0..2 * n)
            .map(|i| (2.0 * PI * freq * i as f64 / f64::from(rate)).sin() as f32)
            .collect();
        kw.process(&mut ch, &x[..n]);
        ch.take_sum();
        kw.process(&mut ch, &x[n..]);
        10.0 * (ch.take_sum() / n as f64 / 0.5).log10()
    }

    /// The curve is the same analog response at every rate, up to the
    /// bilinear transform's warping near the Nyquist frequency: +0.69 dB at
    /// 1 kHz (what the −0.691 of the loudness formula cancels), −13.3 dB at
    /// 20 Hz (the high-pass), +4 dB at 6 kHz (the shelf).
    #[test]
    fn response_is_the_same_at_every_rate() {
        for rate in [8_000, 16_000, 22_050, 44_100, 48_000, 96_000, 192_000] {
            let at = |f: f64| gain_db(rate, f);
            let (low, mid) = (at(20.0), at(1000.0));
            println!("{rate} Hz: 20 Hz {low:.3} dB, 1 kHz {mid:.3} dB");
            assert!((mid - 0.69).abs() < 0.05, "{rate} Hz: 1 kHz {mid:.3} dB");
            assert!((low + 13.3).abs() < 0.25, "{rate} Hz: 20 Hz {low:.3} dB");
            if rate >= 16_000 {
                let high = at(6_000.0);
                assert!((high - 4.0).abs() < 0.15, "{rate} Hz: 6 kHz {high:.3} dB");
            }
        }
    }
}
