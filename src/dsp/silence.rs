//! Silence trimming and pause shortening.
//!
//! Decisions follow the reference graph (FFmpeg 6.1+ `silenceremove`): a
//! frame is *silent* when the RMS of each channel over the trailing window
//! (20 ms) is at or below the threshold (−50 dBFS). Everything before the
//! first non-silent frame is dropped; after that, every run of silent frames
//! longer than the maximum pause (1 s) is shortened to exactly that length,
//! the trailing run included.
//!
//! Unlike the reference, no cut is hard: the start gets a short fade-in taken
//! from the silence just before the first sound, and a shortened pause ends
//! with an equal-power crossfade (5 ms) from the pause's start into its end,
//! so a cut through a noise floor never clicks. A shortened pause therefore
//! keeps `max_pause − fade` frames verbatim, then `fade` crossfaded frames.
//!
//! The cutter is a streaming stage with a memory of a few frames: it holds at
//! most `fade` frames back, however long the input.

use crate::audio::units::db_to_gain;
use crate::audio::{Block, Processed, Processor, Source};

/// Settings of the silence stage.
#[derive(Debug, Clone, PartialEq)]
pub struct SilenceSettings {
    /// Threshold in dBFS at or below which a window is silent (default −50).
    /// With [`adaptive`](Self::adaptive) on, a recording whose noise floor
    /// is above [`adapt_above_db`](Self::adapt_above_db) uses its floor +
    /// [`floor_margin_db`](Self::floor_margin_db) instead.
    pub threshold_db: f64,
    /// Let the threshold follow a noisy room's floor (default true; an
    /// explicit `--silence-threshold` turns it off).
    pub adaptive: bool,
    /// A floor above this (dBFS) raises the threshold (default −56: within
    /// 6 dB of the −50 dBFS threshold, or over it).
    pub adapt_above_db: f64,
    /// How far above the floor the raised threshold sits, dB (default 6).
    pub floor_margin_db: f64,
    /// Length of the RMS window in milliseconds (default 20).
    pub window_ms: f64,
    /// Longest pause kept, in seconds (default 1.0); longer ones are shortened to it.
    pub max_pause_s: f64,
    /// Length of the fade across each cut, in milliseconds (default 5).
    pub fade_ms: f64,
}

impl Default for SilenceSettings {
    fn default() -> Self {
        SilenceSettings {
            threshold_db: -50.0,
            adaptive: true,
            adapt_above_db: -56.0,
            floor_margin_db: 6.0,
            window_ms: 20.0,
            max_pause_s: 1.0,
            fade_ms: 5.0,
        }
    }
}

/// Frame counts derived from [`SilenceSettings`] at one sample rate.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Lengths {
    window: usize,
    max_pause: usize,
    fade: usize,
    /// Threshold on the windowed *sum* of squares: `thr² · window`.
    sum_threshold: f64,
}

impl Lengths {
    fn new(s: &SilenceSettings, rate: u32) -> Self {
        let frames = |secs: f64| (secs * f64::from(rate)).round().max(0.0) as usize;
        let window = frames(s.window_ms / 1000.0).max(1);
        let max_pause = frames(s.max_pause_s).max(2);
        let fade = frames(s.fade_ms / 1000.0).min(max_pause / 2);
        let thr = db_to_gain(s.threshold_db);
        Lengths {
            window,
            max_pause,
            fade,
            sum_threshold: thr * thr * window as f64,
        }
    }
}

/// Per-frame silence decisions: the RMS of each channel over a trailing window.
#[derive(Debug, Clone)]
pub struct SilenceDetector {
    window: usize,
    sum_threshold: f64,
    /// Per channel: the last `window` squared samples and their running sum.
    rings: Vec<Vec<f64>>,
    sums: Vec<f64>,
    pos: usize,
}

impl SilenceDetector {
    /// A detector for `channels` channels at `rate` Hz.
    pub fn new(channels: usize, rate: u32, settings: &SilenceSettings) -> Self {
        let l = Lengths::new(settings, rate);
        SilenceDetector {
            window: l.window,
            sum_threshold: l.sum_threshold,
            rings: vec![vec![0.0; l.window]; channels],
            sums: vec![0.0; channels],
            pos: 0,
        }
    }

