//! The front end of a recording: rumble and DC removal, the downmix and the
//! silence threshold, decided from the whole recording before any sample is
//! trimmed or measured.
//!
//! Why each piece is here (issue 12, each failure seen with exit 0 before):
//!
//! - **High-pass** ([`HighPass`]): a DC offset of 0.01–0.02 (cheap USB
//!   microphones) kept every 20 ms window over −50 dBFS, so nothing was
//!   trimmed, and at 0.25 the offset ate the limiter's headroom (six
//!   calibration passes, −18.8 LUFS). The filter is a 2nd-order Butterworth
//!   high-pass (bilinear transform, cut-off pre-warped, so exactly −3 dB at
//!   the cut-off, default 60 Hz): maximally flat above the cut-off, −12 dB per
//!   octave below it, and a double zero at DC, so any constant offset goes
//!   to exactly zero. 60 Hz keeps the lowest male voices (fundamentals from
//!   about 85 Hz, which lose less than 1 dB) while taking out mains hum's
//!   fundamental in part, handling noise, HVAC and traffic rumble. The state
//!   starts as if the first sample had always been there, so a recording
//!   that begins at an offset does not start with a step the silence
//!   detector would call sound; and it runs at the input rate, before the
//!   resampler, whose start-up would otherwise turn the offset's first
//!   sample into a transient. The K-weighting's own 38 Hz high-pass is no
//!   substitute: it exists only inside the loudness meter, so the silence
//!   detector, the limiter, the true-peak meter and the delivered MP3s all
//!   still see the offset.
//! - **Downmix** ([`Downmix`]): averaging an anti-phase stereo file (one
//!   channel inverted) cancels the voice; averaging a one-sided file (voice
//!   in one channel, nothing in the other) halves it and mixes in the dead
//!   channel's noise. The choice is made from the correlation and energies
//!   of the whole recording ([`FrontAnalysis::downmix`]).
//! - **Threshold** ([`FrontAnalysis::threshold`]): a room whose noise floor
//!   is above −50 dBFS (a fan, a street) made every frame "sound". The floor
//!   is the 10th percentile of the 20 ms RMS of the chosen downmix; a floor
//!   above −56 dBFS (and at most −30 dBFS: louder, it is the signal, not a
//!   room) raises the threshold to floor + 6 dB, provided what
//!   then counts as sound is at least 12 dB louder than the floor (else the
//!   "floor" is the quiet part of a recording without pauses, not a room).
//!
//! The downmix and the floor are decisions about the whole recording, while
//! the input is decoded once and may be a one-shot reader. So the first
//! pass spools the high-passed recording with all its channels, resampled
//! to the output rate, untrimmed, while this module's [`FrontAnalysis`] gathers what
//! the decisions need (the channels' energy and correlation, and a 0.1 dB
//! histogram of the 20 ms RMS of each candidate downmix: a few kilobytes
//! whatever the length); then a second read of that spool applies the
//! downmix and trims with the chosen threshold. The price is that spool
//! (10.6 MB per channel per minute at 44.1 kHz, on disk, removed as soon as
//! it has been read) and one more pass over it.

use crate::audio::{Block, BlockSink, Processor, Source};
use crate::dsp::silence::SilenceSettings;
use crate::error::Result;

/// A 2nd-order Butterworth high-pass per channel (transposed direct form
/// II, `f64` state: at 60 Hz and 44.1 kHz the poles sit within 0.01 of the
/// unit circle, where `f32` state would add audible noise).
#[derive(Debug, Clone)]
pub struct HighPass {
    b: [f64; 3],
    a: [f64; 2],
    /// Per channel: the two state values.
    state: Vec<[f64; 2]>,
    started: bool,
    /// Cut-off 0: the samples pass unchanged.
    bypass: bool,
}

impl HighPass {
    /// A high-pass at `cutoff_hz` for `channels` channels at `rate` Hz
    /// (`cutoff_hz` 0: none, the samples pass unchanged).
    pub fn new(channels: usize, rate: u32, cutoff_hz: f64) -> Self {
        let w0 = 2.0 * std::f64::consts::PI * cutoff_hz / f64::from(rate);
        let (sin, cos) = w0.sin_cos();
        // Q = 1/√2 (Butterworth): alpha = sin(w0) / (2Q).
        let alpha = sin / std::f64::consts::SQRT_2;
        let a0 = 1.0 + alpha;
        let b0 = (1.0 + cos) / 2.0 / a0;
        HighPass {
            b: [b0, -2.0 * b0, b0],
            a: [-2.0 * cos / a0, (1.0 - alpha) / a0],
            state: vec![[0.0; 2]; channels],
            started: false,
            bypass: cutoff_hz <= 0.0,
        }
    }

