//! Look-ahead true-peak limiter.
//!
//! It works on planar `f32` audio and allocates only at construction: every
//! buffer used while processing is sized up front and reused, and input of
//! any length is handled in internal chunks of at most [`SCRATCH_FRAMES`]
//! frames. Peaks are detected by the true-peak meter's oversampler
//! ([`crate::loudness::truepeak`], where the detection is described).
//!
//! # Limiting
//!
//! For every frame `n` the detector gives `seg[n]`, the largest oversampled
//! magnitude over all channels in the interval `[n, n + 1)` (one gain for all
//! channels, so the stereo image never shifts). From it:
//!
//! 1. required gain `r[n] = min(1, c / seg[n])`, where `c` is the ceiling
//!    lowered by a small safety margin;
//! 2. windowed minimum `m[n] = min r[j]` for `j` in `[n - H, n + L - 1 + H]`
//!    (`L` = look-ahead frames, `H` = a short hold of half the FIR length);
//! 3. release `h[n] = min(m[n], 1 - (1 - h[n-1]) * a)`, `a = exp(-1 / (release * rate))`,
//!    so the gain recovers exponentially toward 1 but never rises above the
//!    windowed minimum;
//! 4. attack smoothing `G[n] = mean(h[n - L + 1 ..= n])`, a moving average of
//!    the look-ahead length, so the gain ramps down linearly over `L` frames
//!    before a peak instead of jumping (also capped by the window's largest
//!    `h`, which keeps the bound exact in floating point);
//! 5. output `y[n] = G[n] * x[n]`, with `x` delayed by the total latency
//!    `H + (L - 1) + H` frames (detector delay, then the minimum window's
//!    look-ahead): 232 frames (5.3 ms) at 44.1 kHz with the defaults.
//!
//! Because the minimum window extends `H` frames past each side of a peak,
//! the ramp is complete before the interpolator's span reaches the peak; the
//! full argument is at `GainComputer::push`.

use std::collections::VecDeque;

use crate::audio::units::db_to_gain;
use crate::loudness::truepeak::{load, longest, Oversampler, SCRATCH_FRAMES};

/// Safety margin below the ceiling, in dB. The oversampled peak of `g * x` is
/// not exactly `g` times the oversampled peak of `x` when `g` changes from
/// sample to sample (the interpolator mixes samples that got slightly
/// different gains), and the gain is rounded to `f32`; the margin absorbs both.
pub const MARGIN_DB: f64 = 0.1;

/// Release snaps to exactly 1 when this close to it (about 9e-6 dB), so
/// signals under the ceiling pass through bit-exactly once recovered.
const SNAP: f64 = 1e-6;

/// Default look-ahead in milliseconds.
pub const DEFAULT_LOOKAHEAD_MS: f64 = 5.0;
/// Default release time constant in milliseconds.
pub const DEFAULT_RELEASE_MS: f64 = 100.0;

/// The largest `f32` not above `x`.
fn f32_at_most(x: f64) -> f32 {
    let f = x as f32;
    if f64::from(f) > x {
        // The next f32 toward minus infinity (x is finite here: f > x).
        match f.to_bits() {
            0 | 0x8000_0000 => -f32::from_bits(1),
            b if f > 0.0 => f32::from_bits(b - 1),
            b => f32::from_bits(b + 1),
        }
    } else {
        f
    }
}

/// Gain computer: required gains in, smoothed gains out, `L - 1 + H` frames
/// later.
#[derive(Debug, Clone)]
struct GainComputer {
    /// Internal ceiling (linear, margin included).
    thresh: f64,
    /// Length of the minimum window, `L + 2H`.
    window: u64,
    /// Monotonic (increasing values) queue of `(frame, r)` for the sliding
    /// minimum. Entries equal to 1 are never stored: an empty queue means 1.
    minq: VecDeque<(u64, f64)>,
    /// Index of the next required gain.
    next: u64,
    /// Release coefficient per frame.
    release: f64,
    /// Last released gain `h[n-1]`.
    h: f64,
    /// Last `L` values of `1 - h` (the moving-average window).
    ring: Vec<f64>,
    pos: usize,
    /// Sum of `ring` and the number of non-zero entries in it.
    deficit: f64,
    nonzero: usize,
    /// Monotonic (decreasing values) queue of `(frame, h)` for the sliding
    /// maximum of h over the same `L` frames.
    maxq: VecDeque<(u64, f64)>,
}

