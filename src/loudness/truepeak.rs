//! A streaming true-peak meter (ITU-R BS.1770-4 Annex 2), and the
//! oversampler the limiter detects peaks with.
//!
//! Both work on planar `f32` audio and allocate only at construction: every
//! buffer used while processing is sized up front and reused, and input of
//! any length is handled in internal chunks of at most [`SCRATCH_FRAMES`]
//! frames.
//!
//! # Detection
//!
//! Inter-sample peaks are found the ITU-R BS.1770-4 Annex 2 way: the signal
//! is oversampled 4x (2x at 96 kHz and above) by a polyphase FIR whose
//! prototype is a Hann-windowed sinc computed at construction, and the peak is
//! the largest absolute value of the oversampled signal. Phase 0 of the
//! polyphase filter is the identity (the sinc is zero at every other integer
//! offset), so it is taken directly from the input and the reading is never
//! below the sample peak.

/// Length of the polyphase prototype filter in oversampled taps: 48, as in
/// the ITU-R BS.1770-4 Annex 2 reference (12 taps per phase at 4x, 24 at 2x).
/// The design is the same Hann-windowed sinc that the `ebur128` crate uses,
/// so this meter and ebur128's read alike (the tests compare them).
const PROTO_TAPS: usize = 48;

/// Frames processed per internal chunk (the size of every scratch buffer).
pub(crate) const SCRATCH_FRAMES: usize = 1024;

/// Replaces NaN and infinities by silence.
#[inline]
fn sanitize(v: f32) -> f32 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// Frames in planar `input`: the longest of its first `channels` channels
/// (shorter or missing channels count as silence).
pub(crate) fn longest(input: &[&[f32]], channels: usize) -> usize {
    input
        .iter()
        .take(channels)
        .map(|c| c.len())
        .max()
        .unwrap_or(0)
}

/// Copies `src` (sanitised) into `dst`, or zeros when there is no source;
/// a source shorter than `dst` is padded with zeros.
pub(crate) fn load(dst: &mut [f32], src: Option<&[f32]>) {
    match src {
        Some(src) => {
            let k = src.len().min(dst.len());
            for (d, s) in dst[..k].iter_mut().zip(&src[..k]) {
                *d = sanitize(*s);
            }
            dst[k..].fill(0.0);
        }
        None => dst.fill(0.0),
    }
}

/// Streaming polyphase oversampler that reports, per input frame, the peak
/// of the oversampled signal over all channels.
#[derive(Debug, Clone)]
pub(crate) struct Oversampler {
    /// Taps per phase (input samples the interpolator spans).
    taps: usize,
    /// Coefficients of phases `1..factor`, ordered oldest sample first.
    phases: Vec<Vec<f32>>,
    /// Per channel: `taps - 1` frames of history followed by room for a chunk.
    pub(crate) hist: Vec<Vec<f32>>,
    /// Accumulator for one phase over a chunk.
    acc: Vec<f32>,
    /// Bound on `|oversampled| / max |inputs it spans|`: the largest sum of
    /// absolute coefficients of any phase (at least 1, for phase 0), raised
    /// by a relative 1e-4 so that `f32` rounding in the sums stays under it.
    gain: f32,
    /// Per run of [`SPAN`] frames of the current chunk: whether it needs
    /// the interpolator.
    need: Vec<bool>,
}

/// Frames per run in [`Oversampler::detect`]'s quiet-input test.
const SPAN: usize = 64;

impl Oversampler {
    pub(crate) fn new(channels: usize, sample_rate: u32) -> Self {
        let factor: usize = if sample_rate >= 96_000 { 2 } else { 4 };
        let n = PROTO_TAPS;
        let taps = n / factor;
        // Prototype: Hann-windowed sinc with zeros at every multiple of
        // `factor` except the centre `n / 2`, i.e. an interpolating filter
        // (the window is zero at j = 0 and would be zero again at j = n).
        let proto: Vec<f64> = (0..n)
            .map(|j| {
                let w = 0.5 * (1.0 - (2.0 * std::f64::consts::PI * j as f64 / n as f64).cos());
                let x = (j as f64 - (n / 2) as f64) / factor as f64;
                let sinc = if x == 0.0 {
                    1.0
                } else {
                    let px = std::f64::consts::PI * x;
                    px.sin() / px
                };
                w * sinc
            })
            .collect();
        // Phase p weights input x[i - t] by proto[t * factor + p], which
        // interpolates the point i - taps/2 + p/factor. Stored reversed
        // (index k = taps - 1 - t) so that it lines up with the history slice.
        // Phase 0 is the identity (x[i - taps/2]) and is not stored.
        let phases: Vec<Vec<f32>> = (1..factor)
            .map(|p| {
                (0..taps)
                    .map(|k| proto[(taps - 1 - k) * factor + p] as f32)
                    .collect()
            })
            .collect();
        let gain = phases
            .iter()
            .map(|c| c.iter().map(|x| f64::from(x.abs())).sum::<f64>())
            .fold(1.0f64, f64::max);
        Oversampler {
            taps,
            gain: (gain * (1.0 + 1e-4)) as f32,
            need: vec![false; SCRATCH_FRAMES.div_ceil(SPAN)],
            phases,
            hist: vec![vec![0.0; taps - 1 + SCRATCH_FRAMES]; channels],
            acc: vec![0.0; SCRATCH_FRAMES],
        }
    }

    /// Detector delay in frames: the oversampled points of `[f, f + 1)` are
    /// known once input frame `f + half()` has arrived.
    pub(crate) fn half(&self) -> usize {
        self.taps / 2
    }