    /// Classifies every frame of `block`; `silent[i]` is true when frame `i`
    /// is silent in every channel. `silent` is cleared first.
    pub fn classify(&mut self, block: &Block, silent: &mut Vec<bool>) {
        silent.clear();
        silent.resize(block.frames(), true);
        let start = self.pos;
        for c in 0..block.channels().min(self.rings.len()) {
            let ring = &mut self.rings[c];
            let mut sum = self.sums[c];
            let mut pos = start;
            for (flag, &x) in silent.iter_mut().zip(block.channel(c)) {
                let x = if x.is_finite() { f64::from(x) } else { 0.0 };
                let sq = x * x;
                sum += sq - ring[pos];
                ring[pos] = sq;
                pos += 1;
                if pos == self.window {
                    pos = 0;
                }
                // Rounding can leave a tiny negative remainder after loud audio.
                if sum < 0.0 {
                    sum = 0.0;
                }
                if sum > self.sum_threshold {
                    *flag = false;
                }
            }
            self.sums[c] = sum;
        }
        self.pos = (start + block.frames()) % self.window;
    }
}

/// One shortened pause (or the leading trim), in input frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// Input frame at which the removed span begins.
    pub at: u64,
    /// Number of input frames removed.
    pub len: u64,
}

/// What the cutter did, for reports and tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CutStats {
    /// Input frames dropped at the start (before the fade-in pre-roll).
    pub leading_trimmed: u64,
    /// Every shortened pause, in order.
    pub cuts: Vec<Cut>,
    /// Input frames read.
    pub frames_in: u64,
    /// Frames written.
    pub frames_out: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Leading,
    Sound,
    /// Inside a run of silent frames, with its length so far.
    Run(usize),
}

/// A small ring of the last `cap` frames, per channel.
#[derive(Debug, Clone)]
struct FrameRing {
    data: Vec<Vec<f32>>,
    pos: usize,
    len: usize,
}

impl FrameRing {
    fn new(channels: usize, cap: usize) -> Self {
        FrameRing {
            data: vec![vec![0.0; cap]; channels],
            pos: 0,
            len: 0,
        }
    }

    fn cap(&self) -> usize {
        self.data.first().map_or(0, Vec::len)
    }

    fn push(&mut self, block: &Block, i: usize) {
        let cap = self.cap();
        if cap == 0 {
            return;
        }
        for (c, d) in self.data.iter_mut().enumerate() {
            d[self.pos] = block.channel(c)[i];
        }
        self.pos = (self.pos + 1) % cap;
        self.len = (self.len + 1).min(cap);
    }

    /// The `k`-th oldest of the frames held, channel `c`.
    fn get(&self, c: usize, k: usize) -> f32 {
        let cap = self.cap();
        self.data[c][(self.pos + cap - self.len + k) % cap]
    }
}

/// The streaming trim-and-shorten stage.
#[derive(Debug, Clone)]
pub struct SilenceCutter {
    detector: SilenceDetector,
    lengths: Lengths,
    phase: Phase,
    /// The last `fade` frames seen while silent (pre-roll, or a pause's end).
    ring: FrameRing,
    /// Frames of a run held back past `max_pause − fade` (at most `fade`).
    hold: Vec<Vec<f32>>,
    flags: Vec<bool>,
    /// Fade-in gains (rising quarter sine), `fade` values.
    fade_in: Vec<f32>,
    stats: CutStats,
}

impl SilenceCutter {
    /// A cutter for `channels` channels at `rate` Hz.
    pub fn new(channels: usize, rate: u32, settings: &SilenceSettings) -> Self {
        let lengths = Lengths::new(settings, rate);
        let f = lengths.fade;
        let fade_in = (0..f)
            .map(|i| ((i as f64 + 0.5) / f as f64 * std::f64::consts::FRAC_PI_2).sin() as f32)
            .collect();
        SilenceCutter {
            detector: SilenceDetector::new(channels, rate, settings),
            lengths,
            phase: Phase::Leading,
            ring: FrameRing::new(channels, f),
            hold: vec![Vec::with_capacity(f); channels],
            flags: Vec::new(),
            fade_in,
            stats: CutStats::default(),
        }
    }