    /// The magnitude response at `hz` for a filter at `cutoff_hz` (the
    /// analogue prototype's, which the bilinear transform matches at the
    /// cut-off and approaches far below Nyquist): `1/√(1 + (fc/f)⁴)`.
    pub fn analog_gain(cutoff_hz: f64, hz: f64) -> f64 {
        1.0 / (1.0 + (cutoff_hz / hz).powi(4)).sqrt()
    }
}

impl Processor for HighPass {
    fn process(&mut self, input: &Block, out: &mut Block) {
        let [b0, b1, b2] = self.b;
        let [a1, a2] = self.a;
        if self.bypass {
            for (c, o) in out.channels_mut().iter_mut().enumerate() {
                o.extend_from_slice(input.channel(c));
            }
            return;
        }
        if !self.started && !input.is_empty() {
            // Steady state for a constant input x0 (output 0).
            for (c, s) in self.state.iter_mut().enumerate() {
                let x0 = f64::from(input.channel(c)[0]);
                *s = [-b0 * x0, b2 * x0];
            }
            self.started = true;
        }
        for (c, s) in self.state.iter_mut().enumerate() {
            let o = out.channel_mut(c);
            let [mut s1, mut s2] = *s;
            o.extend(input.channel(c).iter().map(|&x| {
                let x = f64::from(x);
                let y = b0 * x + s1;
                s1 = b1 * x - a1 * y + s2;
                s2 = b2 * x - a2 * y;
                y as f32
            }));
            *s = [s1, s2];
        }
    }

    fn finish(&mut self, _out: &mut Block) {}
}

/// How a recording's channels become one.
#[derive(Debug, Clone, PartialEq)]
pub struct Downmix {
    /// Weight of each input channel in the mono signal.
    pub weights: Vec<f32>,
    /// What was chosen, for the report: `"mono"`, `"average"`,
    /// `"difference"` (anti-phase stereo: left minus right, halved), or
    /// `"channel N"` (one channel alone, counted from 1).
    pub rule: String,
    /// Why, for the log.
    pub reason: String,
}

/// Below this correlation between two channels, stereo is anti-phase and
/// the difference is kept (an inverted copy has −1; two independent
/// microphones in one room are well above −0.5).
pub const ANTI_PHASE: f64 = -0.5;

/// A channel this far (dB of energy) under the loudest is treated as empty.
pub const ONE_SIDED_DB: f64 = 20.0;

/// With more than two channels, the average is kept unless it is this far
/// (dB) under the loudest channel alone; then that channel is kept.
pub const CANCEL_DB: f64 = 10.0;

/// Lowest level in the RMS histograms, dBFS (bin 0 also holds digital silence).
const HIST_MIN_DB: f64 = -150.0;
/// Bins per dB.
const HIST_STEP: f64 = 10.0;
const HIST_BINS: usize = 1600;

/// The percentile of the 20 ms RMS taken as the noise floor.
pub const FLOOR_PERCENTILE: f64 = 0.10;

/// A floor at or under this (dBFS) is digital silence, not a room.
pub const DIGITAL_SILENCE_DB: f64 = -80.0;

/// One candidate downmix and the histogram of its 20 ms RMS.
#[derive(Debug, Clone)]
struct Candidate {
    weights: Vec<f32>,
    rule: String,
    acc: f64,
    hist: Vec<u32>,
}

/// The noise floor and the threshold chosen from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    /// The 10th percentile of the 20 ms RMS of the downmix, dBFS (`None`
    /// when it is digital silence, under −150 dBFS).
    pub floor_db: Option<f64>,
    /// The threshold the silence stage uses, dBFS.
    pub threshold_db: f64,
    /// True when the floor raised it above the configured one.
    pub adapted: bool,
    /// Seconds of the recording (in whole 20 ms windows) above the threshold.
    pub above_s: f64,
    /// Mean power of those windows, dBFS (`None` when there are none).
    pub sound_db: Option<f64>,
}

/// What the first pass gathers for the whole-recording decisions.
#[derive(Debug, Clone)]
pub struct FrontAnalysis {
    channels: usize,
    rate: u32,
    window: usize,
    in_window: usize,
    /// Sum over the recording of `x_i · x_j`, row-major `channels²`.
    gram: Vec<f64>,
    candidates: Vec<Candidate>,
    windows: u64,
}

