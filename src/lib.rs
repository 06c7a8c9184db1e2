//! Podcast episodes from a caller's recording and the host's answer, in pure
//! Rust: decode (WebM, Ogg, MP4, MP3, FLAC, WAV…), remove DC and rumble,
//! trim the silences, level both voices to EBU R128, crossfade them between
//! three bumpers, and encode the episode and both segments as gapless MP3s
//! whose loudness, true peak and length are checked by decoding them again.
//!
//! ```
//! use podstitch::{stitch, Bumpers, Input, Outputs, Quiet, Settings};
//!
//! let mut outputs = Outputs::in_memory();
//! let report = stitch(
//!     Input::Path("fixtures/caller.webm".into()),
//!     Input::Path("fixtures/response.ogg".into()),
//!     Bumpers::embedded(),
//!     &mut outputs,
//!     &Settings::default(),
//!     &Quiet,
//! )?;
//! assert_eq!(report.episode_audio_size as usize, outputs.episode.get_ref().len());
//! println!("{}", report.to_json_line());
//! # Ok::<(), podstitch::Error>(())
//! ```
//!
//! [`stitch_to_dir`] does the same into a directory (the three files appear
//! only when all three are complete);
//! [`Observer`] receives the log and the progress; [`analyze`] measures a
//! file the way `podstitch analyze` does. [`stages`] holds the building
//! blocks for those who compose a chain of their own.
//!
//! Cargo features: `cli` (the `podstitch` command: clap, signal-hook) and
//! `job` (its sandbox job mode with the HTTP client: reqwest, rustls), both
//! on by default. `default-features = false` builds this library alone.
//! The command, the job contract and the design are described in the
//! project's README and ARCHITECTURE.md.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(unnameable_types)]

mod analyze;
mod audio;
mod decode;
mod dsp;
mod encode;
mod error;
mod io;
mod loudness;
mod pipeline;
mod report;
mod settings;

pub use analyze::{analyze, analyze_with_chart, Analysis};
pub use dsp::silence::SilenceSettings;
pub use encode::id3::Chapter;
pub use encode::Mp3Options;
pub use error::{Error, Stage};
pub use io::{Bumpers, FileSink, Input, Outputs, Sink};
pub use loudness::LoudnessSettings;
pub use pipeline::{stitch, stitch_to_dir};
pub use report::plot::Chart;
pub use report::waveform::Waveform;
pub use report::{
    BumperReport, Observer, OutputReport, PartSpan, Quiet, RecordingReport, Report, TimeSpan,
    Timings,
};
pub use settings::{BumperLoudness, EncoderPath, Limits, Settings, Tags};

/// The pipeline's building blocks, for those who compose a chain of their
/// own: every stage reads planar [`Block`](stages::Block)s from a
/// [`Source`](stages::Source) (or transforms them in place as a
/// [`Processor`](stages::Processor)), so they chain by wrapping; a chain
/// ends in a [`BlockSink`](stages::BlockSink) (a meter, an encoder, or a
/// tuple of sinks, each fed every block), which [`drain`](stages::drain)
/// fills:
///
/// ```no_run
/// use podstitch::stages::{drain, Decoder, Meter, Measures, Mp3Format, Mp3Writer, Resample, Source};
///
/// let dec = Decoder::open_path("call", std::path::Path::new("call.webm"))?;
/// let mut src = Resample::new(dec, 44_100, "call")?;
/// let meter = Meter::new(src.channels(), 44_100, Measures::ALL)?;
/// let format = Mp3Format {
///     options: podstitch::Mp3Options { bitrate_kbps: 128, quality: 3 },
///     channels: src.channels() as u8,
///     sample_rate: 44_100,
/// };
/// let mp3 = Mp3Writer::new("call.mp3", std::fs::File::create("call.mp3")?, &format)?;
/// let (meter, (_file, bytes)) = drain(&mut src, (meter, mp3))?;
/// println!("{:.1} LUFS, {bytes} bytes", meter.measurement()?.integrated_lufs);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// What [`stitch`] does with them, and why, is in the
/// project's ARCHITECTURE.md.
pub mod stages {
    pub use crate::audio::{drain, Block, BlockSink, MemorySource, Processed, Processor, Source};
    pub use crate::decode::{DecodeStats, Decoder};
    pub use crate::dsp::front::HighPass;
    pub use crate::dsp::limiter::Limiter;
    pub use crate::dsp::resample::Resample;
    pub use crate::dsp::silence::{Cut, CutStats, SilenceCutter};
    pub use crate::encode::{Mp3Format, Mp3Writer};
    pub use crate::loudness::{Measurement, Measures, Meter};
    pub use crate::pipeline::spool::TempDir;
}

/// Internals that this crate's own tests and benchmarks reach (feature
/// `internals`, off by default; no stability promise: anything here may
/// change in any release).
#[cfg(feature = "internals")]
pub mod internals {
    pub use crate::decode::{decode_all, MAX_NON_FINITE_FRACTION};
    pub use crate::dsp::denoise::{denoised, Denoise, DENOISE_RATE};
    pub use crate::dsp::front::{Downmix, Downmixed, FrontAnalysis, Threshold};
    pub use crate::dsp::mixer::{plan_fades, Mix, MixPart, ShortFade};
    pub use crate::encode::chunked::{ChunkOptions, ChunkReport, ChunkedMp3Writer, EncodePool};
    pub use crate::pipeline::spool::{Spool, SpoolReader, SpoolWriter};
}