    /// True once a non-silent frame has been seen.
    pub fn started(&self) -> bool {
        self.phase != Phase::Leading
    }

    /// What the cutter has done so far.
    pub fn stats(&self) -> &CutStats {
        &self.stats
    }

    /// Processes `input`, appending the kept frames to `out` (same channel count).
    pub fn process(&mut self, input: &Block, out: &mut Block) {
        let mut flags = std::mem::take(&mut self.flags);
        self.detector.classify(input, &mut flags);
        let keep_verbatim = self.lengths.max_pause - self.lengths.fade;
        for (i, &silent) in flags.iter().enumerate() {
            let index = self.stats.frames_in;
            self.stats.frames_in += 1;
            match self.phase {
                Phase::Leading => {
                    if silent {
                        self.ring.push(input, i);
                    } else {
                        let pre = self.ring.len;
                        let f = self.lengths.fade;
                        for k in 0..pre {
                            let g = self.fade_in[f - pre + k];
                            for c in 0..input.channels() {
                                let v = self.ring.get(c, k) * g;
                                out.channel_mut(c).push(v);
                            }
                        }
                        self.stats.frames_out += pre as u64;
                        self.stats.leading_trimmed = index - pre as u64;
                        self.emit(input, i, out);
                        self.phase = Phase::Sound;
                    }
                }
                Phase::Sound => {
                    if silent {
                        self.ring.len = 0;
                        self.ring.push(input, i);
                        self.emit(input, i, out);
                        self.phase = Phase::Run(1);
                    } else {
                        self.emit(input, i, out);
                    }
                }
                Phase::Run(r) => {
                    if silent {
                        let r = r + 1;
                        self.ring.push(input, i);
                        if r <= keep_verbatim {
                            self.emit(input, i, out);
                        } else if r <= self.lengths.max_pause {
                            for (c, h) in self.hold.iter_mut().enumerate() {
                                h.push(input.channel(c)[i]);
                            }
                        }
                        self.phase = Phase::Run(r);
                    } else {
                        self.end_run(r, index, out);
                        self.emit(input, i, out);
                        self.phase = Phase::Sound;
                    }
                }
            }
        }
        self.flags = flags;
    }

    /// Ends the stream: a trailing pause is shortened like any other.
    pub fn finish(&mut self, out: &mut Block) {
        if let Phase::Run(r) = self.phase {
            self.end_run(r, self.stats.frames_in, out);
            self.phase = Phase::Sound;
        }
    }

    fn emit(&mut self, input: &Block, i: usize, out: &mut Block) {
        for c in 0..input.channels() {
            out.channel_mut(c).push(input.channel(c)[i]);
        }
        self.stats.frames_out += 1;
    }

    /// Closes a run of `run` silent frames that ended just before input frame `end`.
    fn end_run(&mut self, run: usize, end: u64, out: &mut Block) {
        let held = self.hold[0].len();
        if run <= self.lengths.max_pause {
            for (c, h) in self.hold.iter().enumerate() {
                out.channel_mut(c).extend_from_slice(h);
            }
            self.stats.frames_out += held as u64;
        } else {
            // Equal-power crossfade from the pause's start (held frames) into
            // its end (the last `fade` frames, in the ring).
            let f = self.lengths.fade;
            for (c, h) in self.hold.iter().enumerate() {
                for (k, &held) in h.iter().enumerate().take(f) {
                    let g_in = self.fade_in[k];
                    let g_out = self.fade_in[f - 1 - k];
                    let v = held * g_out + self.ring.get(c, k) * g_in;
                    out.channel_mut(c).push(v);
                }
            }
            self.stats.frames_out += f as u64;
            let start = end - run as u64;
            self.stats.cuts.push(Cut {
                at: start + self.lengths.max_pause as u64,
                len: (run - self.lengths.max_pause) as u64,
            });
        }
        for h in &mut self.hold {
            h.clear();
        }
    }
}

impl Processor for SilenceCutter {
    fn process(&mut self, input: &Block, out: &mut Block) {
        SilenceCutter::process(self, input, out);
    }

    fn finish(&mut self, out: &mut Block) {
        SilenceCutter::finish(self, out);
    }
}

/// A source read through the silence stage.
pub type Trimmed<S> = Processed<S, SilenceCutter>;

