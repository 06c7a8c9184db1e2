//! Settings of the whole pipeline, with the defaults of the product.

use std::path::PathBuf;

use crate::dsp::silence::SilenceSettings;
use crate::encode::id3::{image_mime, Cover};
use crate::encode::{Mp3Format, Mp3Options};
use crate::error::{Error, Result};
use crate::loudness::LoudnessSettings;

/// Everything the pipeline can be told. `Settings::default()` is the product's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The common sample rate all audio is converted to, in Hz (default 44100).
    pub sample_rate: u32,
    /// Cut-off of the high-pass applied to the recordings (not the bumpers)
    /// before any decision, Hz (default 60; 0 turns it off): removes DC
    /// offsets and rumble (see ARCHITECTURE.md).
    pub highpass_hz: f64,
    /// Suppress steady background noise in the recordings (not the bumpers)
    /// with RNNoise, after the high-pass and before any decision (default
    /// false; see the README, "Noise suppression").
    pub denoise: bool,
    /// Silence trimming and pause shortening.
    pub silence: SilenceSettings,
    /// Loudness targets.
    pub loudness: LoudnessSettings,
    /// Length of each of the four crossfades, in seconds (default 1.0).
    pub crossfade_s: f64,
    /// The episode's MP3 (stereo; default 128 kb/s, quality 3).
    pub episode_mp3: Mp3Options,
    /// The two segments' MP3 (mono; default 64 kb/s, quality 3).
    pub segment_mp3: Mp3Options,
    /// Decode every finished MP3 again to measure its loudness, true peak and
    /// length, and re-render with more headroom when the true peak is over
    /// the ceiling (default true). Without it the report's figures are those
    /// of the audio before encoding.
    pub verify: bool,
    /// How each MP3 is encoded: one encoder per output, or in chunks on
    /// every CPU (default [`EncoderPath::Auto`]: by the CPUs the process may use).
    pub encoder: EncoderPath,
    /// Where the private temporary directory is made (default: the system's).
    pub temp_dir: Option<PathBuf>,
    /// Bounds on the inputs, checked before the expensive work where possible.
    pub limits: Limits,
    /// Waveform data of the episode for a web player, in points per second
    /// (`None`, the default: none is made; see [`Report::episode_waveform`](crate::Report::episode_waveform)).
    pub waveform_pixels_per_second: Option<u32>,
    /// The bumpers' loudness in the episode (default: gained to the target).
    pub bumper_loudness: BumperLoudness,
    /// Titles of the episode's five chapters, in order: intro, caller,
    /// interstitial, response, outro (default "Intro", "Question",
    /// "Interlude", "Answer", "Outro").
    pub chapter_titles: [String; 5],
    /// Title, artist, album, year, comment and cover of the outputs.
    pub tags: Tags,
}

/// How each MP3 is encoded. Both paths make a valid gapless MP3 of the same
/// audio; their bytes differ (the chunked path splices several encoders'
/// frames), so a golden test of one does not test the other.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EncoderPath {
    /// The path measured cheapest: today [`Chunked`](EncoderPath::Chunked)
    /// on every machine. Under a quota of half a CPU (where the pool has
    /// one thread) the single encoder cost the same CPU time as the
    /// chunked path within the machine's noise (README, "At production
    /// size"), so `Auto` keeps the path whose bytes the goldens test.
    #[default]
    Auto,
    /// One LAME encoder per output, on the thread that renders it (the
    /// outputs one after the other): no chunk pre-roll encoded twice and
    /// about 36 MiB less memory, but not less CPU time as measured.
    Single,
    /// Each output cut into 20 s chunks encoded on a pool of one thread per
    /// CPU and spliced at clean frames: the shortest wall time on several
    /// cores.
    Chunked,
}

impl EncoderPath {
    /// `Single` or `Chunked`: what `Auto` stands for.
    pub fn resolved(self) -> EncoderPath {
        match self {
            EncoderPath::Auto => EncoderPath::Chunked,
            path => path,
        }
    }
}

/// How loud the bumpers play in the episode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BumperLoudness {
    /// As they are mastered (what the old FFmpeg graph did).
    Keep,
    /// Each measured and gained to the target loudness plus this many LU
    /// (default 0: as loud as the voices). With 0 the three bumpers are
    /// also trimmed together, by at most 1 dB, so that the whole episode
    /// lands on the target (see `balance.rs`).
    Offset(f64),
}