impl GainComputer {
    fn new(thresh: f64, lookahead: usize, hold: usize, release: f64) -> Self {
        let window = (lookahead + 2 * hold) as u64;
        GainComputer {
            thresh,
            window,
            minq: VecDeque::with_capacity(window as usize + 1),
            next: 0,
            release,
            h: 1.0,
            ring: vec![0.0; lookahead],
            pos: 0,
            deficit: 0.0,
            nonzero: 0,
            maxq: VecDeque::with_capacity(lookahead + 1),
        }
    }

    fn reset(&mut self) {
        self.minq.clear();
        self.next = 0;
        self.h = 1.0;
        self.ring.fill(0.0);
        self.pos = 0;
        self.deficit = 0.0;
        self.nonzero = 0;
        self.maxq.clear();
    }

    /// Whether the computer is at rest: no reduction pending or releasing,
    /// so required gains of 1 give gains of exactly 1.
    fn idle(&self) -> bool {
        self.minq.is_empty() && self.nonzero == 0 && self.h == 1.0
    }

    /// The effect of `n` calls of [`push`](Self::push) with readings at or
    /// under the threshold on an [`idle`](Self::idle) computer (each would
    /// return 1), without the per-frame work.
    fn pass(&mut self, n: usize) {
        debug_assert!(self.idle());
        if n == 0 {
            return;
        }
        self.next += n as u64;
        self.pos = (self.pos + n) % self.ring.len();
        self.deficit = 0.0;
        self.maxq.clear();
        self.maxq.push_back((self.next - 1, 1.0));
    }

    /// Takes `seg[j]` (for the next frame `j`) and returns `G[j - (L - 1) - H]`.
    //
    // Why the gain at a peak is low enough: let frame k need r[k]. The
    // minimum window of m[n] covers k for every n in [k - L + 1 - H, k + H],
    // so m[n] <= r[k] there, and h[n] <= m[n] <= r[k] because the release
    // can only raise h up to m. G[n] averages h over [n - L + 1, n]; for n in
    // [k - H, k + H] all of those frames lie in [k - L + 1 - H, k + H], so
    // G[n] <= r[k]: the average of values that are all <= r[k] is <= r[k].
    // The ramp therefore finishes (reaches r[k] or lower) H frames *before*
    // frame k and stays there until H frames after it, which covers every
    // sample the interpolator uses for the points in [k, k + 1) (it reaches
    // taps/2 = H samples to each side). An isolated peak is thus scaled by one
    // constant gain over the interpolator's whole support, so its
    // oversampled value is exactly r[k] * seg[k] <= c. Only where the gain
    // still varies inside that support (several peaks close together) can
    // the interpolated value deviate slightly, which the margin covers.
    //
    // In floating point the running mean has an absolute error near 1e-16,
    // which would break "<= r[k]" for absurdly loud input (r ~ 1e-30), so G
    // is also capped by the sliding maximum of h over the same window: the
    // maximum of values that are all <= r[k] is <= r[k] exactly.
    fn push(&mut self, seg: f32) -> f32 {
        let seg = f64::from(seg);
        let r = if seg <= self.thresh {
            1.0
        } else if seg.is_finite() {
            self.thresh / seg
        } else {
            0.0
        };
        let j = self.next;
        self.next += 1;

        // Sliding minimum over r[j - window + 1 ..= j].
        while let Some(&(i, _)) = self.minq.front() {
            if i + self.window <= j {
                self.minq.pop_front();
            } else {
                break;
            }
        }
        if r < 1.0 {
            while let Some(&(_, v)) = self.minq.back() {
                if v >= r {
                    self.minq.pop_back();
                } else {
                    break;
                }
            }
            self.minq.push_back((j, r));
        }
        let m = self.minq.front().map_or(1.0, |e| e.1);

        // Release toward 1, never above the windowed minimum.
        let released = 1.0 - (1.0 - self.h) * self.release;
        let h = if m >= 1.0 && 1.0 - released < SNAP {
            1.0
        } else {
            m.min(released)
        };
        self.h = h;

        // Moving average of h over the last L frames, kept as a sum of
        // deficits 1 - h so that an all-ones window gives exactly 1.
        let d = 1.0 - h;
        let old = std::mem::replace(&mut self.ring[self.pos], d);
        self.pos += 1;
        if self.pos == self.ring.len() {
            self.pos = 0;
        }
        if old > 0.0 {
            self.nonzero -= 1;
        }
        if d > 0.0 {
            self.nonzero += 1;
        }
        let len = self.ring.len() as u64;
        while let Some(&(i, _)) = self.maxq.front() {
            if i + len <= j {
                self.maxq.pop_front();
            } else {
                break;
            }
        }
        while let Some(&(_, v)) = self.maxq.back() {
            if v <= h {
                self.maxq.pop_back();
            } else {
                break;
            }
        }
        self.maxq.push_back((j, h));
        if self.nonzero == 0 {
            self.deficit = 0.0;
            1.0
        } else {
            self.deficit += d - old;
            let mean = 1.0 - self.deficit / len as f64;
            let hmax = self.maxq.front().map_or(1.0, |e| e.1);
            mean.min(hmax).clamp(0.0, 1.0) as f32
        }
    }
}

