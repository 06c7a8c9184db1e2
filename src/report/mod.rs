//! What a run did and what it produced, serialisable as the one JSON line
//! the command prints.

pub(crate) mod plot;
pub(crate) mod waveform;

use serde::Serialize;

use crate::report::waveform::Waveform;

/// Figures of one finished output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputReport {
    /// Bytes written.
    pub bytes: u64,
    /// Length in frames at the output rate.
    pub frames: u64,
    /// Duration in seconds.
    pub duration_s: f64,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Channel count.
    pub channels: usize,
    /// Integrated loudness of the decoded file in LUFS (`None` when verification is off).
    pub integrated_lufs: Option<f64>,
    /// True peak of the decoded file in dBTP (`None` when verification is off).
    pub true_peak_dbtp: Option<f64>,
}

/// What was done to one recording.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingReport {
    /// Container and codec found in the bytes, e.g. `"webm/opus"`.
    pub format: String,
    /// Sample rate of the input.
    pub input_sample_rate: u32,
    /// Channels of the input.
    pub input_channels: usize,
    /// Duration of the decoded input, in seconds.
    pub input_duration_s: f64,
    /// Cut-off of the high-pass applied before everything else, Hz (0: none).
    pub highpass_hz: f64,
    /// Whether the noise suppressor ran on it (`--denoise`).
    pub denoised: bool,
    /// How the channels became one: `"mono"`, `"average"`, `"difference"`
    /// (anti-phase stereo) or `"channel N"` (one channel alone).
    pub downmix: String,
    /// Correlation of the two channels of a stereo input (after the high-pass).
    pub channel_correlation: Option<f64>,
    /// Noise floor of the downmix (10th percentile of its 20 ms RMS), dBFS;
    /// `None` for digital silence.
    pub noise_floor_dbfs: Option<f64>,
    /// The silence threshold used, dBFS.
    pub silence_threshold_db: f64,
    /// True when the noise floor raised the threshold above the configured one.
    pub threshold_adapted: bool,
    /// Leading silence removed, in seconds.
    pub leading_trimmed_s: f64,
    /// Number of pauses shortened.
    pub pauses_shortened: usize,
    /// Total removed from pauses, in seconds.
    pub pause_removed_s: f64,
    /// Duration after trimming, in seconds.
    pub duration_s: f64,
    /// Integrated loudness after the downmix and trimming, before any gain, in LUFS.
    pub input_integrated_lufs: f64,
    /// Loudness range after trimming, in LU.
    pub input_lra_lu: f64,
    /// True peak after trimming, in dBTP.
    pub input_true_peak_dbtp: f64,
    /// True if the leveller was used (the loudness range was wider than the target).
    pub leveller: bool,
    /// Linear gain applied, in dB (on top of the leveller's curve when
    /// used): the gain before the limiter plus the trim after it.
    pub gain_db: f64,
    /// Passes through the limiter that calibration took (0 when no limiting
    /// was needed; usually 1).
    pub calibration_passes: u32,
    /// What the silence stage removed, in the input's time: the leading
    /// silence, then each shortened pause's removed stretch (not in the
    /// JSON line, which gives the totals; `stitch --plot` draws it).
    #[serde(skip)]
    pub removed: Vec<TimeSpan>,
    /// Samples of the input that were NaN or infinite (replaced by 0; a
    /// file with more than `decode::MAX_NON_FINITE_FRACTION` of them is
    /// refused).
    pub non_finite_samples: u64,
    /// Recordings found one after the other in the file (chained Ogg
    /// streams, appended WebM files) and decoded in order as one; 1 for an
    /// ordinary file.
    pub input_parts: u64,
}

/// How one bumper was levelled.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BumperReport {
    /// `intro`, `interstitial` or `outro`.
    pub name: String,
    /// Decoded length at the output rate, in seconds.
    pub duration_s: f64,
    /// Integrated loudness as mastered, LUFS.
    pub integrated_lufs: f64,
    /// True peak as mastered, dBTP.
    pub true_peak_dbtp: f64,
    /// Gain applied in the episode, dB (0 with `keep`): to the target plus
    /// the offset, plus what the limiter takes back when the gain raises
    /// its peaks over the ceiling, plus the episode trim.
    pub gain_db: f64,
}

