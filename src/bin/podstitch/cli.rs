//! Command-line flags, parsed into plain values and turned into [`Settings`].

use std::path::PathBuf;
#[cfg(feature = "job")]
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use podstitch::{
    BumperLoudness, EncoderPath, Limits, LoudnessSettings, Mp3Options, Settings, SilenceSettings,
    Tags, Waveform,
};

#[cfg(feature = "job")]
use crate::http::HttpSettings;
#[cfg(feature = "job")]
use crate::job::Overrides;

/// podstitch: stitch a caller's question and the host's answer into a podcast episode.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
// Parsed once per run: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Stitch two recordings between the bumpers into episode.mp3,
    /// caller-segment.mp3 and response-segment.mp3; print one JSON line.
    Stitch(StitchArgs),
    /// Measure audio files: duration, rate, channels, loudness, LRA, true
    /// peak, leading silence and pauses over the maximum pause.
    Analyze(AnalyzeArgs),
    /// The sandbox job: read the contract's environment variables, download
    /// both recordings, stitch, upload the three MP3s, print one JSON line.
    /// Run as `call-kent-audio-cli` (a link to this binary) it needs no
    /// arguments. Flags win over the environment.
    #[cfg(feature = "job")]
    Job(JobArgs),
    /// Print a shell completion script to stdout, e.g.
    /// `podstitch completions bash > /etc/bash_completion.d/podstitch`.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to stdout, e.g. `podstitch man | man -l -`.
    Man,
}

/// Flags of `job`: each may replace its environment variable.
#[cfg(feature = "job")]
#[derive(Debug, Args)]
pub struct JobArgs {
    /// Draft id [env: CALL_KENT_AUDIO_DRAFT_ID].
    #[arg(long)]
    pub draft_id: Option<String>,
    /// Attempt number [env: CALL_KENT_AUDIO_ATTEMPT].
    #[arg(long)]
    pub attempt: Option<String>,
    /// Presigned GET of the caller's recording [env: CALL_AUDIO_URL].
    #[arg(long)]
    pub call_url: Option<String>,
    /// Presigned GET of the response recording [env: RESPONSE_AUDIO_URL].
    #[arg(long)]
    pub response_url: Option<String>,
    /// Presigned PUT for the episode [env: EPISODE_UPLOAD_URL].
    #[arg(long)]
    pub episode_upload_url: Option<String>,
    /// Presigned PUT for the caller segment [env: CALLER_SEGMENT_UPLOAD_URL].
    #[arg(long)]
    pub caller_segment_upload_url: Option<String>,
    /// Presigned PUT for the response segment [env: RESPONSE_SEGMENT_UPLOAD_URL].
    #[arg(long)]
    pub response_segment_upload_url: Option<String>,
    /// Presigned PUT for the episode's waveform data, JSON (optional; absent: none is made)
    /// [env: EPISODE_WAVEFORM_UPLOAD_URL].
    #[arg(long)]
    pub episode_waveform_upload_url: Option<String>,
    /// Directory with the three bumpers [env: CALL_KENT_AUDIO_ASSETS_DIR, default: /opt/call-kent-audio/assets].
    #[arg(long, value_name = "DIR")]
    pub assets_dir: Option<PathBuf>,
    /// Seconds allowed for the whole job; after that it stops with exit 6.
    #[arg(long, default_value_t = 840.0)]
    pub deadline: f64,
    /// Seconds allowed to connect.
    #[arg(long, default_value_t = 10.0)]
    pub connect_timeout: f64,
    /// Seconds allowed for each transfer.
    #[arg(long, default_value_t = 300.0)]
    pub transfer_timeout: f64,
    /// Retries after a transient failure (connection refused or reset, timeout, 408, 429, 5xx).
    #[arg(long, default_value_t = 3)]
    pub retries: u32,
    /// Seconds before the first retry (doubled for each further one).
    #[arg(long, default_value_t = 5.0)]
    pub retry_delay: f64,
    /// Pipeline settings.
    #[command(flatten)]
    pub settings: SettingsArgs,
}

#[cfg(feature = "job")]
fn secs(name: &str, v: f64) -> Result<Duration, String> {
    if v.is_finite() && v > 0.0 && v < 1e7 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(format!(
            "--{name} must be a positive number of seconds, not {v}"
        ))
    }
}