/// Look-ahead true-peak limiter for planar `f32` audio, linked across
/// channels. The algorithm and its proof are in the
/// documentation of `src/dsp/limiter.rs`.
#[derive(Debug, Clone)]
pub struct Limiter {
    channels: usize,
    sample_rate: u32,
    ceiling_dbtp: f64,
    latency: usize,
    os: Oversampler,
    gc: GainComputer,
    /// Per channel: `latency` delayed frames followed by room for a chunk.
    delay: Vec<Vec<f32>>,
    peaks: Vec<f32>,
    gains: Vec<f32>,
    /// Output frames still to drop (they precede the first input frame).
    skip: usize,
    /// The largest `f32` not above the gain computer's threshold: detector
    /// readings at or under it ask for no gain reduction.
    floor: f32,
    min_gain: f32,
}

impl Limiter {
    /// A limiter with a true-peak ceiling of `ceiling_dbtp` dBTP (e.g. -1.0),
    /// 5 ms look-ahead and 100 ms release.
    /// A non-finite ceiling is taken as -1 dBTP.
    pub fn new(channels: usize, sample_rate: u32, ceiling_dbtp: f64) -> Self {
        Self::build(
            channels,
            sample_rate,
            ceiling_dbtp,
            DEFAULT_LOOKAHEAD_MS,
            DEFAULT_RELEASE_MS,
        )
    }

    /// The same limiter with another look-ahead (attack ramp length, clamped
    /// to 0.1..=100 ms) and release time constant (clamped to 0..=10 000 ms).
    /// Resets the stream state.
    pub fn with_timing(self, lookahead_ms: f64, release_ms: f64) -> Self {
        Self::build(
            self.channels,
            self.sample_rate,
            self.ceiling_dbtp,
            lookahead_ms,
            release_ms,
        )
    }

    fn build(
        channels: usize,
        sample_rate: u32,
        ceiling_dbtp: f64,
        lookahead_ms: f64,
        release_ms: f64,
    ) -> Self {
        let ceiling_dbtp = if ceiling_dbtp.is_finite() {
            ceiling_dbtp.min(20.0)
        } else {
            -1.0
        };
        let lookahead_ms = if lookahead_ms.is_finite() {
            lookahead_ms.clamp(0.1, 100.0)
        } else {
            DEFAULT_LOOKAHEAD_MS
        };
        let release_ms = if release_ms.is_finite() {
            release_ms.clamp(0.0, 10_000.0)
        } else {
            DEFAULT_RELEASE_MS
        };
        let rate = f64::from(sample_rate.max(1));
        let lookahead = ((lookahead_ms * rate / 1000.0).round() as usize).max(1);
        let release_frames = release_ms * rate / 1000.0;
        let release = if release_frames > 0.0 {
            (-1.0 / release_frames).exp()
        } else {
            0.0
        };
        let thresh = db_to_gain(ceiling_dbtp - MARGIN_DB);
        // Detector delay + minimum window's look-ahead (L - 1 + H).
        let os = Oversampler::new(channels, sample_rate);
        let half = os.half();
        let latency = half + lookahead - 1 + half;
        Limiter {
            channels,
            sample_rate,
            ceiling_dbtp,
            latency,
            os,
            gc: GainComputer::new(thresh, lookahead, half, release),
            delay: vec![vec![0.0; latency + SCRATCH_FRAMES]; channels],
            peaks: vec![0.0; SCRATCH_FRAMES],
            gains: vec![0.0; SCRATCH_FRAMES],
            skip: latency,
            floor: f32_at_most(thresh),
            min_gain: 1.0,
        }
    }

    /// Latency in frames: output frame `n` is input frame `n` (limited), and
    /// the first `latency()` input frames come out only on later calls or on
    /// [`flush`](Self::flush).
    pub fn latency(&self) -> usize {
        self.latency
    }

    /// The ceiling in dBTP.
    pub fn ceiling_dbtp(&self) -> f64 {
        self.ceiling_dbtp
    }

    /// Processes planar input frames (one slice per channel, all the same
    /// length; missing or short channels count as silence, NaN and infinities
    /// as 0) and appends the output frames to `out` (one `Vec` per channel;
    /// extra input channels beyond the limiter's are ignored, missing `out`
    /// channels are not written).
    pub fn process(&mut self, input: &[&[f32]], out: &mut [Vec<f32>]) {
        let frames = longest(input, self.channels);
        let mut start = 0;
        while start < frames {
            let n = (frames - start).min(SCRATCH_FRAMES);
            self.chunk(Some((input, start)), n, out);
            start += n;
        }
    }