/// One part of the episode.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartSpan {
    /// `intro`, `caller`, `interstitial`, `response` or `outro`.
    pub name: String,
    /// Where the part starts (its fade-in included), in seconds.
    pub start_s: f64,
    /// Where it ends (its fade-out included), in seconds.
    pub end_s: f64,
}

/// A stretch of time in a recording.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeSpan {
    /// Start, in seconds.
    pub start_s: f64,
    /// Length, in seconds.
    pub duration_s: f64,
}

/// Time spent in each stage, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    /// Decode, resample, trim and measure a recording (first pass): the
    /// longer of the two, which run side by side.
    pub analyse_s: f64,
    /// Loudness calibration through the limiter: the longer of the two
    /// recordings' (summed over renders when one is repeated).
    pub calibrate_s: f64,
    /// Render, encode and verify the episode and the response's segment
    /// once both recordings are calibrated (summed over renders when one is
    /// repeated). The caller's segment is usually done by then: in every
    /// render it is encoded as soon as the caller's recording is
    /// calibrated, while the response is still being analysed or
    /// calibrated.
    pub render_s: f64,
    /// The longest time an output's verification went on after its
    /// encoding had ended (each output is decoded and measured while it is
    /// written).
    pub verify_s: f64,
}

/// The report of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Bytes of the episode file.
    pub episode_audio_size: u64,
    /// Bytes of the caller segment file.
    pub caller_segment_audio_size: u64,
    /// Bytes of the response segment file.
    pub response_segment_audio_size: u64,
    /// The episode.
    pub episode: OutputReport,
    /// The caller segment.
    pub caller_segment: OutputReport,
    /// The response segment.
    pub response_segment: OutputReport,
    /// What was done to the caller's recording.
    pub caller: RecordingReport,
    /// What was done to the response recording.
    pub response: RecordingReport,
    /// The three bumpers, measured once per run, and the gain each got.
    pub bumpers: Vec<BumperReport>,
    /// The trim common to the three bumpers' gains that puts the episode's
    /// predicted loudness on target, dB (0 with `keep` or a non-zero offset).
    pub bumper_trim_db: f64,
    /// The episode's loudness as predicted from its parts before encoding,
    /// LUFS (`episode.integratedLufs` is the measured one).
    pub episode_predicted_lufs: f64,
    /// The episode's chapters, as written in its ID3 tag.
    pub chapters: Vec<crate::encode::id3::Chapter>,
    /// Where each of the five parts (intro, caller, interstitial, response,
    /// outro) lies in the episode, fades included: two neighbours overlap
    /// by their crossfade.
    pub episode_parts: Vec<PartSpan>,
    /// Times per stage.
    pub timings: Timings,
    /// The episode's waveform data when `Settings::waveform_pixels_per_second`
    /// asked for it (not part of the JSON line: write it with
    /// [`Waveform::to_json`]).
    #[serde(skip)]
    pub episode_waveform: Option<Waveform>,
}

impl Report {
    /// The report as one line of JSON.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }
}

/// Receives log lines and progress from a run. Both methods default to doing nothing.
pub trait Observer: Sync {
    /// One line of log, without a newline.
    fn log(&self, _line: &str) {}
    /// Progress of the render: `done` of `total` episode frames.
    fn progress(&self, _done: u64, _total: u64) {}
    /// Progress of another long stage: `stage` names it and its recording
    /// (e.g. "analysing the caller recording"), `done_s` seconds of audio of
    /// `total_s` (`None` when the length is not known before the end, as in
    /// Chrome's WebM). Called every few seconds of audio and once at the
    /// end, with `total_s` equal to `Some(done_s)`.
    fn stage_progress(&self, _stage: &str, _done_s: f64, _total_s: Option<f64>) {}
}

/// An [`Observer`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Observer for Quiet {}