#[cfg(feature = "job")]
impl JobArgs {
    /// The flag values that replace environment variables.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            required: [
                self.draft_id.clone(),
                self.attempt.clone(),
                self.call_url.clone(),
                self.response_url.clone(),
                self.episode_upload_url.clone(),
                self.caller_segment_upload_url.clone(),
                self.response_segment_upload_url.clone(),
            ],
            assets_dir: self.assets_dir.clone(),
            waveform_url: self.episode_waveform_upload_url.clone(),
        }
    }

    /// The transfer settings these flags describe.
    pub fn http(&self) -> Result<HttpSettings, String> {
        Ok(HttpSettings {
            connect_timeout: secs("connect-timeout", self.connect_timeout)?,
            transfer_timeout: secs("transfer-timeout", self.transfer_timeout)?,
            retries: self.retries,
            retry_delay: if self.retry_delay == 0.0 {
                Duration::ZERO
            } else {
                secs("retry-delay", self.retry_delay)?
            },
            max_download_bytes: self.settings.max_input_bytes,
        })
    }

    /// The overall deadline.
    pub fn deadline(&self) -> Result<Duration, String> {
        secs("deadline", self.deadline)
    }
}

/// Flags of `stitch`.
#[derive(Debug, Args)]
pub struct StitchArgs {
    /// The caller's recording (any supported format; detected from the bytes).
    #[arg(long, value_name = "FILE")]
    pub call: PathBuf,
    /// The host's response recording.
    #[arg(long, value_name = "FILE")]
    pub response: PathBuf,
    /// Directory with intro.mp3, interstitial.mp3 and outro.mp3 [default: the bumpers built in].
    #[arg(long, value_name = "DIR")]
    pub assets: Option<PathBuf>,
    /// Directory the three MP3s are written to (created if missing).
    #[arg(short = 'o', long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
    /// Overwrite outputs that already exist in the output directory
    /// (without it, stitch refuses before doing any work).
    #[arg(long)]
    pub force: bool,
    /// No log lines or progress on stderr, only errors (the JSON line on
    /// stdout stays).
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More detail on stderr: the settings used, every stage's time and
    /// each output's figures.
    #[arg(short, long)]
    pub verbose: bool,
    /// Also draw the outputs as SVG into DIR: episode.svg (loudness over
    /// time with the parts and crossfades marked), caller.svg and
    /// response.svg (each recording before, with what was cut, and after).
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
    /// Also write the episode's waveform data for a web player,
    /// DIR/episode.waveform.json (audiowaveform's JSON format, version 2).
    #[arg(long, value_name = "DIR")]
    pub waveform: Option<PathBuf>,
    /// Pipeline settings.
    #[command(flatten)]
    pub settings: SettingsArgs,
}

/// Flags of `analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Files to measure.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print one JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
    /// Silence threshold for pause detection, dBFS.
    #[arg(long, default_value_t = -50.0, allow_hyphen_values = true)]
    pub silence_threshold: f64,
    /// Pauses longer than this are listed, seconds.
    #[arg(long, default_value_t = 1.0)]
    pub max_pause: f64,
    /// Draw each file's loudness over time as SVG: OUT is the file for one
    /// input, a directory (FILE's name + .svg) for several.
    #[arg(long, value_name = "OUT")]
    pub plot: Option<PathBuf>,
    /// The loudness target the plot shows, LUFS.
    #[arg(long, default_value_t = -16.0, allow_hyphen_values = true)]
    pub target: f64,
    /// The tolerance around the target the plot shows, LU.
    #[arg(long, default_value_t = 1.0)]
    pub tolerance: f64,
    /// The true-peak ceiling the plot shows, dBTP.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub ceiling: f64,
}