    /// Emits the remaining `latency()` frames (so total output equals total
    /// input) and resets the stream state for a new stream; `min_gain` is kept.
    pub fn flush(&mut self, out: &mut [Vec<f32>]) {
        let mut left = self.latency;
        while left > 0 {
            let n = left.min(SCRATCH_FRAMES);
            self.chunk(None, n, out);
            left -= n;
        }
        self.reset();
    }

    /// Drops the stream state (buffered frames and gain) without emitting;
    /// `min_gain` is kept.
    pub fn reset(&mut self) {
        self.os.reset();
        self.gc.reset();
        for d in &mut self.delay {
            d.fill(0.0);
        }
        self.skip = self.latency;
    }

    /// Smallest gain applied so far (linear; 1 when nothing was limited).
    pub fn min_gain(&self) -> f32 {
        self.min_gain
    }

    /// Runs `n <= SCRATCH_FRAMES` frames (from `input` at `start`, or silence).
    fn chunk(&mut self, input: Option<(&[&[f32]], usize)>, n: usize, out: &mut [Vec<f32>]) {
        let lat = self.latency;
        for c in 0..self.channels {
            let src = input.and_then(|(inp, start)| {
                inp.get(c)
                    .map(|s| &s[start.min(s.len())..(start + n).min(s.len())])
            });
            load(self.os.input_mut(c, n), src);
            let d = &mut self.delay[c];
            load(&mut d[lat..lat + n], src);
        }
        self.os.detect(n, &mut self.peaks, self.floor);
        let floor = self.floor;
        if self.gc.idle() && self.peaks[..n].iter().all(|&p| p <= floor) {
            self.gains[..n].fill(1.0);
            self.gc.pass(n);
        } else {
            for (g, p) in self.gains[..n].iter_mut().zip(&self.peaks[..n]) {
                *g = self.gc.push(*p);
            }
        }
        let skip = self.skip.min(n);
        self.skip -= skip;
        let gains = &self.gains[skip..n];
        for g in gains {
            self.min_gain = self.min_gain.min(*g);
        }
        for (c, d) in self.delay.iter_mut().enumerate() {
            if let Some(o) = out.get_mut(c) {
                o.extend(d[skip..n].iter().zip(gains).map(|(x, g)| x * g));
            }
            d.copy_within(n..n + lat, 0);
        }
    }
}

impl crate::audio::Processor for Limiter {
    fn process(&mut self, input: &crate::audio::Block, out: &mut crate::audio::Block) {
        Limiter::process(self, &input.planes(), out.channels_mut());
    }

    fn finish(&mut self, out: &mut crate::audio::Block) {
        self.flush(out.channels_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loudness::truepeak::TruePeakMeter;
    use ebur128::{EbuR128, Mode};
    use std::f64::consts::PI;

    const CEIL: f64 = -1.0;

    /// Deterministic white noise in [-amp, amp].
    fn noise(n: usize, amp: f32, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let u = (s >> 40) as f32 / (1u64 << 24) as f32; // [0, 1)
                (2.0 * u - 1.0) * amp
            })
            .collect()
    }

    fn sine(n: usize, rate: u32, freq: f64, amp: f64, phase: f64) -> Vec<f32> {
        (0..n)
            .map(|i| (amp * (2.0 * PI * freq * i as f64 / f64::from(rate) + phase).sin()) as f32)
            .collect()
    }

    fn square(n: usize, period: usize, amp: f32) -> Vec<f32> {
        (0..n)
            .map(|i| if (i % period) < period / 2 { amp } else { -amp })
            .collect()
    }

    fn impulses(n: usize, every: usize, amp: f32) -> Vec<f32> {
        (0..n)
            .map(|i| match i % every {
                0 => amp,
                3 => -amp,
                _ => 0.0,
            })
            .collect()
    }

    fn planes(sig: &[Vec<f32>]) -> Vec<&[f32]> {
        sig.iter().map(Vec::as_slice).collect()
    }

    /// Runs `sig` through `lim` in blocks of `block` frames, then flushes.
    fn run(lim: &mut Limiter, sig: &[Vec<f32>], block: usize) -> Vec<Vec<f32>> {
        let mut out = vec![Vec::new(); sig.len()];
        let len = sig[0].len();
        let mut start = 0;
        while start < len {
            let end = (start + block).min(len);
            let chunk: Vec<&[f32]> = sig.iter().map(|c| &c[start..end]).collect();
            lim.process(&chunk, &mut out);
            start = end;
        }
        lim.flush(&mut out);
        out
    }