/// Wraps `inner` with the silence stage.
pub fn trimmed<S: Source>(inner: S, settings: &SilenceSettings) -> Trimmed<S> {
    let cutter = SilenceCutter::new(inner.channels(), inner.sample_rate(), settings);
    Processed::new(inner, cutter)
}

/// A pause found by [`PauseFinder`]: a run of silent frames after the first sound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Pause {
    /// First silent frame of the run.
    pub start: u64,
    /// Length of the run in frames.
    pub len: u64,
}

/// Running pause finder over a stream, using the same detector as the cutter.
#[derive(Debug, Clone)]
pub struct PauseFinder {
    detector: SilenceDetector,
    flags: Vec<bool>,
    pos: u64,
    first_sound: Option<u64>,
    run_start: Option<u64>,
    min_len: u64,
    pauses: Vec<Pause>,
}

impl PauseFinder {
    /// Finds pauses of at least `min_len` frames.
    pub fn new(channels: usize, rate: u32, settings: &SilenceSettings, min_len: u64) -> Self {
        PauseFinder {
            detector: SilenceDetector::new(channels, rate, settings),
            flags: Vec::new(),
            pos: 0,
            first_sound: None,
            run_start: None,
            min_len,
            pauses: Vec::new(),
        }
    }

    /// Feeds the next block.
    pub fn process(&mut self, block: &Block) {
        let mut flags = std::mem::take(&mut self.flags);
        self.detector.classify(block, &mut flags);
        for &silent in &flags {
            if self.first_sound.is_none() {
                if !silent {
                    self.first_sound = Some(self.pos);
                }
            } else if silent {
                self.run_start.get_or_insert(self.pos);
            } else if let Some(s) = self.run_start.take() {
                self.close(s, self.pos);
            }
            self.pos += 1;
        }
        self.flags = flags;
    }

    fn close(&mut self, start: u64, end: u64) {
        if end - start >= self.min_len {
            self.pauses.push(Pause {
                start,
                len: end - start,
            });
        }
    }