/// Every setting of the pipeline, as flags (defaults are the product's).
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// Common sample rate of all outputs, Hz.
    #[arg(long, default_value_t = 44100)]
    pub sample_rate: u32,
    /// Target integrated loudness, LUFS.
    #[arg(long, default_value_t = -16.0, allow_hyphen_values = true)]
    pub loudness: f64,
    /// Loudness range above which the leveller is used, LU.
    #[arg(long, default_value_t = 11.0)]
    pub lra: f64,
    /// True-peak ceiling of the decoded MP3s, dBTP.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub true_peak: f64,
    /// Limiter headroom below the ceiling for MP3 overshoot, dB.
    #[arg(long, default_value_t = 1.0)]
    pub mp3_headroom: f64,
    /// Silence threshold, dBFS [default: -50, raised to the noise floor + 6 dB
    /// when the floor is above -56 dBFS]. Given explicitly, it is used as is.
    #[arg(long, allow_hyphen_values = true)]
    pub silence_threshold: Option<f64>,
    /// High-pass cut-off applied to the recordings before any decision
    /// (removes DC offset and rumble), Hz; 0 turns it off.
    #[arg(long, value_name = "HZ", default_value_t = 60.0)]
    pub highpass: f64,
    /// Suppress steady background noise (fan, hiss, street) in the
    /// recordings, not the bumpers, before any decision (RNNoise).
    #[arg(long)]
    pub denoise: bool,
    /// Longest pause kept, seconds.
    #[arg(long, default_value_t = 1.0)]
    pub max_pause: f64,
    /// Fade across each cut, milliseconds.
    #[arg(long, default_value_t = 5.0)]
    pub cut_fade_ms: f64,
    /// Crossfade between parts of the episode, seconds.
    #[arg(long, default_value_t = 1.0)]
    pub crossfade: f64,
    /// Episode bitrate (stereo CBR), kb/s.
    #[arg(long, default_value_t = 128)]
    pub episode_bitrate: u32,
    /// Segment bitrate (mono CBR), kb/s.
    #[arg(long, default_value_t = 64)]
    pub segment_bitrate: u32,
    /// LAME quality, 0 (best) to 9 (fastest).
    #[arg(long, default_value_t = 3)]
    pub quality: u8,
    /// Skip decoding the finished MP3s to measure and check them.
    #[arg(long)]
    pub no_verify: bool,
    /// MP3 encoding: `chunked` (20 s chunks on every CPU), `single` (one
    /// encoder per output, one output after the other: less memory) or
    /// `auto` (the path measured cheapest: chunked).
    #[arg(long, value_name = "auto|single|chunked", default_value = "auto", value_parser = parse_encoder)]
    pub encoder: EncoderPath,
    /// Directory for temporary files [default: the system's].
    #[arg(long, value_name = "DIR")]
    pub temp_dir: Option<PathBuf>,
    /// Largest input accepted (recording, bumper or download), bytes.
    #[arg(long, default_value_t = 2 << 30)]
    pub max_input_bytes: u64,
    /// Longest recording accepted, seconds of decoded audio.
    #[arg(long, default_value_t = 10800.0)]
    pub max_duration: f64,
    /// Longest bumper accepted, seconds.
    #[arg(long, default_value_t = 120.0)]
    pub max_bumper_duration: f64,
    /// Most channels an input may have.
    #[arg(long, default_value_t = 8)]
    pub max_channels: usize,
    /// Lowest input sample rate accepted, Hz.
    #[arg(long, default_value_t = 8000)]
    pub min_sample_rate: u32,
    /// Highest input sample rate accepted, Hz.
    #[arg(long, default_value_t = 192_000)]
    pub max_sample_rate: u32,
    /// Points per second of the episode's waveform data (made only with
    /// `stitch --waveform DIR`, or in the job with EPISODE_WAVEFORM_UPLOAD_URL).
    #[arg(long, value_name = "N", default_value_t = Waveform::DEFAULT_PIXELS_PER_SECOND)]
    pub waveform_pps: u32,
    /// Bumpers' loudness relative to the target, LU, or `keep` to play them as mastered.
    #[arg(long, value_name = "LU|keep", default_value = "0", value_parser = parse_bumper_loudness, allow_hyphen_values = true)]
    pub bumper_loudness: BumperLoudness,
    /// A chapter's title, as PART=TITLE with PART one of intro, question,
    /// interlude, answer, outro (repeat for several) [defaults: Intro,
    /// Question, Interlude, Answer, Outro].
    #[arg(long, value_name = "PART=TITLE", value_parser = parse_chapter_title)]
    pub chapter_title: Vec<(usize, String)>,
    /// Episode title (ID3 TIT2; the segments get it with their chapter's title) [env in job: PODSTITCH_TITLE].
    #[arg(long)]
    pub title: Option<String>,
    /// Artist (ID3 TPE1) [env in job: PODSTITCH_ARTIST].
    #[arg(long)]
    pub artist: Option<String>,
    /// Album, e.g. the show's name (ID3 TALB) [env in job: PODSTITCH_ALBUM].
    #[arg(long)]
    pub album: Option<String>,
    /// Year, four digits (ID3 TDRC) [env in job: PODSTITCH_YEAR].
    #[arg(long, value_parser = parse_year)]
    pub year: Option<u16>,
    /// Comment on the episode (ID3 COMM) [env in job: PODSTITCH_COMMENT].
    #[arg(long)]
    pub comment: Option<String>,
    /// Cover image of the episode, a JPEG or PNG file of at most 10 MiB (ID3 APIC) [env in job: PODSTITCH_COVER].
    #[arg(long, value_name = "FILE")]
    pub cover: Option<PathBuf>,
}