    /// Appends silence so that both meters also see the inter-sample points
    /// at the very end of the signal.
    fn padded(sig: &[Vec<f32>]) -> Vec<Vec<f32>> {
        sig.iter()
            .map(|c| {
                c.iter()
                    .copied()
                    .chain(std::iter::repeat_n(0.0, 64))
                    .collect()
            })
            .collect()
    }

    fn ebur_tp_db(sig: &[Vec<f32>], rate: u32) -> f64 {
        let sig = padded(sig);
        let mut e = EbuR128::new(sig.len() as u32, rate, Mode::TRUE_PEAK).unwrap();
        e.add_frames_planar_f32(&planes(&sig)).unwrap();
        let tp = (0..sig.len() as u32)
            .map(|c| e.true_peak(c).unwrap())
            .fold(0.0, f64::max);
        20.0 * tp.log10()
    }

    fn meter_tp_db(sig: &[Vec<f32>], rate: u32) -> f64 {
        let sig = padded(sig);
        let mut m = TruePeakMeter::new(sig.len(), rate);
        m.process(&planes(&sig));
        m.true_peak_dbtp()
    }

    fn sample_peak(sig: &[Vec<f32>]) -> f32 {
        sig.iter().flatten().fold(0.0f32, |a, x| a.max(x.abs()))
    }

    #[test]
    fn under_ceiling_passes_bit_exact() {
        let rate = 48_000;
        let n = 100_000;
        let l: Vec<f32> = sine(n, rate, 440.0, 0.5, 0.0)
            .iter()
            .zip(noise(n, 0.1, 1))
            .map(|(a, b)| a + b)
            .collect();
        let r = sine(n, rate, 3000.0, 0.6, 1.0);
        let sig = vec![l, r];
        assert!(meter_tp_db(&sig, rate) < CEIL - 0.5);
        for block in [1, 7, 4096, n] {
            let mut lim = Limiter::new(2, rate, CEIL);
            let out = run(&mut lim, &sig, block);
            assert_eq!(out, sig, "block {block}");
            assert_eq!(lim.min_gain(), 1.0);
        }
    }

    fn loud_signals(rate: u32, n: usize) -> Vec<(&'static str, Vec<Vec<f32>>)> {
        let nyq9 = 0.9 * f64::from(rate) / 2.0;
        vec![
            (
                "sine +6 dBFS",
                vec![
                    sine(n, rate, 997.0, 2.0, 0.0),
                    sine(n, rate, 997.0, 1.0, 0.3),
                ],
            ),
            ("square", vec![square(n, 441, 1.5), square(n, 100, 0.9)]),
            (
                "impulses",
                vec![impulses(n, 1500, 4.0), impulses(n, 777, 2.0)],
            ),
            (
                "fs/4 at 45 deg, full scale",
                vec![
                    sine(n, rate, f64::from(rate) / 4.0, 1.0, PI / 4.0),
                    sine(n, rate, f64::from(rate) / 4.0, 1.0, PI / 4.0),
                ],
            ),
            (
                "0.9 Nyquist, full scale",
                vec![sine(n, rate, nyq9, 1.0, 0.1), sine(n, rate, nyq9, 0.9, 1.3)],
            ),
            (
                "white noise +10 dB",
                vec![noise(n, 3.16, 7), noise(n, 3.16, 8)],
            ),
            (
                // Dense impulses of wildly varying size: the gain keeps
                // changing inside the interpolator's span.
                "random impulses",
                vec![
                    noise(n, 1.0, 5)
                        .iter()
                        .zip(noise(n, 1.0, 6))
                        .enumerate()
                        .map(
                            |(i, (a, b))| {
                                if i % 5 == 0 {
                                    a * 10f32.powf(b)
                                } else {
                                    0.0
                                }
                            },
                        )
                        .collect(),
                    sine(n, rate, 0.45 * f64::from(rate), 1.5, 0.0)
                        .iter()
                        .zip(noise(n, 1.0, 12))
                        .map(|(a, b)| a * b.abs())
                        .collect(),
                ],
            ),
            (
                "bursts",
                vec![
                    (0..n)
                        .map(|i| if (i / 2000) % 3 == 0 { 3.0 } else { 0.2 })
                        .zip(noise(n, 1.0, 3))
                        .map(|(a, b)| a * b)
                        .collect(),
                    noise(n, 0.3, 4),
                ],
            ),
        ]
    }