impl FrontAnalysis {
    /// An analysis of `channels` channels at `rate` Hz, in windows of
    /// `window_ms` (the silence detector's).
    pub fn new(channels: usize, rate: u32, window_ms: f64) -> Self {
        let window = ((window_ms / 1000.0 * f64::from(rate)).round() as usize).max(1);
        let n = channels.max(1);
        let unit = |c: usize| -> Vec<f32> { (0..n).map(|i| f32::from(u8::from(i == c))).collect() };
        let mut cands = vec![(vec![1.0 / n as f32; n], average_rule(n))];
        if n == 2 {
            cands.push((vec![0.5, -0.5], "difference".to_string()));
        }
        if n > 1 {
            cands.extend((0..n).map(|c| (unit(c), format!("channel {}", c + 1))));
        }
        FrontAnalysis {
            channels: n,
            rate,
            window,
            in_window: 0,
            gram: vec![0.0; n * n],
            candidates: cands
                .into_iter()
                .map(|(weights, rule)| Candidate {
                    weights,
                    rule,
                    acc: 0.0,
                    hist: vec![0; HIST_BINS],
                })
                .collect(),
            windows: 0,
        }
    }

    /// Adds the next block (all channels).
    pub fn add(&mut self, block: &Block) {
        let n = self.channels.min(block.channels());
        let planes = block.planes();
        for i in 0..block.frames() {
            for a in 0..n {
                let xa = f64::from(planes[a][i]);
                let row = &mut self.gram[a * self.channels..];
                for (g, pb) in row[a..n].iter_mut().zip(&planes[a..n]) {
                    *g += xa * f64::from(pb[i]);
                }
            }
            for cand in &mut self.candidates {
                let v: f64 = cand
                    .weights
                    .iter()
                    .zip(&planes)
                    .map(|(&w, p)| f64::from(w) * f64::from(p[i]))
                    .sum();
                cand.acc += v * v;
            }
            self.in_window += 1;
            if self.in_window == self.window {
                let w = self.window as f64;
                for cand in &mut self.candidates {
                    cand.hist[bin(cand.acc / w)] += 1;
                    cand.acc = 0.0;
                }
                self.in_window = 0;
                self.windows += 1;
            }
        }
    }

    fn energy(&self, a: usize, b: usize) -> f64 {
        let (a, b) = (a.min(b), a.max(b));
        self.gram[a * self.channels + b]
    }

    /// The correlation of the two channels of a stereo recording (`None`
    /// for other channel counts, or when a channel is digital silence).
    pub fn correlation(&self) -> Option<f64> {
        if self.channels != 2 {
            return None;
        }
        let (l, r) = (self.energy(0, 0), self.energy(1, 1));
        (l > 0.0 && r > 0.0).then(|| self.energy(0, 1) / (l * r).sqrt())
    }

    /// Chooses the downmix (see the module docs and the constants
    /// [`ANTI_PHASE`], [`ONE_SIDED_DB`], [`CANCEL_DB`]).
    pub fn downmix(&self) -> Downmix {
        let n = self.channels;
        let pick = |rule: &str, reason: String| {
            let c = self
                .candidates
                .iter()
                .find(|c| c.rule == rule)
                .unwrap_or(&self.candidates[0]);
            Downmix {
                weights: c.weights.clone(),
                rule: c.rule.clone(),
                reason,
            }
        };
        if n == 1 {
            return pick("mono", "one channel".to_string());
        }
        let energies: Vec<f64> = (0..n).map(|c| self.energy(c, c)).collect();
        let (loudest, &e_max) =
            energies
                .iter()
                .enumerate()
                .fold((0, &0.0), |m, (i, e)| if *e > *m.1 { (i, e) } else { m });
        let db = |e: f64| 10.0 * e.max(1e-30).log10();
        let loudest_rule = format!("channel {}", loudest + 1);
        if n == 2 {
            let quieter = energies[1 - loudest];
            if db(e_max) - db(quieter) > ONE_SIDED_DB {
                return pick(
                    &loudest_rule,
                    format!(
                        "one-sided stereo: the other channel is {:.1} dB quieter",
                        db(e_max) - db(quieter)
                    ),
                );
            }
            let rho = self.correlation().unwrap_or(0.0);
            if rho < ANTI_PHASE {
                return pick(
                    "difference",
                    format!(
                        "anti-phase stereo: channel correlation {rho:.2}, the average would cancel"
                    ),
                );
            }
            return pick("average", format!("channel correlation {rho:.2}"));
        }
        let avg: f64 = (0..n)
            .flat_map(|a| (0..n).map(move |b| (a, b)))
            .map(|(a, b)| self.energy(a, b))
            .sum::<f64>()
            / (n * n) as f64;
        if db(e_max) - db(avg) > CANCEL_DB {
            return pick(
                &loudest_rule,
                format!(
                    "the average of the {n} channels is {:.1} dB under its loudest channel",
                    db(e_max) - db(avg)
                ),
            );
        }
        pick(&average_rule(n), format!("{n} channels"))
    }