/// `keep` or an offset in LU.
fn parse_bumper_loudness(v: &str) -> Result<BumperLoudness, String> {
    if v.eq_ignore_ascii_case("keep") {
        return Ok(BumperLoudness::Keep);
    }
    v.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .map(BumperLoudness::Offset)
        .ok_or_else(|| format!("{v:?} is neither `keep` nor a number of LU such as 0 or -2"))
}

fn parse_encoder(v: &str) -> Result<EncoderPath, String> {
    match v.to_ascii_lowercase().as_str() {
        "auto" => Ok(EncoderPath::Auto),
        "single" => Ok(EncoderPath::Single),
        "chunked" => Ok(EncoderPath::Chunked),
        _ => Err(format!("{v:?} is not `auto`, `single` or `chunked`")),
    }
}

/// The chapter parts a `--chapter-title` may name, in episode order.
const CHAPTER_PARTS: [&str; 5] = ["intro", "question", "interlude", "answer", "outro"];

/// `PART=TITLE`.
fn parse_chapter_title(v: &str) -> Result<(usize, String), String> {
    let (part, title) = v
        .split_once('=')
        .ok_or_else(|| format!("{v:?} is not PART=TITLE (e.g. intro=Welcome)"))?;
    let k = CHAPTER_PARTS
        .iter()
        .position(|p| p.eq_ignore_ascii_case(part.trim()))
        .ok_or_else(|| {
            format!(
                "{part:?} is not a part; use one of {}",
                CHAPTER_PARTS.join(", ")
            )
        })?;
    Ok((k, title.to_string()))
}

/// A four-digit year.
pub fn parse_year(v: &str) -> Result<u16, String> {
    v.trim()
        .parse::<u16>()
        .ok()
        .filter(|y| (1000..=9999).contains(y))
        .ok_or_else(|| format!("{v:?} is not a four-digit year such as 2026"))
}