    /// Ends the stream; returns the leading silence in frames (the whole
    /// length when nothing was above the threshold) and the pauses found.
    pub fn finish(mut self) -> (u64, Vec<Pause>) {
        if let Some(s) = self.run_start.take() {
            self.close(s, self.pos);
        }
        (self.first_sound.unwrap_or(self.pos), self.pauses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1 kHz makes frame counts read as milliseconds: window 20, fade 5, pause 1000.
    const RATE: u32 = 1000;

    fn run(sig: &[f32], chunk: usize) -> (Vec<f32>, CutStats) {
        let mut cutter = SilenceCutter::new(1, RATE, &SilenceSettings::default());
        let mut out = Block::new(1, 0);
        for part in sig.chunks(chunk.max(1)) {
            cutter.process(&Block::from_channels(&[part]), &mut out);
        }
        cutter.finish(&mut out);
        (out.channel(0).to_vec(), cutter.stats().clone())
    }

    fn tone_and_gaps(parts: &[(usize, f32)]) -> Vec<f32> {
        parts
            .iter()
            .flat_map(|&(n, v)| std::iter::repeat_n(v, n))
            .collect()
    }

    #[test]
    fn cut_positions_to_the_sample() {
        // 300 silent, 500 sound, 2500 silent, 500 sound, 1500 silent.
        let sig = tone_and_gaps(&[(300, 0.0), (500, 0.5), (2500, 0.0), (500, 0.5), (1500, 0.0)]);
        let (out, st) = run(&sig, 4096);
        // First non-silent frame is 300; 5 pre-roll frames are kept before it.
        assert_eq!(st.leading_trimmed, 295);
        // The 20-frame window keeps frames 800..819 non-silent, so the pause
        // runs from 819 to 3299 (2481 frames); it keeps 1000, the cut starts at 1819.
        assert_eq!(
            st.cuts,
            vec![
                Cut {
                    at: 1819,
                    len: 1481
                },
                Cut { at: 4819, len: 481 }
            ]
        );
        assert_eq!(out.len(), 5300 - 295 - 1481 - 481);
        assert_eq!(st.frames_out, out.len() as u64);
        // The first sound sample lands right after the 5 pre-roll frames.
        assert_eq!(out[4], 0.0);
        assert_eq!(out[5], 0.5);
        // The second sound starts after 500 + 19 + 1000 more frames.
        assert_eq!(out[5 + 500 + 19 + 1000 - 1], 0.0);
        assert_eq!(out[5 + 500 + 19 + 1000], 0.5);
    }

    #[test]
    fn pause_of_exactly_max_is_kept_and_one_more_is_cut() {
        // Sound ends at 500; the detector's run starts at 519. A gap of G
        // zero frames gives a run of G - 19 frames.
        for (gap, cut) in [(1019usize, None), (1020, Some(1u64))] {
            let sig = tone_and_gaps(&[(500, 0.5), (gap, 0.0), (500, 0.5)]);
            let (out, st) = run(&sig, 64);
            let cuts: Vec<u64> = st.cuts.iter().map(|c| c.len).collect();
            assert_eq!(cuts.first().copied(), cut, "gap {gap}");
            assert_eq!(out.len() as u64, sig.len() as u64 - cut.unwrap_or(0));
        }
    }

    #[test]
    fn block_size_does_not_change_the_output() {
        let mut sig = tone_and_gaps(&[
            (123, 0.0),
            (700, 0.3),
            (3000, 0.001),
            (400, -0.2),
            (2222, 0.0),
        ]);
        for (i, s) in sig.iter_mut().enumerate() {
            *s += ((i * 7919 % 13) as f32 - 6.0) * 1e-4;
        }
        let (a, sa) = run(&sig, 1);
        for chunk in [7, 64, 4096] {
            let (b, sb) = run(&sig, chunk);
            assert_eq!(a, b, "chunk {chunk}");
            assert_eq!(sa, sb);
        }
    }

    #[test]
    fn all_silent_input_never_starts() {
        let sig = vec![0.001f32; 5000];
        let mut cutter = SilenceCutter::new(1, RATE, &SilenceSettings::default());
        let mut out = Block::new(1, 0);
        cutter.process(&Block::from_channels(&[&sig]), &mut out);
        cutter.finish(&mut out);
        assert!(!cutter.started());
        assert!(out.is_empty());
    }

    #[test]
    fn cut_through_noise_floor_is_smooth() {
        // A noise floor at about -60 dBFS around a 3 s gap: the largest jump
        // between neighbouring output samples in the pause must stay within
        // what the noise itself has (the crossfade adds no step).
        let mut state = 12345u32;
        let mut noise = || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
        };
        let rate = 44100u32;
        let mut sig: Vec<f32> = (0..rate * 5).map(|_| noise() * 0.0015).collect();
        for (i, s) in sig.iter_mut().enumerate().take(rate as usize) {
            *s += 0.3 * (i as f32 * 0.05).sin();
        }
        let max_step = |v: &[f32]| {
            v.windows(2)
                .map(|w| (w[1] - w[0]).abs())
                .fold(0.0, f32::max)
        };
        let noise_step = max_step(&sig[rate as usize + 2000..]);
        let mut cutter = SilenceCutter::new(1, rate, &SilenceSettings::default());
        let mut out = Block::new(1, 0);
        cutter.process(&Block::from_channels(&[&sig]), &mut out);
        cutter.finish(&mut out);
        assert_eq!(cutter.stats().cuts.len(), 1);
        let tail = &out.channel(0)[rate as usize + 2000..];
        assert!(
            max_step(tail) <= noise_step * 1.01,
            "{} vs {}",
            max_step(tail),
            noise_step
        );
        // The trailing pause is exactly max_pause long after the window lag.
        assert_eq!(out.frames(), rate as usize + 882 - 1 + rate as usize);
    }

    #[test]
    fn pause_finder_agrees_with_cutter() {
        let sig = tone_and_gaps(&[(300, 0.0), (500, 0.5), (2500, 0.0), (500, 0.5), (800, 0.0)]);
        let mut pf = PauseFinder::new(1, RATE, &SilenceSettings::default(), 1000);
        pf.process(&Block::from_channels(&[&sig]));
        let (lead, pauses) = pf.finish();
        assert_eq!(lead, 300);
        assert_eq!(
            pauses,
            vec![Pause {
                start: 819,
                len: 2481
            }]
        );
    }
}
