//! The pipeline, top to bottom: [`stitch`].
//!
//! 1. Bumpers ([`bumpers`]): decoded once (they are short), converted to the
//!    common rate, measured and spooled.
//! 2. First pass ([`recording`]), both recordings in parallel: decode →
//!    high-pass → resample, spooled untrimmed while the downmix and the
//!    noise floor are analysed (see [`crate::dsp::front`]); then that spool
//!    → downmix → trim silence at the chosen threshold, spooled again while
//!    the loudness meter measures it. The recording is then *analysed*.
//! 3. Calibration ([`calibrate`]): one linear gain, or the leveller's curve
//!    when the loudness range is too wide, found through the limiter so the
//!    *limited* signal lands on the target. The recording is then
//!    *calibrated* at the render's ceiling. The caller's segment is rendered
//!    as soon as the caller is calibrated, while the response is still being
//!    analysed.
//! 4. Second pass ([`render`]): the bumpers' gains are set so the episode
//!    lands on the target (`bumpers.rs`, `balance.rs`); then the response's
//!    segment (spool → gain → mono MP3) and the episode ([`episode`]:
//!    bumpers and the two calibrated recordings → crossfade mixer → stereo
//!    limiter → stereo MP3, with a chapter per part) are encoded side by
//!    side.
//! 5. Verification ([`verify`]): each MP3 is decoded and measured while it is
//!    written; if a true peak is over the ceiling, steps 3–4 run again with
//!    more headroom (the recordings are not analysed again).

pub(crate) mod balance;
mod bumpers;
pub(crate) mod calibrate;
mod control;
mod episode;
mod recording;
mod render;
pub(crate) mod spool;
mod verify;

use std::path::Path;
use std::thread;
use std::time::Instant;

use crate::audio::units::frames_to_secs as secs;
use crate::encode::chunked::EncodePool;
use crate::encode::id3::{Chapter, Tag};
use crate::error::{Error, Result};
use crate::io::{remove_quietly, Bumpers, FileSink, Input, Outputs, Sink};
use crate::pipeline::bumpers::{bumper_gains, load_bumpers, Bumper, BumperGains};
use crate::pipeline::calibrate::Calibrated;
use crate::pipeline::control::{first_error, join, Halt};
use crate::pipeline::episode::{
    chapters, episode_source, episode_tag, layout, part_spans, segment_tag, Layout,
};
use crate::pipeline::recording::Recording;
use crate::pipeline::render::{Rendered, Renderer};
use crate::pipeline::spool::TempDir;
use crate::report::waveform::Waveform;
use crate::report::{BumperReport, Observer, Report, Timings};
use crate::settings::{EncoderPath, Settings};

/// Renders at most this many times: an output whose decoded true peak is
/// over the ceiling is rendered again with more headroom (MP3 encoding can
/// raise peaks by more than the headroom foresaw).
const MAX_RENDERS: u32 = 3;

/// Headroom added beyond what a decoded output went over, dB: enough that
/// the next render does not miss again by a rounding.
const EXTRA_HEADROOM_DB: f64 = 0.2;