impl Default for BumperLoudness {
    fn default() -> Self {
        BumperLoudness::Offset(0.0)
    }
}

/// Largest cover image accepted, in bytes (10 MiB). Podcast directories ask
/// for far less (a 3000 × 3000 JPEG is typically under 1 MB); a larger file
/// is most likely the wrong one.
pub(crate) const MAX_COVER_BYTES: u64 = 10 << 20;

/// ID3 tags of the outputs; every one is optional (`None`: not written).
/// The episode gets all of them; the segments get the artist, album and
/// year, and the title followed by their chapter's title (no comment and
/// no cover: they go to a transcriber).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tags {
    /// `TIT2`: the episode's title.
    pub title: Option<String>,
    /// `TPE1`: the artist (the host or the show).
    pub artist: Option<String>,
    /// `TALB`: the album (the show).
    pub album: Option<String>,
    /// `TDRC`: the year of recording, 1000–9999.
    pub year: Option<u16>,
    /// `COMM`: a comment (language `eng`).
    pub comment: Option<String>,
    /// `APIC`: a JPEG or PNG file of at most 10 MiB, the front cover.
    pub cover: Option<PathBuf>,
}

/// Bounds on what an input may be. Each is checked as early as it can be
/// known: the size before anything is read, the channel count and rate when
/// the first packet is decoded, the duration from the container's own count
/// when it declares one (not WAV, whose size field is often a placeholder)
/// and otherwise while decoding, as soon as it is passed. Every error names
/// the setting and its flag.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest input file accepted, in bytes (default 2 GiB; also the job's
    /// download cap).
    pub max_input_bytes: u64,
    /// Longest recording accepted, in seconds of decoded audio (default 3 h).
    pub max_duration_s: f64,
    /// Longest bumper accepted, in seconds (default 120 s: a bumper is a
    /// short jingle, and one that is not was most likely swapped for a
    /// recording by mistake).
    pub max_bumper_duration_s: f64,
    /// Most channels an input may have (default 8).
    pub max_channels: usize,
    /// Lowest input sample rate accepted, Hz (default 8000).
    pub min_sample_rate: u32,
    /// Highest input sample rate accepted, Hz (default 192000).
    pub max_sample_rate: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: 2 << 30,
            max_duration_s: 3.0 * 3600.0,
            max_bumper_duration_s: 120.0,
            max_channels: 8,
            min_sample_rate: 8000,
            max_sample_rate: 192_000,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            sample_rate: 44100,
            highpass_hz: 60.0,
            denoise: false,
            silence: SilenceSettings::default(),
            loudness: LoudnessSettings::default(),
            crossfade_s: 1.0,
            episode_mp3: Mp3Options {
                bitrate_kbps: 128,
                quality: 3,
            },
            segment_mp3: Mp3Options {
                bitrate_kbps: 64,
                quality: 3,
            },
            verify: true,
            encoder: EncoderPath::Auto,
            temp_dir: None,
            limits: Limits::default(),
            waveform_pixels_per_second: None,
            bumper_loudness: BumperLoudness::default(),
            chapter_titles: DEFAULT_CHAPTER_TITLES.map(String::from),
            tags: Tags::default(),
        }
    }
}

/// The default chapter titles: intro, caller, interstitial, response, outro.
pub(crate) const DEFAULT_CHAPTER_TITLES: [&str; 5] =
    ["Intro", "Question", "Interlude", "Answer", "Outro"];

