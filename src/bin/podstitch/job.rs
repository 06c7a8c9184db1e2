//! The sandbox job: the environment contract of the one-shot command that a
//! queue worker runs, end to end: check the configuration, download both
//! recordings, stitch, upload the three MP3s, report.
//!
//! The process-level parts (signals, the overall deadline, exit codes) live
//! in the binary; this module does the work and classifies every failure so
//! the binary can map it to its exit status.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use reqwest::Url;

use podstitch::{stitch_to_dir, Bumpers, Observer, Settings, Waveform};

use crate::http::{parse_url, redact, Http, HttpSettings};
use crate::{OUTPUT_FILES, WAVEFORM_FILE};

/// The required variables, in the order they are checked.
pub const REQUIRED_ENV: [&str; 7] = [
    "CALL_KENT_AUDIO_DRAFT_ID",
    "CALL_KENT_AUDIO_ATTEMPT",
    "CALL_AUDIO_URL",
    "RESPONSE_AUDIO_URL",
    "EPISODE_UPLOAD_URL",
    "CALLER_SEGMENT_UPLOAD_URL",
    "RESPONSE_SEGMENT_UPLOAD_URL",
];
/// The optional variable naming the bumpers' directory.
pub const ASSETS_ENV: &str = "CALL_KENT_AUDIO_ASSETS_DIR";
/// The bumpers' directory when [`ASSETS_ENV`] is not set.
pub const DEFAULT_ASSETS_DIR: &str = "/opt/call-kent-audio/assets";

/// Optional variables with the episode's tags; absent or empty means none,
/// and a `stitch` flag (`--title`, …) given to `job` wins.
pub const TAG_ENV: [&str; 6] = [
    "PODSTITCH_TITLE",
    "PODSTITCH_ARTIST",
    "PODSTITCH_ALBUM",
    "PODSTITCH_YEAR",
    "PODSTITCH_COMMENT",
    "PODSTITCH_COVER",
];

/// Fills the tags not given as flags from [`TAG_ENV`]; checks the year and
/// the cover (JPEG or PNG, size) before any download.
fn tags_from_env(
    settings: &mut Settings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), JobError> {
    let get = |i: usize| env(TAG_ENV[i]).filter(|v| !v.is_empty());
    let t = &mut settings.tags;
    t.title = t.title.take().or_else(|| get(0));
    t.artist = t.artist.take().or_else(|| get(1));
    t.album = t.album.take().or_else(|| get(2));
    if t.year.is_none() {
        if let Some(v) = get(3) {
            let y = v
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|y| (1000..=9999).contains(y));
            t.year = Some(y.ok_or_else(|| {
                fail(
                    FailureKind::Config,
                    format!("{}: {v:?} is not a four-digit year such as 2026; set it to one or unset it", TAG_ENV[3]),
                )
            })?);
        }
    }
    t.comment = t.comment.take().or_else(|| get(4));
    t.cover = t.cover.take().or_else(|| get(5).map(PathBuf::from));
    // The cover itself is checked with the other settings (`validate`).
    Ok(())
}

/// Values given as flags; each wins over its environment variable.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// Values for [`REQUIRED_ENV`], in the same order.
    pub required: [Option<String>; 7],
    /// The bumpers' directory.
    pub assets_dir: Option<PathBuf>,
    /// The presigned PUT of the episode's waveform data ([`WAVEFORM_ENV`]).
    pub waveform_url: Option<String>,
}

/// The Content-Type of the MP3 uploads (part of their presigned signature).
const MP3_TYPE: &str = "audio/mpeg";
/// The Content-Type of the waveform upload.
const JSON_TYPE: &str = "application/json";

/// The optional variable with the presigned PUT of the episode's waveform
/// data (audiowaveform JSON); absent or empty: no waveform is made.
pub const WAVEFORM_ENV: &str = "EPISODE_WAVEFORM_UPLOAD_URL";

