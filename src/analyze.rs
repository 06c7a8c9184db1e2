//! Measuring a finished (or any) audio file: what a user checks an output with.

use serde::Serialize;

use crate::audio::{Block, Source};
use crate::error::Result;
use crate::io::Input;
use crate::loudness::{Measures, Meter};
use crate::silence::{PauseFinder, SilenceSettings};

/// One pause longer than the maximum.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LongPause {
    /// Where the pause starts, in seconds.
    pub start_s: f64,
    /// How long it is, in seconds.
    pub duration_s: f64,
}

/// The figures `podstitch analyze` prints for one file.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    /// The file as named by the user.
    pub file: String,
    /// Container and codec, e.g. `"mp3/mp3"`.
    pub format: String,
    /// Decoded length in frames.
    pub frames: u64,
    /// Duration in seconds.
    pub duration_s: f64,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Channels.
    pub channels: usize,
    /// Integrated loudness in LUFS.
    pub integrated_lufs: f64,
    /// Loudness range in LU.
    pub lra_lu: f64,
    /// True peak in dBTP.
    pub true_peak_dbtp: f64,
    /// Silence before the first sound, in seconds.
    pub leading_silence_s: f64,
    /// Longest pause after the first sound, in seconds (0 if none over the limit).
    pub longest_pause_s: f64,
    /// Pauses longer than the silence settings' maximum pause.
    pub long_pauses: Vec<LongPause>,
}

/// Decodes `input` and measures it. Pauses are found with the same detector
/// as the silence stage (`silence`), on the file's own channels and rate.
pub fn analyze(file: &str, input: Input, silence: &SilenceSettings) -> Result<Analysis> {
    let mut dec = input.open(file)?;
    let format = format!("{}/{}", dec.container_name(), dec.codec_name());
    let (rate, ch) = (dec.sample_rate(), dec.channels());
    let mut meter = Meter::new(
        ch,
        rate,
        Measures {
            lra: true,
            true_peak: true,
            series: false,
        },
    )?;
    let limit = (silence.max_pause_s * f64::from(rate)).round() as u64 + 1;
    let mut pauses = PauseFinder::new(ch, rate, silence, limit);
    let mut block = Block::default();
    while dec.read(&mut block)? {
        meter.add_block(&block)?;
        pauses.process(&block);
    }
    let m = meter.measurement()?;
    let (lead, long) = pauses.finish();
    let secs = |f: u64| f as f64 / f64::from(rate);
    let long_pauses: Vec<LongPause> = long
        .iter()
        .map(|p| LongPause {
            start_s: secs(p.start),
            duration_s: secs(p.len),
        })
        .collect();
    Ok(Analysis {
        file: file.to_string(),
        format,
        frames: m.frames,
        duration_s: secs(m.frames),
        sample_rate: rate,
        channels: ch,
        integrated_lufs: m.integrated_lufs,
        lra_lu: m.lra_lu,
        true_peak_dbtp: m.true_peak_dbtp,
        leading_silence_s: secs(lead),
        longest_pause_s: long_pauses.iter().map(|p| p.duration_s).fold(0.0, f64::max),
        long_pauses,
    })
}