    /// The noise floor of `downmix` and the threshold `settings` give for it.
    ///
    /// A floor above `settings.adapt_above_db` (and at most [`MAX_ROOM_DB`])
    /// raises the threshold to the floor + `settings.floor_margin_db`, unless what stands above that
    /// threshold is less than [`MIN_SNR_DB`] louder than the floor: then the
    /// "floor" is the quiet half of a recording without pauses (speech, or
    /// a gated tone), not a room, and the configured threshold is kept.
    pub fn threshold(&self, downmix: &Downmix, settings: &SilenceSettings) -> Threshold {
        let hist = &self
            .candidates
            .iter()
            .find(|c| c.rule == downmix.rule)
            .unwrap_or(&self.candidates[0])
            .hist;
        let floor_db = percentile(hist, self.windows, FLOOR_PERCENTILE);
        let fixed = (settings.threshold_db, false);
        let (threshold_db, adapted) = match floor_db {
            Some(f) if settings.adaptive && f > settings.adapt_above_db && f <= MAX_ROOM_DB => {
                let raised = f + settings.floor_margin_db;
                match above(hist, raised) {
                    // Nothing stands above the room: adapted, and the caller
                    // reports a recording of noise alone.
                    (n, _) if self.seconds(n) < MIN_SOUND_S => (raised, true),
                    (_, Some(level)) if level - f >= MIN_SNR_DB => (raised, true),
                    _ => fixed,
                }
            }
            _ => fixed,
        };
        let (n, sound_db) = above(hist, threshold_db);
        Threshold {
            floor_db,
            threshold_db,
            adapted,
            above_s: self.seconds(n),
            sound_db,
        }
    }

    fn seconds(&self, windows: u64) -> f64 {
        windows as f64 * self.window as f64 / f64::from(self.rate)
    }
}

/// `finish` gives back the analysis, to be read.
impl BlockSink for FrontAnalysis {
    type Output = FrontAnalysis;

    fn write(&mut self, block: &Block) -> Result<()> {
        self.add(block);
        Ok(())
    }

    fn finish(self) -> Result<FrontAnalysis> {
        Ok(self)
    }
}

/// Windows of `hist` above `threshold_db`, and their mean power in dBFS.
fn above(hist: &[u32], threshold_db: f64) -> (u64, Option<f64>) {
    let first = (bin(10f64.powf(threshold_db / 10.0)) + 1).min(HIST_BINS);
    let (mut n, mut power) = (0u64, 0.0f64);
    for (i, &k) in hist.iter().enumerate().skip(first) {
        n += u64::from(k);
        power += f64::from(k) * 10f64.powf((HIST_MIN_DB + (i as f64 + 0.5) / HIST_STEP) / 10.0);
    }
    (n, (n > 0).then(|| 10.0 * (power / n as f64).log10()))
}

/// A "floor" above this (dBFS) is not a room but the signal itself (a
/// steady tone, or speech without pauses): the configured threshold stays.
/// Room noise that loud in a recording would bury any voice.
pub const MAX_ROOM_DB: f64 = -30.0;

/// Less sound than this (seconds of 20 ms windows above a raised threshold)
/// means the recording holds only the room.
pub const MIN_SOUND_S: f64 = 0.4;

/// What stands above a raised threshold must be at least this much louder
/// (dB, mean power) than the floor for the floor to be a room's.
pub const MIN_SNR_DB: f64 = 12.0;

fn average_rule(n: usize) -> String {
    if n == 1 { "mono" } else { "average" }.to_string()
}