    #[test]
    fn output_true_peak_never_exceeds_ceiling() {
        for rate in [44_100u32, 48_000, 96_000] {
            for (name, sig) in loud_signals(rate, 30_000) {
                for block in [1, 7, 4096] {
                    let mut lim = Limiter::new(2, rate, CEIL);
                    let out = run(&mut lim, &sig, block);
                    assert_eq!(out[0].len(), sig[0].len());
                    assert_eq!(out[1].len(), sig[1].len());
                    let ours = meter_tp_db(&out, rate);
                    let ebur = ebur_tp_db(&out, rate);
                    if block == 4096 {
                        println!(
                            "{rate} {name}: in {:.2} dBTP, out meter {ours:.4} ebur128 {ebur:.4}, min gain {:.2} dB",
                            meter_tp_db(&sig, rate),
                            20.0 * lim.min_gain().log10()
                        );
                    }
                    assert!(ours <= CEIL, "{rate} {name} block {block}: meter {ours}");
                    // In practice the output sits at the internal threshold
                    // (ceiling - 0.1 dB); gain changes inside the
                    // interpolator's span eat well under 0.01 dB of margin.
                    assert!(ours <= CEIL - MARGIN_DB + 0.01, "{rate} {name}: {ours}");
                    // ebur128 uses the same 48-tap Hann-sinc design but
                    // its own f32 accumulation order (observed difference
                    // < 0.0001 dB), and documents its algorithm as
                    // implementation-defined and subject to change. A
                    // different interpolator (e.g. our earlier 16-tap/phase
                    // design) read full-band noise up to 0.4 dB apart, so
                    // the allowance is for rounding, not for design drift.
                    assert!(
                        ebur <= CEIL + 0.05,
                        "{rate} {name} block {block}: ebur128 {ebur}"
                    );
                    assert!(lim.min_gain() < 1.0);
                }
            }
        }
    }

    #[test]
    fn non_finite_and_huge_input() {
        let rate = 48_000;
        let mut l = noise(5000, 1.0, 9);
        l[100] = f32::NAN;
        l[200] = f32::INFINITY;
        l[300] = f32::NEG_INFINITY;
        l[400] = 1e30;
        l[401] = -f32::MAX;
        l[402] = f32::MAX;
        let r = vec![f32::NAN; 5000];
        let sig = vec![l, r];
        let mut lim = Limiter::new(2, rate, CEIL);
        let out = run(&mut lim, &sig, 333);
        assert_eq!(out[0].len(), 5000);
        assert!(out.iter().flatten().all(|x| x.is_finite()));
        assert!(out[1].iter().all(|&x| x == 0.0));
        assert!(meter_tp_db(&out, rate) <= CEIL);
        // Degenerate settings do not panic either.
        let mut lim = Limiter::new(1, 0, f64::NAN).with_timing(f64::NAN, -5.0);
        let out = run(&mut lim, &sig[..1], 64);
        assert_eq!(out[0].len(), 5000);
        let mut lim = Limiter::new(0, 44_100, CEIL);
        let mut out: Vec<Vec<f32>> = Vec::new();
        lim.process(&[], &mut out);
        lim.flush(&mut out);
    }

    #[test]
    fn length_and_latency_alignment() {
        let rate = 44_100;
        let lim = Limiter::new(2, rate, CEIL);
        // 5 ms look-ahead (221 frames) + two half-lengths of the interpolator.
        assert_eq!(lim.latency(), 221 - 1 + 12);
        for len in [0usize, 1, 10, 231, 232, 233, 5000, 12_345] {
            for block in [1, 7, 4096] {
                let mut sig = vec![vec![0.0f32; len], vec![0.0f32; len]];
                if len > 0 {
                    sig[0][len / 2] = 0.5; // under the ceiling: passes untouched
                    sig[1][len - 1] = 4.0; // over: limited, but in place
                }
                let mut lim = Limiter::new(2, rate, CEIL);
                // Before the flush only len - latency frames can come out.
                let mut out = vec![Vec::new(); 2];
                for start in (0..len).step_by(block) {
                    let end = (start + block).min(len);
                    lim.process(&[&sig[0][start..end], &sig[1][start..end]], &mut out);
                }
                assert_eq!(out[0].len(), len.saturating_sub(lim.latency()));
                lim.flush(&mut out);
                assert_eq!(out[0].len(), len);
                assert_eq!(out[1].len(), len);
                if len > 0 {
                    assert_eq!(out[0][len / 2], 0.5 * lim_gain_at(&out, &sig, len / 2));
                    let argmax = (0..len)
                        .max_by(|&a, &b| out[1][a].abs().total_cmp(&out[1][b].abs()))
                        .unwrap();
                    assert_eq!(argmax, len - 1);
                    assert!(out[1][len - 1] > 0.0);
                }
            }
        }
    }

