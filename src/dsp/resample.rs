//! Conversion of every input to the one common sample rate.
//!
//! rubato's FFT resampler does the filtering; this module adapts it to the
//! pull-based [`Source`] interface: it trims the resampler's start-up delay
//! and flushes its tail, so that an input of `n` frames at rate `a` becomes
//! exactly `ceil(n * b / a)` frames at rate `b`, aligned with the input.

use rubato::audioadapter_buffers::direct::SequentialSliceOfVecs;
use rubato::{Fft, FixedSync, Indexing, Resampler};

use crate::audio::{Block, Source};
use crate::error::{Error, Result, Stage};

/// Input frames handed to the resampler per call.
const RESAMPLER_CALL_FRAMES: usize = 1024;

/// Number of output frames an input of `frames` frames at `from` Hz becomes at `to` Hz.
pub fn resampled_len(frames: u64, from: u32, to: u32) -> u64 {
    if from == to {
        return frames;
    }
    (frames * u64::from(to)).div_ceil(u64::from(from))
}

/// A [`Source`] that yields another source's audio at a new sample rate.
pub struct Resample<S: Source> {
    inner: S,
    subject: String,
    to: u32,
    state: Option<State>,
}

struct State {
    rs: Fft<f32>,
    pending: Vec<Vec<f32>>,
    out: Vec<Vec<f32>>,
    /// Output frames still to drop (the resampler's start-up delay).
    to_trim: usize,
    in_total: u64,
    out_total: u64,
    input_done: bool,
    scratch: Block,
}

impl<S: Source> Resample<S> {
    /// Wraps `inner` so that it yields audio at `to` Hz. When the rates are
    /// equal the audio passes through untouched. `subject` names the input in errors.
    pub fn new(inner: S, to: u32, subject: &str) -> Result<Self> {
        let from = inner.sample_rate();
        let ch = inner.channels();
        let state = if from == to {
            None
        } else {
            let rs = Fft::<f32>::new(
                from as usize,
                to as usize,
                RESAMPLER_CALL_FRAMES,
                ch,
                FixedSync::Input,
            )
            .map_err(|e| {
                Error::stage(
                    subject,
                    Stage::Resample,
                    format!("{from} Hz to {to} Hz: {e}"),
                )
            })?;
            let to_trim = rs.output_delay();
            let out_max = rs.output_frames_max();
            Some(State {
                pending: vec![Vec::with_capacity(RESAMPLER_CALL_FRAMES * 2); ch],
                out: vec![vec![0.0; out_max]; ch],
                to_trim,
                rs,
                in_total: 0,
                out_total: 0,
                input_done: false,
                scratch: Block::new(ch, RESAMPLER_CALL_FRAMES),
            })
        };
        Ok(Resample {
            inner,
            subject: subject.to_string(),
            to,
            state,
        })
    }
}

impl<S: Source> Source for Resample<S> {
    fn sample_rate(&self) -> u32 {
        self.to
    }

    fn channels(&self) -> usize {
        self.inner.channels()
    }

    fn read(&mut self, block: &mut Block) -> Result<bool> {
        let Some(st) = self.state.as_mut() else {
            return self.inner.read(block);
        };
        let ch = st.pending.len();
        let from = self.inner.sample_rate();
        block.reset(ch);
        loop {
            let need = st.rs.input_frames_next();
            // Gather input until a full chunk is available or the input ends.
            while !st.input_done && st.pending[0].len() < need {
                if self.inner.read(&mut st.scratch)? {
                    st.in_total += st.scratch.frames() as u64;
                    for (p, c) in st.pending.iter_mut().zip(0..ch) {
                        p.extend_from_slice(st.scratch.channel(c));
                    }
                } else {
                    st.input_done = true;
                }
            }
            let expected = resampled_len(st.in_total, from, self.to);
            if st.input_done && st.pending[0].is_empty() && st.out_total >= expected {
                return Ok(false);
            }
            let avail = st.pending[0].len().min(need);
            let idx = Indexing::new().partial_len(avail);
            let fail = |e: String| Error::stage(&self.subject, Stage::Resample, e);
            let input = SequentialSliceOfVecs::new(&st.pending, ch, avail)
                .map_err(|e| fail(e.to_string()))?;
            let out_len = st.out[0].len();
            let mut output = SequentialSliceOfVecs::new_mut(&mut st.out, ch, out_len)
                .map_err(|e| fail(e.to_string()))?;
            let (_, produced) = st
                .rs
                .process_into_buffer(&input, &mut output, Some(&idx))
                .map_err(|e| fail(e.to_string()))?;
            for p in st.pending.iter_mut() {
                p.drain(..avail);
            }
            let skip = st.to_trim.min(produced);
            st.to_trim -= skip;
            let room = expected.saturating_sub(st.out_total) as usize;
            let take = if st.input_done {
                (produced - skip).min(room)
            } else {
                produced - skip
            };
            if take > 0 {
                for c in 0..ch {
                    block
                        .channel_mut(c)
                        .extend_from_slice(&st.out[c][skip..skip + take]);
                }
                st.out_total += take as u64;
                return Ok(true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::MemorySource;

    fn run(from: u32, to: u32, frames: usize) -> Vec<f32> {
        let sig: Vec<f32> = (0..frames)
            .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / from as f32).sin() * 0.5)
            .collect();
        let src = MemorySource::new(from, Block::from_channels(&[&sig]), 333);
        let mut rs = Resample::new(src, to, "test").unwrap();
        let mut out = Vec::new();
        let mut b = Block::default();
        while rs.read(&mut b).unwrap() {
            out.extend_from_slice(b.channel(0));
        }
        out
    }

    #[test]
    fn lengths_are_exact() {
        for &(from, to) in &[
            (48000, 44100),
            (8000, 44100),
            (96000, 44100),
            (22050, 44100),
            (44100, 48000),
        ] {
            for &n in &[0usize, 1, 100, 1023, 1024, 1025, 48000, 100_001] {
                let out = run(from, to, n);
                assert_eq!(
                    out.len() as u64,
                    resampled_len(n as u64, from, to),
                    "{from}->{to} n={n}"
                );
            }
        }
    }

    #[test]
    fn passthrough_at_equal_rates() {
        let out = run(44100, 44100, 5000);
        assert_eq!(out.len(), 5000);
        assert!(
            (out[100] - (2.0 * std::f32::consts::PI * 440.0 * 100.0 / 44100.0).sin() * 0.5).abs()
                < 1e-7
        );
    }

    #[test]
    fn sine_is_aligned_and_clean() {
        // 440 Hz at 48 kHz -> 44.1 kHz: the output must be the same sine at the
        // new rate, with no delay (phase aligned), within -60 dB error.
        let out = run(48000, 44100, 48000);
        let mut err = 0.0f64;
        let mut sig = 0.0f64;
        for (i, &y) in out.iter().enumerate().skip(2000).take(40000) {
            let x = (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 44100.0).sin() * 0.5;
            err += (y as f64 - x).powi(2);
            sig += x * x;
        }
        let snr = 10.0 * (sig / err).log10();
        assert!(snr > 60.0, "snr {snr}");
    }
}