    /// Slot for the next `n` (<= SCRATCH_FRAMES) input frames of channel `c`.
    pub(crate) fn input_mut(&mut self, c: usize, n: usize) -> &mut [f32] {
        let t = self.taps;
        &mut self.hist[c][t - 1..t - 1 + n]
    }

    /// After the next `n` frames of every channel were written with
    /// [`input_mut`](Self::input_mut): writes into `peaks[i]` the largest
    /// oversampled magnitude over all channels in `[f, f + 1)`, where `f` is
    /// the frame `half()` frames before the `i`-th new one.
    ///
    /// Values at or under `floor` need not be exact: a run of [`SPAN`]
    /// frames whose interpolator inputs are provably too quiet to produce an
    /// oversampled value above `floor` gets its sample peaks (phase 0)
    /// instead, which are never above the exact value. So every value above
    /// `floor` is exact, and a caller that only compares against `floor`
    /// (the limiter's threshold, the meter's running maximum) gets the same
    /// result as from the full computation.
    pub(crate) fn detect(&mut self, n: usize, peaks: &mut [f32], floor: f32) {
        let t = self.taps;
        let x0 = t - 1 - t / 2;
        let peaks = &mut peaks[..n];
        peaks.fill(0.0);
        // Which runs need the interpolator: |sum c_k x_k| <= gain * max |x_k|.
        let mut runs = 0;
        for (s, need) in self.need.iter_mut().enumerate() {
            let a = s * SPAN;
            if a >= n {
                break;
            }
            let b = (a + SPAN).min(n);
            let loudest = self
                .hist
                .iter()
                .map(|h| h[a..b + t - 1].iter().fold(0.0f32, |m, x| m.max(x.abs())))
                .fold(0.0f32, f32::max);
            *need = loudest * self.gain > floor;
            runs = s + 1;
        }
        let acc = &mut self.acc[..n];
        for hist in &mut self.hist {
            // Phase 0 is the sample itself: x[i - half] sits at k = taps - 1 - half.
            for (p, x) in peaks.iter_mut().zip(&hist[x0..x0 + n]) {
                *p = p.max(x.abs());
            }
            for (s, _) in self.need[..runs]
                .iter()
                .enumerate()
                .filter(|(_, &need)| need)
            {
                let (a, b) = (s * SPAN, ((s + 1) * SPAN).min(n));
                for coefs in &self.phases {
                    let acc = &mut acc[a..b];
                    acc.fill(0.0);
                    for (k, &ck) in coefs.iter().enumerate() {
                        for (y, x) in acc.iter_mut().zip(&hist[a + k..b + k]) {
                            *y += ck * x;
                        }
                    }
                    for (p, y) in peaks[a..b].iter_mut().zip(acc.iter()) {
                        *p = p.max(y.abs());
                    }
                }
            }
            hist.copy_within(n..n + t - 1, 0);
        }
    }

    pub(crate) fn reset(&mut self) {
        for h in &mut self.hist {
            h.fill(0.0);
        }
    }
}

/// Streaming 4x-oversampled true-peak meter (2x at 96 kHz and above), in the
/// style of ITU-R BS.1770-4 Annex 2.
///
/// The inter-sample points of the last 6 frames (12 at 2x) are only seen once more
/// input follows; to measure a finished clip completely, feed a few frames of
/// silence at the end.
#[derive(Debug, Clone)]
pub struct TruePeakMeter {
    os: Oversampler,
    peaks: Vec<f32>,
    max: f32,
}

impl TruePeakMeter {
    /// A meter for `channels` channels at `sample_rate`.
    pub fn new(channels: usize, sample_rate: u32) -> Self {
        TruePeakMeter {
            os: Oversampler::new(channels, sample_rate),
            peaks: vec![0.0; SCRATCH_FRAMES],
            max: 0.0,
        }
    }

    /// Measures planar frames (one slice per channel, all the same length;
    /// missing or short channels count as silence, NaN and infinities as 0).
    pub fn process(&mut self, input: &[&[f32]]) {
        let channels = self.os.hist.len();
        let frames = longest(input, channels);
        let mut start = 0;
        while start < frames {
            let n = (frames - start).min(SCRATCH_FRAMES);
            for c in 0..channels {
                let src = input
                    .get(c)
                    .map(|s| &s[start.min(s.len())..(start + n).min(s.len())]);
                let dst = self.os.input_mut(c, n);
                load(dst, src);
                // Sample peak of the new frames (the interpolator sees them
                // only half() frames later).
                for x in dst.iter() {
                    self.max = self.max.max(x.abs());
                }
            }
            self.os.detect(n, &mut self.peaks, self.max);
            for p in &self.peaks[..n] {
                self.max = self.max.max(*p);
            }
            start += n;
        }
    }

    /// Largest true peak so far, linear, maximum over channels.
    pub fn true_peak(&self) -> f32 {
        self.max
    }

    /// Largest true peak so far in dBTP.
    #[cfg(test)]
    pub fn true_peak_dbtp(&self) -> f64 {
        20.0 * f64::from(self.max).log10()
    }

    /// The largest true peak since the last call, linear; the interpolator
    /// keeps its history, so the next period is measured as part of the
    /// same stream (a peak is counted in the period where the interpolator
    /// sees it, a few frames after its samples).
    pub(crate) fn take_peak(&mut self) -> f32 {
        std::mem::take(&mut self.max)
    }
}