/// Reads the cover at `path`: at most [`MAX_COVER_BYTES`], JPEG or PNG.
/// Errors name the file, what is wrong and what would fix it.
pub(crate) fn load_cover(path: &std::path::Path) -> Result<Cover> {
    let name = format!("cover image ({})", path.display());
    let bad = |what: String| Error::Settings(format!("{name}: {what}"));
    let len = std::fs::metadata(path)
        .map_err(|e| {
            bad(format!(
                "cannot read it ({e}); check the path given to --cover / PODSTITCH_COVER"
            ))
        })?
        .len();
    if len > MAX_COVER_BYTES {
        return Err(bad(format!(
            "{len} bytes, more than the {MAX_COVER_BYTES}-byte limit for a cover; use a smaller JPEG or PNG (podcast covers are usually under 1 MB)"
        )));
    }
    let data = std::fs::read(path).map_err(|e| {
        bad(format!(
            "cannot read it ({e}); check the path given to --cover / PODSTITCH_COVER"
        ))
    })?;
    let Some(mime) = image_mime(&data) else {
        let head: Vec<String> = data.iter().take(4).map(|b| format!("{b:02x}")).collect();
        return Err(bad(format!(
            "not a JPEG or PNG image (it starts with bytes {}); convert it to JPEG or PNG",
            if head.is_empty() {
                "none: it is empty".to_string()
            } else {
                head.join(" ")
            }
        )));
    };
    Ok(Cover { mime, data })
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::Settings(what()))
    }
}

impl Settings {
    /// Checks every value against its allowed range, the MP3 formats by the
    /// encoder's own rules, and the cover by reading it.
    pub fn validate(&self) -> Result<()> {
        self.validate_and_load_cover().map(drop)
    }