impl SettingsArgs {
    /// The settings these flags describe.
    pub fn to_settings(&self) -> Settings {
        Settings {
            sample_rate: self.sample_rate,
            highpass_hz: self.highpass,
            denoise: self.denoise,
            silence: SilenceSettings {
                threshold_db: self
                    .silence_threshold
                    .unwrap_or(SilenceSettings::default().threshold_db),
                adaptive: self.silence_threshold.is_none(),
                max_pause_s: self.max_pause,
                fade_ms: self.cut_fade_ms,
                ..SilenceSettings::default()
            },
            loudness: LoudnessSettings {
                integrated_lufs: self.loudness,
                lra_lu: self.lra,
                true_peak_dbtp: self.true_peak,
                mp3_headroom_db: self.mp3_headroom,
                ..LoudnessSettings::default()
            },
            crossfade_s: self.crossfade,
            episode_mp3: Mp3Options {
                bitrate_kbps: self.episode_bitrate,
                quality: self.quality,
            },
            segment_mp3: Mp3Options {
                bitrate_kbps: self.segment_bitrate,
                quality: self.quality,
            },
            verify: !self.no_verify,
            encoder: self.encoder,
            temp_dir: self.temp_dir.clone(),
            // Made only when an output for it is given (stitch --waveform,
            // the job's EPISODE_WAVEFORM_UPLOAD_URL).
            waveform_pixels_per_second: None,
            limits: Limits {
                max_input_bytes: self.max_input_bytes,
                max_duration_s: self.max_duration,
                max_bumper_duration_s: self.max_bumper_duration,
                max_channels: self.max_channels,
                min_sample_rate: self.min_sample_rate,
                max_sample_rate: self.max_sample_rate,
            },
            bumper_loudness: self.bumper_loudness,
            chapter_titles: {
                let mut t = Settings::default().chapter_titles;
                for (k, title) in &self.chapter_title {
                    t[*k] = title.clone();
                }
                t
            },
            tags: Tags {
                title: self.title.clone(),
                artist: self.artist.clone(),
                album: self.album.clone(),
                year: self.year,
                comment: self.comment.clone(),
                cover: self.cover.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flag_defaults_equal_library_defaults() {
        let cli = Cli::parse_from(["podstitch", "stitch", "--call", "a", "--response", "b"]);
        let Command::Stitch(args) = cli.command else {
            panic!("not stitch")
        };
        assert_eq!(args.settings.to_settings(), Settings::default());
    }

    #[cfg(feature = "job")]
    #[test]
    fn job_flag_defaults_are_the_contract() {
        let cli = Cli::parse_from(["podstitch", "job"]);
        let Command::Job(args) = cli.command else {
            panic!("not job")
        };
        assert_eq!(args.http().unwrap(), HttpSettings::default());
        assert_eq!(args.deadline().unwrap(), Duration::from_secs(14 * 60));
        assert_eq!(args.overrides(), Overrides::default());
    }

    #[test]
    fn flags_reach_settings() {
        let cli = Cli::parse_from([
            "podstitch",
            "stitch",
            "--call",
            "a",
            "--response",
            "b",
            "--loudness",
            "-19",
            "--max-pause",
            "0.5",
            "--episode-bitrate",
            "192",
            "--no-verify",
            "--max-duration",
            "60",
            "--max-channels",
            "2",
            "--silence-threshold",
            "-40",
            "--highpass",
            "0",
            "--denoise",
            "--encoder",
            "single",
        ]);
        let Command::Stitch(args) = cli.command else {
            panic!("not stitch")
        };
        let s = args.settings.to_settings();
        assert_eq!(s.loudness.integrated_lufs, -19.0);
        assert_eq!(s.silence.max_pause_s, 0.5);
        assert_eq!(s.episode_mp3.bitrate_kbps, 192);
        assert!(!s.verify);
        assert_eq!(s.limits.max_duration_s, 60.0);
        assert_eq!(s.limits.max_channels, 2);
        // An explicit threshold is used as is: no adaptation to the floor.
        assert_eq!((s.silence.threshold_db, s.silence.adaptive), (-40.0, false));
        assert_eq!(s.highpass_hz, 0.0);
        assert!(s.denoise);
        assert_eq!(s.encoder, EncoderPath::Single);
    }

    #[test]
    fn listener_flags_reach_settings() {
        let cli = Cli::parse_from([
            "podstitch",
            "stitch",
            "--call",
            "a",
            "--response",
            "b",
            "--bumper-loudness",
            "-2.5",
            "--chapter-title",
            "answer=The answer",
            "--title",
            "Episode 1",
            "--year",
            "2026",
            "--cover",
            "c.png",
        ]);
        let Command::Stitch(args) = cli.command else {
            panic!("not stitch")
        };
        let s = args.settings.to_settings();
        assert_eq!(s.bumper_loudness, BumperLoudness::Offset(-2.5));
        assert_eq!(s.chapter_titles[3], "The answer");
        assert_eq!(s.chapter_titles[0], "Intro");
        assert_eq!(s.tags.title.as_deref(), Some("Episode 1"));
        assert_eq!(s.tags.year, Some(2026));
        assert_eq!(s.tags.cover, Some(PathBuf::from("c.png")));
        let keep = Cli::try_parse_from([
            "podstitch",
            "stitch",
            "--call",
            "a",
            "--response",
            "b",
            "--bumper-loudness",
            "keep",
        ])
        .unwrap();
        let Command::Stitch(args) = keep.command else {
            panic!("not stitch")
        };
        assert_eq!(
            args.settings.to_settings().bumper_loudness,
            BumperLoudness::Keep
        );
        for bad in [
            ["--year", "26"],
            ["--bumper-loudness", "loud"],
            ["--chapter-title", "middle=x"],
        ] {
            let err = Cli::try_parse_from(
                ["podstitch", "stitch", "--call", "a", "--response", "b"]
                    .into_iter()
                    .chain(bad),
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains(bad[1]), "{err}");
        }
    }
}