/// Runs the whole pipeline: `call` and `response` with `bumpers` into `outputs`.
///
/// ```no_run
/// use podstitch::{stitch, Bumpers, Input, Outputs, Quiet, Settings};
/// let mut out = Outputs::in_memory();
/// let report = stitch(
///     Input::Path("call.webm".into()),
///     Input::Path("response.ogg".into()),
///     Bumpers::embedded(),
///     &mut out,
///     &Settings::default(),
///     &Quiet,
/// )?;
/// assert_eq!(report.episode_audio_size as usize, out.episode.get_ref().len());
/// # Ok::<(), podstitch::Error>(())
/// ```
pub fn stitch<S: Sink>(
    call: Input,
    response: Input,
    bumpers: Bumpers,
    outputs: &mut Outputs<S>,
    settings: &Settings,
    obs: &dyn Observer,
) -> Result<Report> {
    // Every setting and the cover, before any work.
    let cover = settings.validate_and_load_cover()?;
    let tmp = TempDir::new(settings.temp_dir.as_deref())
        .map_err(|e| Error::io("temporary directory", "create", e))?;
    let bumpers = load_bumpers(bumpers, settings, tmp.path())?;
    // With more than one CPU, every output is cut into chunks encoded on
    // all of them; with one, each has a single encoder (no pre-roll
    // encoded twice, no hand-offs).
    let pool = match settings.encoder.resolved() {
        EncoderPath::Chunked => Some(EncodePool::with_available_parallelism()?),
        _ => None,
    };
    obs.log(&format!(
        "encoder: {}",
        pool.as_ref().map_or("one per output".to_string(), |p| {
            format!("chunked, on {} thread(s)", p.threads())
        })
    ));
    let renderer = Renderer {
        settings,
        pool: pool.as_ref(),
        obs,
    };
    let recording = |what: &str, input: Input| {
        let subject = format!("{what} recording ({})", input.describe());
        Recording::new(subject, input, tmp.path().join(format!("{what}.f32")))
    };
    let mut voices = [recording("caller", call), recording("response", response)];
    let segment_tags = [segment_tag(settings, 1), segment_tag(settings, 3)];
    let mut timings = Timings::default();
    // The episode's layout, chapters and tag, once the lengths are known.
    let mut shape: Option<(Layout, Vec<Chapter>, Tag)> = None;
    let tp = settings.loudness.true_peak_dbtp;
    let mut headroom = settings.loudness.mp3_headroom_db;
    let mut render = 1;
    loop {
        let ceiling = tp - headroom;
        let seg_out = (&mut outputs.caller_segment, &segment_tags[0]);
        let (cal, caller_segment) =
            calibrate_both(&mut voices, ceiling, seg_out, &renderer, &mut timings)?;
        let (plan, chapters, ep_tag) = shape.get_or_insert_with(|| {
            let plan = layout(
                &bumpers,
                cal.each_ref().map(Calibrated::frames),
                settings,
                obs,
            );
            let chapters = chapters(&plan, &settings.chapter_titles, settings.sample_rate);
            let tag = episode_tag(settings, cover.as_ref(), &chapters);
            (plan, chapters, tag)
        });
        let voice_refs = [&cal[0], &cal[1]];
        let gains = bumper_gains(&bumpers, voice_refs, plan, (settings, ceiling), obs)?;
        let t = Instant::now();
        let episode = episode_source(&bumpers, gains.gains, voice_refs, plan, ceiling)?;
        let (sink, tag) = (&mut outputs.response_segment, &segment_tags[1]);
        let (response_segment, (episode, waveform)) = renderer.both(
            || renderer.segment(&cal[1], sink, "response segment", tag),
            || renderer.episode(episode, plan.total, &mut outputs.episode, ep_tag),
        )?;
        timings.render_s += t.elapsed().as_secs_f64();
        let rendered = [episode, caller_segment, response_segment];
        timings.verify_s += rendered.iter().map(|r| r.1).fold(0.0, f64::max);
        let over = (rendered.iter())
            .filter_map(|r| r.0.true_peak_dbtp)
            .fold(f64::NEG_INFINITY, f64::max)
            - tp;
        if over > 0.0 && render < MAX_RENDERS {
            render += 1;
            headroom += over + EXTRA_HEADROOM_DB;
            obs.log(&format!(
                "a decoded output peaks {over:.2} dB over {tp} dBTP; rendering again with {headroom:.2} dB headroom"
            ));
            continue;
        }
        if over > 0.0 {
            obs.log(&format!(
                "warning: a decoded output still peaks {over:.2} dB over {tp} dBTP"
            ));
        }
        let parts = Parts {
            calibrated: cal,
            bumpers: &bumpers,
            gains,
            layout: plan,
            chapters: chapters.clone(),
        };
        return Ok(parts.report(rendered, waveform, timings, settings));
    }
}

