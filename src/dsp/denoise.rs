//! Optional noise suppression of the recordings (issue 12, item 4;
//! `--denoise`, off by default): steady background noise (a fan, a street,
//! hiss) taken out before any silence or loudness decision, so both see the
//! cleaned signal. Bumpers are music and never pass through it.
//!
//! The suppressor is RNNoise's 2017 model through `nnnoiseless` (pure Rust,
//! BSD-3-Clause, weights built in). It only works at 48 kHz, on frames of
//! exactly 480 samples scaled to the 16-bit range, one state per channel.
//! So a recording goes high-pass → [`Resample`] to 48 kHz (nothing for
//! Opus, which decodes at 48 kHz already) → [`Denoise`] → [`Resample`] to the
//! output rate ([`denoised`] builds that chain).
//!
//! Exact lengths: RNNoise's output lags its input by one frame (its
//! analysis window is two frames long and it synthesises by overlap-add), so
//! [`Denoise`] drops the first 480 output samples and, at the end, feeds
//! zeros until it has given back exactly as many frames as it was given,
//! aligned with them (tested against a delayed copy). The two resamplers
//! round up separately (`n` → `⌈n·48000/a⌉` → `⌈…·b/48000⌉`), which can end
//! one frame longer than the direct `⌈n·b/a⌉`; [`denoised`] cuts that frame,
//! so a recording has the same length with and without the suppressor.
//!
//! What it does and costs is measured by `cargo bench --bench stages --
//! denoise` (SNR against the clean speech at known noise levels, the change
//! on clean speech, and the CPU cost) and recorded in the README, "Noise
//! suppression".

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use nnnoiseless::DenoiseState;

use crate::audio::{Block, Processed, Processor, Source};
use crate::dsp::resample::{resampled_len, Resample};
use crate::error::Result;

/// The only sample rate RNNoise works at, Hz.
pub const DENOISE_RATE: u32 = 48_000;

/// RNNoise's frame, in samples (10 ms at 48 kHz); also its delay.
pub const FRAME: usize = DenoiseState::FRAME_SIZE;

/// RNNoise expects samples in the 16-bit range.
const SCALE: f32 = 32768.0;

/// RNNoise per channel, delay-compensated: a [`Processor`] whose output has
/// exactly as many frames as its input, aligned with it. The input must be
/// at [`DENOISE_RATE`].
pub struct Denoise {
    states: Vec<Box<DenoiseState<'static>>>,
    /// Per channel: scaled input not yet handed to RNNoise (under a frame
    /// after each call).
    pending: Vec<Vec<f32>>,
    /// One frame of RNNoise's output.
    frame_out: Vec<f32>,
    /// Output samples still to drop (RNNoise's delay).
    to_skip: usize,
    frames_in: u64,
    frames_out: u64,
}

impl Denoise {
    /// A suppressor for `channels` channels at [`DENOISE_RATE`].
    pub fn new(channels: usize) -> Self {
        Denoise {
            states: (0..channels).map(|_| DenoiseState::new()).collect(),
            pending: vec![Vec::with_capacity(2 * FRAME); channels],
            frame_out: vec![0.0; FRAME],
            to_skip: FRAME,
            frames_in: 0,
            frames_out: 0,
        }
    }

    /// Runs every whole frame in `pending` through RNNoise, appending to
    /// `out` after the delay and never beyond the input's length.
    fn run_frames(&mut self, out: &mut Block) {
        let whole = self.pending.first().map_or(0, Vec::len) / FRAME * FRAME;
        let mut start = 0;
        while start < whole {
            // Output frames this frame may add: skip the delay, and never
            // go past the number of input frames.
            let skip = self.to_skip.min(FRAME);
            let room = self.frames_in.saturating_sub(self.frames_out);
            let take = ((FRAME - skip) as u64).min(room) as usize;
            for (c, state) in self.states.iter_mut().enumerate() {
                let input = &self.pending[c][start..start + FRAME];
                // The voice probability it returns is not used (yet).
                state.process_frame(&mut self.frame_out, input);
                out.channel_mut(c)
                    .extend(self.frame_out[skip..skip + take].iter().map(|&y| y / SCALE));
            }
            self.to_skip -= skip;
            self.frames_out += take as u64;
            start += FRAME;
        }
        for p in &mut self.pending {
            p.drain(..whole);
        }
    }
}