    /// Gain applied at frame `i`, as seen on the louder channel.
    fn lim_gain_at(out: &[Vec<f32>], sig: &[Vec<f32>], i: usize) -> f32 {
        let c = if sig[0][i].abs() >= sig[1][i].abs() {
            0
        } else {
            1
        };
        out[c][i] / sig[c][i]
    }

    #[test]
    fn impulse_delay_is_exact() {
        let rate = 48_000;
        let mut sig = vec![vec![0.0f32; 3000]];
        sig[0][1000] = 0.25;
        let mut lim = Limiter::new(1, rate, CEIL);
        let out = run(&mut lim, &sig, 7);
        assert_eq!(out, sig);
    }

    #[test]
    fn gain_recovers_after_peak() {
        let rate = 48_000;
        let n = rate as usize * 4;
        let burst_end = rate as usize / 2;
        // +6 dBFS sine for 0.5 s, then a -20 dBFS sine.
        let s = sine(n, rate, 1000.0, 1.0, 0.0);
        let x: Vec<f32> = s
            .iter()
            .enumerate()
            .map(|(i, v)| if i < burst_end { 2.0 * v } else { 0.1 * v })
            .collect();
        let sig = vec![x.clone()];
        let release_ms = 100.0;
        let mut lim = Limiter::new(1, rate, CEIL).with_timing(5.0, release_ms);
        let out = run(&mut lim, &sig, 4096);
        let min_db = 20.0 * f64::from(lim.min_gain()).log10();
        // TP of the burst is +6.02 dB, target -1.1 dBTP: about -7.1 dB.
        assert!((min_db + 7.12).abs() < 0.05, "min gain {min_db} dB");
        let tau = (release_ms / 1000.0 * f64::from(rate)) as usize;
        // Gain just after the burst ends: still low.
        let gain_at = |i: usize| {
            // Nearest sample with a usable input level.
            let j = (i..i + 50).find(|&j| x[j].abs() > 0.05).unwrap();
            out[0][j] / x[j]
        };
        let start = burst_end + lim.latency();
        assert!(gain_at(start) < 0.5);
        // Recovery is monotonic and within a few time constants.
        let mut prev = 0.0;
        for k in 0..12 {
            let g = gain_at(start + k * tau / 2);
            assert!(g >= prev - 1e-6, "gain fell during release");
            prev = g;
        }
        assert!(gain_at(start + 3 * tau) > 0.97);
        assert!(gain_at(start + 5 * tau) > 0.995);
        // Exactly 1 (bit-exact pass-through) once fully recovered.
        let later = start + 16 * tau;
        assert_eq!(&out[0][later..], &x[later..]);
    }

    #[test]
    fn meter_agrees_with_ebur128() {
        for rate in [44_100u32, 48_000, 96_000] {
            let n = 20_000;
            let cases: Vec<(&str, Vec<f32>)> = vec![
                ("sine 997", sine(n, rate, 997.0, 0.5, 0.2)),
                ("sine 5k", sine(n, rate, 5000.0, 0.7, 0.0)),
                ("sine 11k", sine(n, rate, 11_025.5, 0.7, 0.4)),
                (
                    "fs/4 45deg",
                    sine(n, rate, f64::from(rate) / 4.0, 0.8, PI / 4.0),
                ),
                ("noise", noise(n, 0.9, 11)),
                ("square", square(n, 200, 0.5)),
                ("impulses", impulses(n, 1000, 0.5)),
            ];
            for (name, x) in cases {
                // Fade in and out so neither meter sees an edge at the ends.
                let x: Vec<f32> = x
                    .iter()
                    .enumerate()
                    .map(|(i, v)| v * (i.min(n - 1 - i).min(1000) as f32 / 1000.0))
                    .collect();
                let sig = vec![x];
                let ours = meter_tp_db(&sig, rate);
                let ebur = ebur_tp_db(&sig, rate);
                println!("{rate} {name}: meter {ours:.3} ebur128 {ebur:.3}");
                assert!((ours - ebur).abs() < 0.1, "{rate} {name}: {ours} vs {ebur}");
                assert!(ours >= 20.0 * f64::from(sample_peak(&sig)).log10());
            }
        }
    }

