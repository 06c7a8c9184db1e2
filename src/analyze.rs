//! Measuring a finished (or any) audio file: what a user checks an output with.

use serde::Serialize;

use crate::audio::units::{frames_to_secs, gain_to_db, secs_to_frames};
use crate::audio::{Block, Source};
use crate::dsp::silence::{PauseFinder, SilenceSettings};
use crate::error::Result;
use crate::io::Input;
use crate::loudness::truepeak::TruePeakMeter;
use crate::loudness::{Measures, Meter, HOP_SECONDS};
use crate::report::plot::Chart;
use crate::report::TimeSpan;

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
    pub long_pauses: Vec<TimeSpan>,
}

/// Decodes `input` and measures it. Pauses are found with the same detector
/// as the silence stage (`silence`), on the file's own channels and rate.
pub fn analyze(file: &str, input: Input, silence: &SilenceSettings) -> Result<Analysis> {
    measure_file(file, input, silence, false).map(|(a, _)| a)
}

/// [`analyze`], and the file's loudness over time as a [`Chart`] (short-term
/// and momentary loudness and the true peak every 100 ms). The chart marks
/// no target and a ceiling of 0 dBTP: set [`Chart::target`] and
/// [`Chart::ceiling_dbtp`] to mark others.
pub fn analyze_with_chart(
    file: &str,
    input: Input,
    silence: &SilenceSettings,
) -> Result<(Analysis, Chart)> {
    let (a, chart) = measure_file(file, input, silence, true)?;
    Ok((a, chart.unwrap_or_default()))
}

fn measure_file(
    file: &str,
    input: Input,
    silence: &SilenceSettings,
    chart: bool,
) -> Result<(Analysis, Option<Chart>)> {
    let mut dec = input.open(file)?;
    let format = format!("{}/{}", dec.container_name(), dec.codec_name());
    let (rate, ch) = (dec.sample_rate(), dec.channels());
    let mut meter = Meter::new(
        ch,
        rate,
        Measures {
            lra: true,
            true_peak: true,
            series: chart,
        },
    )?;
    let limit = secs_to_frames(silence.max_pause_s, rate) + 1;
    let mut pauses = PauseFinder::new(ch, rate, silence, limit);
    // For a chart: the true peak of every 100 ms hop.
    let hop = secs_to_frames(HOP_SECONDS, rate) as usize;
    let mut hop_peaks = chart.then(|| (TruePeakMeter::new(ch, rate), 0usize, Vec::new()));
    let mut block = Block::default();
    while dec.read(&mut block)? {
        meter.add_block(&block)?;
        pauses.process(&block);
        if let Some((tp, in_hop, peaks)) = hop_peaks.as_mut() {
            let mut start = 0;
            while start < block.frames() {
                let take = (hop - *in_hop).min(block.frames() - start);
                let planes: Vec<&[f32]> = block
                    .planes()
                    .iter()
                    .map(|p| &p[start..start + take])
                    .collect();
                tp.process(&planes);
                (start, *in_hop) = (start + take, *in_hop + take);
                if *in_hop == hop {
                    peaks.push(gain_to_db(f64::from(tp.take_peak())) as f32);
                    *in_hop = 0;
                }
            }
        }
    }
    let m = meter.measurement()?;
    let (lead, long) = pauses.finish();
    let secs = |f: u64| frames_to_secs(f, rate);
    let long_pauses: Vec<TimeSpan> = long
        .iter()
        .map(|p| TimeSpan {
            start_s: secs(p.start),
            duration_s: secs(p.len),
        })
        .collect();
    let chart = hop_peaks.map(|(_, _, peaks_dbtp)| Chart {
        title: format!(
            "{file}: {:.2} LUFS integrated, LRA {:.1} LU, true peak {:.2} dBTP",
            m.integrated_lufs, m.lra_lu, m.true_peak_dbtp
        ),
        duration_s: secs(m.frames),
        hop_s: HOP_SECONDS,
        short_term: meter.take_series(),
        momentary: meter.momentary_series(),
        peaks_dbtp,
        pauses: long_pauses.clone(),
        ..Chart::default()
    });
    let analysis = Analysis {
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
    };
    Ok((analysis, chart))
}