impl Processor for Denoise {
    fn process(&mut self, input: &Block, out: &mut Block) {
        if self.states.is_empty() {
            return;
        }
        self.frames_in += input.frames() as u64;
        for (c, p) in self.pending.iter_mut().enumerate() {
            p.extend(input.channel(c).iter().map(|&x| x * SCALE));
        }
        self.run_frames(out);
    }

    fn finish(&mut self, out: &mut Block) {
        // Zeros after the end push RNNoise's last frame of delay out.
        while self.frames_out < self.frames_in {
            let fill = FRAME - self.pending[0].len() % FRAME;
            for p in &mut self.pending {
                p.resize(p.len() + fill, 0.0);
            }
            self.run_frames(out);
        }
        for p in &mut self.pending {
            p.clear();
        }
    }
}

/// Counts the frames read from a source (shared with [`Exact`]).
struct Counted<S: Source> {
    inner: S,
    frames: Arc<AtomicU64>,
}

impl<S: Source> Source for Counted<S> {
    fn sample_rate(&self) -> u32 {
        self.inner.sample_rate()
    }

    fn channels(&self) -> usize {
        self.inner.channels()
    }

    fn read(&mut self, block: &mut Block) -> Result<bool> {
        let more = self.inner.read(block)?;
        self.frames
            .fetch_add(block.frames() as u64, Ordering::Relaxed);
        Ok(more)
    }
}

/// Holds back one block so that, once the input's length is known, the
/// output ends at exactly `⌈n·to/from⌉` frames.
struct Exact<S: Source> {
    inner: S,
    frames_in: Arc<AtomicU64>,
    from: u32,
    held: Block,
    has_held: bool,
    out_total: u64,
    done: bool,
}

impl<S: Source> Source for Exact<S> {
    fn sample_rate(&self) -> u32 {
        self.inner.sample_rate()
    }

    fn channels(&self) -> usize {
        self.inner.channels()
    }

    fn read(&mut self, block: &mut Block) -> Result<bool> {
        block.reset(self.inner.channels());
        if self.done {
            return Ok(false);
        }
        if !self.has_held {
            self.has_held = self.inner.read(&mut self.held)?;
            if !self.has_held {
                self.done = true;
                return Ok(false);
            }
        }
        let more = self.inner.read(block)?;
        // Hand out the held block; keep the one just read.
        std::mem::swap(block, &mut self.held);
        if !more {
            self.done = true;
            let n = self.frames_in.load(Ordering::Relaxed);
            let expected = resampled_len(n, self.from, self.inner.sample_rate());
            let keep = expected.saturating_sub(self.out_total) as usize;
            for c in block.channels_mut() {
                c.truncate(keep);
            }
        }
        self.out_total += block.frames() as u64;
        Ok(!block.is_empty())
    }
}