/// The histogram bin of a mean square.
fn bin(mean_square: f64) -> usize {
    if mean_square <= 0.0 {
        return 0;
    }
    let db = 10.0 * mean_square.log10();
    ((db - HIST_MIN_DB) * HIST_STEP)
        .floor()
        .clamp(0.0, (HIST_BINS - 1) as f64) as usize
}

/// The level (dBFS, bin centre) under which fraction `p` of `total` windows
/// lie; `None` when that is bin 0 (digital silence) or there are no windows.
fn percentile(hist: &[u32], total: u64, p: f64) -> Option<f64> {
    if total == 0 {
        return None;
    }
    let want = ((total as f64 * p).ceil() as u64).max(1);
    let mut seen = 0u64;
    for (i, &n) in hist.iter().enumerate() {
        seen += u64::from(n);
        if seen >= want {
            return (i > 0).then(|| HIST_MIN_DB + (i as f64 + 0.5) / HIST_STEP);
        }
    }
    None
}

/// A [`Source`] that mixes the channels of another with fixed weights into one.
pub struct Downmixed<S: Source> {
    inner: S,
    weights: Vec<f32>,
    scratch: Block,
}

impl<S: Source> Downmixed<S> {
    /// Mixes `inner`'s channels with `downmix`'s weights.
    pub fn new(inner: S, downmix: &Downmix) -> Self {
        Downmixed {
            inner,
            weights: downmix.weights.clone(),
            scratch: Block::default(),
        }
    }
}

impl<S: Source> Source for Downmixed<S> {
    fn sample_rate(&self) -> u32 {
        self.inner.sample_rate()
    }

    fn channels(&self) -> usize {
        1
    }