    #[test]
    fn meter_sees_inter_sample_overs() {
        let rate = 48_000;
        // fs/4 at 45 degrees: every sample is +-0.707 of the amplitude.
        let sig = vec![sine(8000, rate, 12_000.0, 1.0, PI / 4.0)];
        let sp = sample_peak(&sig);
        assert!((sp - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-3);
        let mut m = TruePeakMeter::new(1, rate);
        m.process(&planes(&sig));
        assert!(m.true_peak() > sp * 1.3, "{} vs {sp}", m.true_peak());
        assert!((m.true_peak_dbtp()).abs() < 0.3);
        // Split into odd blocks: same reading.
        let mut m2 = TruePeakMeter::new(1, rate);
        for c in sig[0].chunks(7) {
            m2.process(&[c]);
        }
        assert_eq!(m.true_peak(), m2.true_peak());
    }

    /// Speech-like bursts: noise syllables whose peaks range from far under
    /// the ceiling to well over it, with short pauses between them.
    fn bursts(n: usize, seed: u64) -> Vec<f32> {
        let raw = noise(n, 1.0, seed);
        let levels = [0.05f32, 0.3, 0.7, 0.85, 0.95, 1.2, 0.02, 0.6, 2.0, 0.9];
        raw.iter()
            .enumerate()
            .map(|(i, x)| {
                let syl = i / 3000;
                let pos = (i % 3000) as f32 / 3000.0;
                let env = if pos < 0.8 {
                    (pos / 0.8 * PI as f32).sin()
                } else {
                    0.0
                };
                x * env * levels[syl % levels.len()]
            })
            .collect()
    }

    #[test]
    fn f32_at_most_rounds_down() {
        for x in [0.1f64, -0.1, 0.891_250_938, 1e-50, -1e-50, 0.0, 0.5] {
            let f = f32_at_most(x);
            assert!(f64::from(f) <= x, "{x}");
            // ... and it is the largest such f32.
            let up = if f >= 0.0 {
                f32::from_bits(f.to_bits() + 1)
            } else if f == -f32::from_bits(1) {
                0.0
            } else {
                f32::from_bits(f.to_bits() - 1)
            };
            assert!(f64::from(up) > x || up == 0.0 && x >= 0.0, "{x}");
        }
    }

    #[test]
    fn skipping_quiet_runs_changes_nothing() {
        // The detector skips the interpolator where its inputs are provably
        // too quiet; a limiter and a meter that never skip must agree exactly.
        let rate = 44_100;
        let n = rate as usize * 3;
        // Then a quarter-rate sine whose samples sit at 0.707 of its peak:
        // under the ceiling, while its inter-sample peaks are over it.
        let over = sine(n / 3, rate, f64::from(rate) / 4.0, 1.1, PI / 4.0);
        let sig: Vec<Vec<f32>> = [bursts(n, 5), bursts(n, 6)]
            .into_iter()
            .map(|mut c| {
                c.extend_from_slice(&over);
                c
            })
            .collect();
        let n = sig[0].len();
        let mut fast = Limiter::new(2, rate, CEIL);
        let mut exact = Limiter::new(2, rate, CEIL);
        exact.floor = -1.0;
        let a = run(&mut fast, &sig, 1000);
        let b = run(&mut exact, &sig, 1000);
        assert!(fast.min_gain() < 0.6, "the signal must be limited");
        assert_eq!(a, b);

        let mut meter = TruePeakMeter::new(2, rate);
        meter.process(&planes(&sig));
        let mut os = Oversampler::new(2, rate);
        let mut peaks = vec![0.0; SCRATCH_FRAMES];
        let mut want = 0.0f32;
        for start in (0..n).step_by(SCRATCH_FRAMES) {
            let m = (n - start).min(SCRATCH_FRAMES);
            for (c, ch) in sig.iter().enumerate() {
                os.input_mut(c, m).copy_from_slice(&ch[start..start + m]);
            }
            os.detect(m, &mut peaks, -1.0);
            want = peaks[..m].iter().fold(want, |a, &p| a.max(p));
        }
        // The meter also takes the newest samples' own peaks, which the
        // exact run sees only after `half()` more frames.
        let tail = sig
            .iter()
            .flat_map(|c| &c[n - 6..])
            .fold(want, |a, x| a.max(x.abs()));
        assert_eq!(meter.true_peak(), tail);
    }

    #[test]
    fn throughput_60s_stereo_noise() {
        let rate = 44_100;
        let n = rate as usize * 60;
        let sig = [noise(n, 2.0, 21), noise(n, 2.0, 22)];
        let mut lim = Limiter::new(2, rate, CEIL);
        let mut out = vec![Vec::with_capacity(n), Vec::with_capacity(n)];
        let t = std::time::Instant::now();
        for start in (0..n).step_by(4096) {
            let end = (start + 4096).min(n);
            lim.process(&[&sig[0][start..end], &sig[1][start..end]], &mut out);
        }
        lim.flush(&mut out);
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(out[0].len(), n);
        println!(
            "limiter: 60 s stereo 44.1 kHz in {:.3} s = {:.0}x real time ({:.1} Mframes/s)",
            secs,
            60.0 / secs,
            n as f64 / secs / 1e6
        );
    }
}