    /// [`Settings::validate`], returning the cover it read (so `stitch`
    /// reads it once).
    pub(crate) fn validate_and_load_cover(&self) -> Result<Option<Cover>> {
        // The MP3 formats first: the sample rate, each bitrate and quality,
        // and whether a frame holds the gapless Info tag, checked by the
        // encoder's own rules, so nothing fails after the first pass.
        for (name, options, channels) in [
            (
                "episode MP3 (--episode-bitrate, --quality)",
                &self.episode_mp3,
                2,
            ),
            (
                "segment MP3 (--segment-bitrate, --quality)",
                &self.segment_mp3,
                1,
            ),
        ] {
            crate::encode::check_format(
                name,
                &Mp3Format {
                    options: options.clone(),
                    channels,
                    sample_rate: self.sample_rate,
                },
            )?;
        }
        check(
            self.highpass_hz == 0.0 || (10.0..=500.0).contains(&self.highpass_hz),
            || {
                format!(
                    "high-pass cut-off {} Hz must be 0 (off) or within 10..500",
                    self.highpass_hz
                )
            },
        )?;
        let s = &self.silence;
        check((-100.0..=0.0).contains(&s.adapt_above_db), || {
            format!(
                "noise-floor limit {} dBFS must be within -100..0",
                s.adapt_above_db
            )
        })?;
        check((0.0..=40.0).contains(&s.floor_margin_db), || {
            format!(
                "noise-floor margin {} dB must be within 0..40",
                s.floor_margin_db
            )
        })?;
        check((-120.0..=0.0).contains(&s.threshold_db), || {
            format!(
                "silence threshold {} dBFS must be within -120..0",
                s.threshold_db
            )
        })?;
        check((1.0..=1000.0).contains(&s.window_ms), || {
            format!("silence window {} ms must be within 1..1000", s.window_ms)
        })?;
        check((0.05..=600.0).contains(&s.max_pause_s), || {
            format!("maximum pause {} s must be within 0.05..600", s.max_pause_s)
        })?;
        check(
            s.fade_ms >= 0.0 && s.fade_ms / 1000.0 <= s.max_pause_s / 2.0,
            || {
                format!(
                    "cut fade {} ms must be between 0 and half the maximum pause",
                    s.fade_ms
                )
            },
        )?;
        let l = &self.loudness;
        check((-70.0..=0.0).contains(&l.integrated_lufs), || {
            format!(
                "target loudness {} LUFS must be within -70..0",
                l.integrated_lufs
            )
        })?;
        check((1.0..=50.0).contains(&l.lra_lu), || {
            format!("loudness range {} LU must be within 1..50", l.lra_lu)
        })?;
        check((-30.0..=0.0).contains(&l.true_peak_dbtp), || {
            format!(
                "true-peak ceiling {} dBTP must be within -30..0",
                l.true_peak_dbtp
            )
        })?;
        check((0.0..=12.0).contains(&l.mp3_headroom_db), || {
            format!("MP3 headroom {} dB must be within 0..12", l.mp3_headroom_db)
        })?;
        check((0.0..=30.0).contains(&l.leveller_max_db), || {
            format!(
                "leveller range {} dB must be within 0..30",
                l.leveller_max_db
            )
        })?;
        check((0.0..=30.0).contains(&self.crossfade_s), || {
            format!("crossfade {} s must be within 0..30", self.crossfade_s)
        })?;
        if let Some(pps) = self.waveform_pixels_per_second {
            check((1..=1000).contains(&pps), || {
                format!("waveform resolution {pps} points per second must be within 1..1000")
            })?;
        }
        let lim = &self.limits;
        check(lim.max_input_bytes > 0, || {
            "the input size limit must be at least 1 byte".to_string()
        })?;
        check(
            lim.max_duration_s > 0.0 && lim.max_duration_s <= 86_400.0,
            || {
                format!(
                    "the duration limit {} s must be within 0..86400",
                    lim.max_duration_s
                )
            },
        )?;
        check(
            lim.max_bumper_duration_s > 0.0 && lim.max_bumper_duration_s <= 3600.0,
            || {
                format!(
                    "the bumper duration limit {} s must be within 0..3600",
                    lim.max_bumper_duration_s
                )
            },
        )?;
        check((1..=255).contains(&lim.max_channels), || {
            format!(
                "the channel limit {} must be within 1..255",
                lim.max_channels
            )
        })?;
        check(
            lim.min_sample_rate >= 1000
                && lim.min_sample_rate <= lim.max_sample_rate
                && lim.max_sample_rate <= 768_000,
            || {
                format!(
                    "the sample rate bounds {}..{} Hz must be ordered and within 1000..768000",
                    lim.min_sample_rate, lim.max_sample_rate
                )
            },
        )?;
        if let BumperLoudness::Offset(o) = self.bumper_loudness {
            check(o.is_finite() && (-30.0..=10.0).contains(&o), || {
                format!("bumper loudness offset {o} LU must be within -30..10 (or keep)")
            })?;
        }
        for (i, t) in self.chapter_titles.iter().enumerate() {
            check(!t.is_empty() && !t.contains('\0'), || {
                format!(
                    "chapter title {} ({:?}) must be non-empty text without NUL characters",
                    i + 1,
                    t
                )
            })?;
        }
        let tags = &self.tags;
        for (what, v) in [
            ("title", &tags.title),
            ("artist", &tags.artist),
            ("album", &tags.album),
            ("comment", &tags.comment),
        ] {
            if let Some(v) = v {
                check(!v.contains('\0') && v.len() <= 65_536, || {
                    format!("the {what} must be text of at most 64 KiB without NUL characters")
                })?;
            }
        }
        if let Some(y) = tags.year {
            check((1000..=9999).contains(&y), || {
                format!("year {y} must be a four-digit year such as 2026")
            })?;
        }
        tags.cover.as_deref().map(load_cover).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        Settings::default().validate().unwrap();
        let s = Settings {
            sample_rate: 44000,
            ..Settings::default()
        };
        assert!(s.validate().unwrap_err().to_string().contains("44000 Hz"));
        let mut s = Settings::default();
        s.loudness.true_peak_dbtp = 1.0;
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("settings: true-peak ceiling"));
    }

    /// The MP3 formats are checked by the encoder's rules, so a setting the
    /// encoder would refuse after the first pass is refused here.
    #[test]
    fn mp3_formats_are_checked_by_the_encoders_rules() {
        let mut s = Settings::default();
        s.segment_mp3.bitrate_kbps = 32; // mono 44.1 kHz: no room for the Info tag
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("segment MP3") && e.contains("Info tag"), "{e}");
        let mut s = Settings::default();
        s.episode_mp3.bitrate_kbps = 56; // not a bitrate LAME takes here
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("episode MP3") && e.contains("56 kb/s"), "{e}");
        let mut s = Settings::default();
        s.segment_mp3.quality = 10;
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("quality"), "{e}");
        let mut s = Settings::default();
        s.segment_mp3.bitrate_kbps = 48; // 48 kb/s mono 44.1 kHz: 156 bytes < 177
        assert!(s.validate().is_err());
        s.segment_mp3.bitrate_kbps = 64;
        s.validate().unwrap();
    }
}