/// Why the job failed; decides the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A variable, flag, URL or asset is missing or invalid (exit 1).
    Config,
    /// A download failed (exit 3).
    Download,
    /// A recording or bumper could not be decoded or processed (exit 4).
    Audio,
    /// An upload failed (exit 5).
    Upload,
    /// The overall deadline passed (exit 6).
    Deadline,
    /// The machine failed us: temporary files, threads (exit 7).
    Internal,
}

impl FailureKind {
    /// The process exit status for this kind of failure.
    pub fn exit_code(self) -> u8 {
        match self {
            FailureKind::Config => 1,
            FailureKind::Download => 3,
            FailureKind::Audio => 4,
            FailureKind::Upload => 5,
            FailureKind::Deadline => 6,
            FailureKind::Internal => 7,
        }
    }
}

/// A failed job: what kind of failure, and the one line to print.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct JobError {
    /// The class of failure.
    pub kind: FailureKind,
    /// One line, naming what failed; never a URL's query string.
    pub message: String,
}

fn fail(kind: FailureKind, message: impl Into<String>) -> JobError {
    JobError {
        kind,
        message: message.into(),
    }
}

/// A checked configuration, ready to run.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// The draft's id (for logs).
    pub draft_id: String,
    /// The attempt number (for logs).
    pub attempt: String,
    /// Presigned GET of the caller's recording.
    pub call_url: Url,
    /// Presigned GET of the response recording.
    pub response_url: Url,
    /// Presigned PUTs of the episode, caller segment and response segment.
    pub upload_urls: [Url; 3],
    /// Presigned PUT of the episode's waveform data, when one is wanted.
    pub waveform_url: Option<Url>,
    /// Directory of the three bumpers.
    pub assets_dir: PathBuf,
    /// Transfers.
    pub http: HttpSettings,
    /// The audio pipeline.
    pub settings: Settings,
    /// Time allowed for the whole job.
    pub deadline: Duration,
}

/// Checks the configuration as the contract says: the required variables in
/// order (a flag in `over` wins; an empty value counts as missing), then the
/// URLs, then the three bumper files. `env` reads the environment.
pub fn configure(
    over: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
    http: HttpSettings,
    mut settings: Settings,
    deadline: Duration,
) -> Result<JobConfig, JobError> {
    let mut values: Vec<String> = Vec::with_capacity(REQUIRED_ENV.len());
    for (name, flag) in REQUIRED_ENV.iter().zip(&over.required) {
        let v = flag.clone().or_else(|| env(name)).filter(|v| !v.is_empty());
        match v {
            Some(v) => values.push(v),
            None => {
                return Err(fail(
                    FailureKind::Config,
                    format!("Missing required env var: {name}"),
                ))
            }
        }
    }
    let url = |i: usize| {
        parse_url(REQUIRED_ENV[i], &values[i]).map_err(|e| fail(FailureKind::Config, e.0))
    };
    let (call_url, response_url) = (url(2)?, url(3)?);
    let upload_urls = [url(4)?, url(5)?, url(6)?];
    let waveform_url = over
        .waveform_url
        .clone()
        .or_else(|| env(WAVEFORM_ENV))
        .filter(|v| !v.is_empty())
        .map(|v| parse_url(WAVEFORM_ENV, &v).map_err(|e| fail(FailureKind::Config, e.0)))
        .transpose()?;
    if waveform_url.is_none() {
        settings.waveform_pixels_per_second = None;
    } else if settings.waveform_pixels_per_second.is_none() {
        settings.waveform_pixels_per_second = Some(Waveform::DEFAULT_PIXELS_PER_SECOND);
    }
    let assets_dir = over
        .assets_dir
        .clone()
        .or_else(|| env(ASSETS_ENV).filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ASSETS_DIR));
    // The same check `stitch` makes, with the contract's message.
    Bumpers::from_dir(&assets_dir).map_err(|e| fail(FailureKind::Config, e.to_string()))?;
    tags_from_env(&mut settings, env)?;
    // Every setting, the MP3 formats and the cover included, before any
    // download.
    settings
        .validate()
        .map_err(|e| fail(FailureKind::Config, e.to_string()))?;
    Ok(JobConfig {
        draft_id: values[0].clone(),
        attempt: values[1].clone(),
        call_url,
        response_url,
        upload_urls,
        waveform_url,
        assets_dir,
        http,
        settings,
        deadline,
    })
}