    fn read(&mut self, block: &mut Block) -> Result<bool> {
        if self.inner.channels() == 1 {
            return self.inner.read(block);
        }
        block.reset(1);
        if !self.inner.read(&mut self.scratch)? {
            return Ok(false);
        }
        let out = block.channel_mut(0);
        out.resize(self.scratch.frames(), 0.0);
        for (c, &w) in self.weights.iter().enumerate() {
            if w == 0.0 || c >= self.scratch.channels() {
                continue;
            }
            for (o, &x) in out.iter_mut().zip(self.scratch.channel(c)) {
                *o += w * x;
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::units::gain_to_db;

    fn sine(rate: u32, hz: f64, n: usize, amp: f32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                amp * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate)).sin() as f32
            })
            .collect()
    }

    fn filter(sig: &[f32], rate: u32, hz: f64) -> Vec<f32> {
        let mut hp = HighPass::new(1, rate, hz);
        let mut out = Block::new(1, 0);
        for part in sig.chunks(1000) {
            hp.process(&Block::from_channels(&[part]), &mut out);
        }
        out.channel(0).to_vec()
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn highpass_response_is_butterworth_and_dc_goes_to_zero() {
        let rate = 44100;
        let n = rate as usize * 2;
        // Gain at several frequencies, measured on the second half of a sine
        // (after the transient), against 1/√(1 + (fc/f)⁴).
        for hz in [20.0, 30.0, 60.0, 85.0, 120.0, 1000.0, 8000.0] {
            let x = sine(rate, hz, n, 0.5);
            let y = filter(&x, rate, 60.0);
            let g = rms(&y[n / 2..]) / rms(&x[n / 2..]);
            let want = HighPass::analog_gain(60.0, hz);
            assert!(
                (gain_to_db(g) - gain_to_db(want)).abs() < 0.1,
                "{hz} Hz: {} dB, want {} dB",
                gain_to_db(g),
                gain_to_db(want)
            );
        }
        // A constant offset under a tone: the output's mean is 0 from the start
        // (the state starts at the first sample) and the tone survives.
        let x: Vec<f32> = sine(rate, 440.0, n, 0.3).iter().map(|v| v + 0.25).collect();
        let y = filter(&x, rate, 60.0);
        let mean = y.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 1e-4, "mean {mean}");
        let first_20ms = rms(&y[..882]);
        assert!(first_20ms < 0.3, "start {first_20ms}");
        assert!(
            y[..882].iter().all(|v| v.abs() < 0.35),
            "no step at the start"
        );
    }

    fn analysed(chans: &[&[f32]]) -> FrontAnalysis {
        let mut a = FrontAnalysis::new(chans.len(), 1000, 20.0);
        for i in (0..chans[0].len()).step_by(333) {
            let end = (i + 333).min(chans[0].len());
            let parts: Vec<&[f32]> = chans.iter().map(|c| &c[i..end]).collect();
            a.add(&Block::from_channels(&parts));
        }
        a
    }

    #[test]
    fn downmix_keeps_what_a_listener_hears() {
        let s = sine(1000, 50.0, 10_000, 0.5);
        let inv: Vec<f32> = s.iter().map(|v| -v).collect();
        let zero = vec![0.0; s.len()];
        let noise: Vec<f32> = (0..s.len())
            .map(|i| ((i * 7919 % 101) as f32 - 50.0) * 1e-5)
            .collect();
        let cases: [(&[&[f32]], &str); 5] = [
            (&[&s], "mono"),
            (&[&s, &s], "average"),
            (&[&s, &inv], "difference"),
            (&[&zero, &s], "channel 2"),
            (&[&s, &noise], "channel 1"),
        ];
        for (chans, rule) in cases {
            let a = analysed(chans);
            let d = a.downmix();
            assert_eq!(d.rule, rule, "{}", d.reason);
            // The chosen mono has the level of the voice itself.
            let mono: Vec<f32> = (0..s.len())
                .map(|i| d.weights.iter().zip(chans).map(|(w, c)| w * c[i]).sum())
                .collect();
            assert!(
                (rms(&mono) / rms(&s) - 1.0).abs() < 0.01,
                "{rule}: {}",
                rms(&mono)
            );
        }
        assert!((analysed(&[&s, &inv]).correlation().unwrap() + 1.0).abs() < 1e-9);
        // Five channels, two of them inverted copies: the average cancels
        // to a fifth, 14 dB down, so the loudest channel is kept.
        let five = analysed(&[&s, &inv, &s, &inv, &zero]);
        assert_eq!(five.downmix().rule, "channel 1");
    }

    #[test]
    fn floor_and_threshold_follow_the_rule() {
        let settings = SilenceSettings::default();
        // A steady square wave "noise" of RMS 10^(level/20) (every 20 ms
        // window has exactly that RMS), with a loud burst of 1 s.
        for (level, want_thr, adapted) in [
            (-60.0, -50.0, false),
            (-46.0, -40.0, true),
            (-55.0, -49.0, true),
        ] {
            let amp = 10f32.powf(level / 20.0);
            let mut x: Vec<f32> = (0..20_000)
                .map(|i| if i % 2 == 0 { amp } else { -amp })
                .collect();
            for v in &mut x[10_000..11_000] {
                *v *= 1000.0;
            }
            let a = analysed(&[&x]);
            let t = a.threshold(&a.downmix(), &settings);
            let floor = t.floor_db.unwrap();
            assert!((floor - level as f64).abs() < 0.1, "floor {floor}");
            assert!((t.threshold_db - want_thr).abs() < 0.1, "{level}: {t:?}");
            assert_eq!(t.adapted, adapted);
            assert!((t.above_s - 1.0).abs() < 0.021, "{t:?}");
            // An explicit threshold turns the adaptation off.
            let fixed = SilenceSettings {
                adaptive: false,
                threshold_db: -30.0,
                ..SilenceSettings::default()
            };
            let t = a.threshold(&a.downmix(), &fixed);
            assert_eq!((t.threshold_db, t.adapted), (-30.0, false));
        }
        // A recording without pauses whose quiet half is at -24 dBFS and loud
        // half 10 dB above: not a room, so the threshold stays at -50.
        let gated: Vec<f32> = (0..20_000)
            .map(|i| {
                let a = if (i / 250) % 2 == 0 { 0.2 } else { 0.0632 };
                if i % 2 == 0 {
                    a
                } else {
                    -a
                }
            })
            .collect();
        let a = analysed(&[&gated]);
        let t = a.threshold(&a.downmix(), &settings);
        assert!((t.floor_db.unwrap() + 24.0).abs() < 0.1, "{t:?}");
        assert_eq!((t.threshold_db, t.adapted), (-50.0, false));
        // A steady loud signal (no pauses at all) is not a room.
        let steady: Vec<f32> = (0..20_000)
            .map(|i| if i % 2 == 0 { 0.5 } else { -0.5 })
            .collect();
        let a = analysed(&[&steady]);
        let t = a.threshold(&a.downmix(), &settings);
        assert_eq!((t.threshold_db, t.adapted), (-50.0, false));
        // Digital silence has no floor.
        let a = analysed(&[&vec![0.0; 5000]]);
        assert_eq!(a.threshold(&a.downmix(), &settings).floor_db, None);
    }
}