/// Both recordings analysed (the first time) and calibrated at `ceiling`,
/// each on its own thread; and the caller's segment rendered into `sink` as
/// soon as the caller is calibrated, while the response is still being
/// worked on (the caller's recording is usually the shorter, so the cores
/// stay busy from the start). Whichever recording fails first stops the
/// other ([`Halt`]); both threads are joined on every path.
fn calibrate_both<S: Sink>(
    [caller, response]: &mut [Recording; 2],
    ceiling: f64,
    (sink, tag): (&mut S, &Tag),
    renderer: &Renderer<'_>,
    timings: &mut Timings,
) -> Result<([Calibrated; 2], Rendered)> {
    let settings = renderer.settings;
    let halt = Halt::new();
    let watch = (renderer.obs, &halt);
    // `rec` analysed (the first time) and calibrated; how long each took.
    let ready = |rec: &mut Recording| rec.calibrated(settings, ceiling, watch);
    let ((c, segment, c_t), (r, r_t)) = thread::scope(|s| {
        let r = s.spawn(|| halt.guard(|| ready(response)));
        let c = halt.guard(|| {
            let (c, t) = ready(caller)?;
            let segment = renderer.segment(&c, sink, "caller segment", tag)?;
            Ok((c, segment, t))
        });
        first_error(c, join(r))
    })?;
    // The two run side by side: each phase took the longer of the two.
    timings.analyse_s += c_t[0].max(r_t[0]);
    timings.calibrate_s += c_t[1].max(r_t[1]);
    Ok(([c, r], segment))
}

/// What the episode was made of, for the report.
struct Parts<'a> {
    calibrated: [Calibrated; 2],
    bumpers: &'a [Bumper; 3],
    gains: BumperGains,
    layout: &'a Layout,
    chapters: Vec<Chapter>,
}

impl Parts<'_> {
    /// The run's report, with the three outputs `[episode, caller segment,
    /// response segment]` as rendered.
    fn report(
        self,
        [episode, caller_segment, response_segment]: [Rendered; 3],
        episode_waveform: Option<Waveform>,
        timings: Timings,
        settings: &Settings,
    ) -> Report {
        let rate = settings.sample_rate;
        let [caller, response] = self.calibrated.map(|c| c.report);
        let (episode, caller_segment, response_segment) =
            (episode.0, caller_segment.0, response_segment.0);
        Report {
            episode_audio_size: episode.bytes,
            caller_segment_audio_size: caller_segment.bytes,
            response_segment_audio_size: response_segment.bytes,
            episode,
            caller_segment,
            response_segment,
            caller,
            response,
            bumpers: (self.bumpers.iter())
                .zip(self.gains.gains)
                .map(|(b, gain_db)| BumperReport {
                    name: b.name.to_string(),
                    duration_s: secs(b.frames(), rate),
                    integrated_lufs: b.measurement.integrated_lufs,
                    true_peak_dbtp: b.measurement.true_peak_dbtp,
                    gain_db,
                })
                .collect(),
            bumper_trim_db: self.gains.trim_db,
            episode_predicted_lufs: self.gains.predicted_lufs,
            chapters: self.chapters,
            episode_parts: part_spans(self.layout, rate),
            timings,
            episode_waveform,
        }
    }
}

/// Runs [`stitch`] on files, writing `episode.mp3`, `caller-segment.mp3` and
/// `response-segment.mp3` into `out_dir` (created if missing). The files
/// appear only when all three are complete; on error none is left behind.
pub fn stitch_to_dir(
    call: &Path,
    response: &Path,
    bumpers: Bumpers,
    out_dir: &Path,
    settings: &Settings,
    obs: &dyn Observer,
) -> Result<Report> {
    std::fs::create_dir_all(out_dir)
        .map_err(|e| Error::io(out_dir.display().to_string(), "create directory", e))?;
    let finals = FileSink::OUTPUT_FILES.map(|f| out_dir.join(f));
    let partials = FileSink::OUTPUT_FILES.map(|f| FileSink::partial_path(out_dir, f));
    let result = (|| {
        let mut outputs = Outputs {
            episode: FileSink::create(&partials[0])?,
            caller_segment: FileSink::create(&partials[1])?,
            response_segment: FileSink::create(&partials[2])?,
        };
        let report = stitch(
            call.into(),
            response.into(),
            bumpers,
            &mut outputs,
            settings,
            obs,
        )?;
        for (p, f) in partials.iter().zip(&finals) {
            std::fs::rename(p, f).map_err(|e| Error::io(f.display().to_string(), "rename", e))?;
        }
        Ok(report)
    })();
    if result.is_err() {
        partials.iter().for_each(|p| remove_quietly(p));
    }
    result
}