fn join<T>(h: thread::ScopedJoinHandle<'_, Result<T, JobError>>) -> Result<T, JobError> {
    h.join().unwrap_or_else(|_| {
        Err(fail(
            FailureKind::Internal,
            "internal error: a worker thread panicked",
        ))
    })
}

/// Runs the job in the (private, empty) directory `work`, which the caller
/// removes afterwards. Returns the JSON object to print: the stitch report
/// with each size equal to the bytes uploaded, and the time of each stage.
///
/// `uploading` is set once the first upload begins, so that whoever stops
/// the job at its deadline can say whether anything was sent.
pub fn run(
    cfg: &JobConfig,
    work: &Path,
    started: Instant,
    obs: &dyn Observer,
    uploading: &AtomicBool,
) -> Result<serde_json::Value, JobError> {
    let deadline = started + cfg.deadline;
    let http = Http::new(cfg.http.clone()).map_err(|e| fail(FailureKind::Internal, e.0))?;
    obs.log(&format!(
        "Downloading Call Kent audio inputs for draft {} (attempt {})",
        cfg.draft_id, cfg.attempt
    ));
    let t = Instant::now();
    let call = work.join("call.input");
    let response = work.join("response.input");
    let (a, b) = thread::scope(|s| {
        let a = s.spawn(|| {
            http.download("caller recording download", &cfg.call_url, &call, deadline)
                .map_err(|e| fail(FailureKind::Download, e.0))
        });
        let b = http
            .download(
                "response recording download",
                &cfg.response_url,
                &response,
                deadline,
            )
            .map_err(|e| fail(FailureKind::Download, e.0));
        (join(a), b)
    });
    let (call_bytes, response_bytes) = (a?, b?);
    let download_s = t.elapsed().as_secs_f64();
    obs.log(&format!(
        "download: {download_s:.2} s (caller {call_bytes} bytes, response {response_bytes} bytes)"
    ));

    obs.log("Running FFmpeg stitching pipeline");
    let t = Instant::now();
    let mut settings = cfg.settings.clone();
    settings.temp_dir = Some(work.to_path_buf());
    let out = work.join("out");
    let bumpers =
        Bumpers::from_dir(&cfg.assets_dir).map_err(|e| fail(FailureKind::Config, e.to_string()))?;
    // Errors name the recordings by their (redacted) URLs, not by the
    // temporary files they were downloaded to.
    let readable = |e: podstitch::Error| {
        let msg = e
            .to_string()
            .replace(&call.display().to_string(), &redact(&cfg.call_url))
            .replace(&response.display().to_string(), &redact(&cfg.response_url));
        fail(FailureKind::Audio, msg)
    };
    let report =
        stitch_to_dir(&call, &response, bumpers, &out, &settings, obs).map_err(readable)?;
    let stitch_s = t.elapsed().as_secs_f64();
    obs.log(&format!("stitch: {stitch_s:.2} s"));
    if Instant::now() >= deadline {
        return Err(fail(
            FailureKind::Deadline,
            format!(
                "the job deadline of {} s passed before the upload; stopping rather than uploading to URLs that may have expired",
                cfg.deadline.as_secs()
            ),
        ));
    }

    obs.log("Uploading stitched audio outputs");
    uploading.store(true, Ordering::SeqCst);
    let t = Instant::now();
    let names = [
        "episode upload",
        "caller segment upload",
        "response segment upload",
    ];
    let files = OUTPUT_FILES.map(|f| out.join(f));
    // The waveform goes with the MP3s, under the same all-or-nothing rule.
    let waveform = match (&cfg.waveform_url, &report.episode_waveform) {
        (Some(url), Some(w)) => {
            let path = out.join(WAVEFORM_FILE);
            std::fs::write(&path, w.to_json()).map_err(|e| {
                fail(
                    FailureKind::Internal,
                    format!("{}: write: {e}", path.display()),
                )
            })?;
            Some((url, path))
        }
        _ => None,
    };
    let (sizes, waveform_size) = thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let (http, files, names) = (&http, &files, &names);
                s.spawn(move || {
                    http.upload(names[i], &cfg.upload_urls[i], &files[i], MP3_TYPE, deadline)
                        .map_err(|e| fail(FailureKind::Upload, e.0))
                })
            })
            .collect();
        let wave = waveform.as_ref().map(|(url, path)| {
            let http = &http;
            s.spawn(move || {
                http.upload("episode waveform upload", url, path, JSON_TYPE, deadline)
                    .map_err(|e| fail(FailureKind::Upload, e.0))
            })
        });
        let sizes = handles
            .into_iter()
            .map(join)
            .collect::<Result<Vec<u64>, JobError>>();
        let wave = wave.map(join).transpose();
        Ok::<_, JobError>((sizes?, wave?))
    })?;
    let upload_s = t.elapsed().as_secs_f64();
    obs.log(&format!("upload: {upload_s:.2} s"));

    let expected = [
        report.episode_audio_size,
        report.caller_segment_audio_size,
        report.response_segment_audio_size,
    ];
    if sizes != expected {
        return Err(fail(
            FailureKind::Internal,
            format!("uploaded sizes {sizes:?} differ from the files written {expected:?}"),
        ));
    }
    let mut json =
        serde_json::to_value(&report).map_err(|e| fail(FailureKind::Internal, e.to_string()))?;
    if let (Some(n), Some(o)) = (waveform_size, json.as_object_mut()) {
        o.insert("episodeWaveformSize".into(), n.into());
    }
    if let Some(t) = json.get_mut("timings").and_then(|t| t.as_object_mut()) {
        t.insert("downloadS".into(), download_s.into());
        t.insert("stitchS".into(), stitch_s.into());
        t.insert("uploadS".into(), upload_s.into());
        t.insert("totalS".into(), started.elapsed().as_secs_f64().into());
    }
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn tag_variables_fill_what_flags_left_and_absent_means_none() {
        let mut s = Settings::default();
        s.tags.title = Some("from the flag".into());
        let env = env_of(&[
            ("PODSTITCH_TITLE", "from the environment"),
            ("PODSTITCH_ARTIST", "Kent"),
            ("PODSTITCH_YEAR", "2026"),
            ("PODSTITCH_COMMENT", ""),
        ]);
        tags_from_env(&mut s, &env).unwrap();
        assert_eq!(s.tags.title.as_deref(), Some("from the flag"));
        assert_eq!(s.tags.artist.as_deref(), Some("Kent"));
        assert_eq!(s.tags.year, Some(2026));
        assert_eq!(s.tags.album, None);
        assert_eq!(s.tags.comment, None, "empty is none");
        assert_eq!(s.tags.cover, None);
    }

    #[test]
    fn a_bad_year_or_cover_in_the_environment_is_a_configuration_error() {
        let mut s = Settings::default();
        let err = tags_from_env(&mut s, &env_of(&[("PODSTITCH_YEAR", "next year")])).unwrap_err();
        assert_eq!(err.kind, FailureKind::Config);
        assert!(
            err.message
                .starts_with("PODSTITCH_YEAR: \"next year\" is not a four-digit year"),
            "{}",
            err.message
        );
        // The cover is read with the other settings (`configure` maps the
        // error to a configuration failure).
        let mut s = Settings::default();
        tags_from_env(
            &mut s,
            &env_of(&[("PODSTITCH_COVER", "/nonexistent/cover.jpg")]),
        )
        .unwrap();
        let err = s.validate().unwrap_err().to_string();
        assert!(
            err.contains("cover image (/nonexistent/cover.jpg)"),
            "{err}"
        );
    }
}