/// A recording through the suppressor: `src` resampled to
/// [`DENOISE_RATE`] (passed through when it is at that rate already), run
/// through [`Denoise`], and resampled to `to` Hz, with exactly the length
/// `Resample::new(src, to, …)` would have. `subject` names the input in
/// errors.
pub fn denoised<S: Source>(src: S, to: u32, subject: &str) -> Result<impl Source> {
    let from = src.sample_rate();
    let channels = src.channels();
    let frames_in = Arc::new(AtomicU64::new(0));
    let counted = Counted {
        inner: src,
        frames: Arc::clone(&frames_in),
    };
    let at48 = Resample::new(counted, DENOISE_RATE, subject)?;
    let clean = Processed::new(at48, Denoise::new(channels));
    Ok(Exact {
        inner: Resample::new(clean, to, subject)?,
        frames_in,
        from,
        held: Block::default(),
        has_held: false,
        out_total: 0,
        done: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::MemorySource;

    /// A deterministic speech-like test signal: a few harmonics with a
    /// syllable-rate envelope, plus low noise, per channel.
    fn signal(n: usize, rate: u32, channel: usize) -> Vec<f32> {
        use std::f32::consts::PI;
        let mut s = 12345u32 + channel as u32;
        let mut phase = 0f32;
        (0..n)
            .map(|i| {
                let t = i as f32 / rate as f32;
                let env = (0.5 + 0.5 * (2.0 * PI * 3.0 * t).sin()).powi(2);
                // A gliding pitch: not periodic, so the correlation has one peak.
                let f0 = 140.0 + 20.0 * channel as f32 + 40.0 * (2.0 * PI * 0.7 * t).sin();
                phase = (phase + 2.0 * PI * f0 / rate as f32) % (2.0 * PI);
                let v: f32 = (1..6).map(|h| (phase * h as f32).sin() / h as f32).sum();
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let r = (s >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0;
                0.2 * env * v + 0.003 * r
            })
            .collect()
    }

    fn read_all(mut src: impl Source) -> Block {
        let mut all = Block::new(src.channels(), 0);
        let mut b = Block::default();
        while src.read(&mut b).unwrap() {
            for c in 0..b.channels() {
                all.channel_mut(c).extend_from_slice(b.channel(c));
            }
        }
        all
    }

    fn stage(data: Block, chunk: usize) -> Block {
        let ch = data.channels();
        let src = MemorySource::new(DENOISE_RATE, data, chunk);
        read_all(Processed::new(src, Denoise::new(ch)))
    }

    #[test]
    fn stage_keeps_every_length() {
        for &n in &[0usize, 1, 479, 480, 481, 959, 960, 961, 48_000 + 7] {
            for &chunk in &[1usize, 333, 480, 4096] {
                if n > 5000 && chunk == 1 {
                    continue;
                }
                let data = Block::from_channels(&[
                    &signal(n, DENOISE_RATE, 0),
                    &signal(n, DENOISE_RATE, 1),
                ]);
                let out = stage(data, chunk);
                assert_eq!(out.channels(), 2);
                assert_eq!(out.channel(0).len(), n, "n={n} chunk={chunk}");
                assert_eq!(out.channel(1).len(), n, "n={n} chunk={chunk}");
            }
        }
    }

    #[test]
    fn chunking_does_not_change_the_output() {
        let n = 10_000;
        let data = Block::from_channels(&[&signal(n, DENOISE_RATE, 0)]);
        let a = stage(data.clone(), 4096);
        let b = stage(data, 77);
        assert_eq!(a, b);
    }

    /// The output is aligned with the input: of the lags −960..960, the
    /// one that correlates the output best with the input is within a few
    /// samples of 0 (not 0 exactly: RNNoise's input high-pass, a DC
    /// blocker, advances the phase of the low harmonics slightly; the
    /// frame's delay of 480 is gone).
    #[test]
    fn output_is_aligned() {
        let n = 48_000;
        let x = signal(n, DENOISE_RATE, 0);
        let out = stage(Block::from_channels(&[&x]), 1024);
        let y = out.channel(0);
        let corr = |lag: isize| -> f64 {
            (4800..n - 4800)
                .map(|i| f64::from(x[i]) * f64::from(y[(i as isize + lag) as usize]))
                .sum()
        };
        let best = (-960..=960)
            .max_by(|&a, &b| corr(a).total_cmp(&corr(b)))
            .unwrap();
        assert!(best.abs() <= 4, "best lag {best}");
    }

    #[test]
    fn the_chain_has_the_direct_resamplers_length() {
        for &(from, to) in &[
            (48_000, 44_100),
            (44_100, 44_100),
            (22_050, 44_100),
            (16_000, 44_100),
            (96_000, 44_100),
            (44_100, 48_000),
        ] {
            for &n in &[0usize, 1, 1000, 44_100 + 3] {
                let x = signal(n, from, 0);
                let src = MemorySource::new(from, Block::from_channels(&[&x]), 1000);
                let out = read_all(denoised(src, to, "test").unwrap());
                assert_eq!(
                    out.channel(0).len() as u64,
                    resampled_len(n as u64, from, to),
                    "{from}->{to} n={n}"
                );
            }
        }
    }

    #[test]
    fn digital_silence_stays_silent() {
        let out = stage(Block::from_channels(&[&vec![0.0; 5000]]), 1000);
        assert!(out.channel(0).iter().all(|&y| y == 0.0));
    }
}
