//! The first pass over a recording, which makes it [`Analysed`]: read 1
//! decodes, high-passes and resamples it (denoised on request) into an
//! untrimmed spool while the front end's whole-recording figures are
//! gathered; then the downmix and the silence threshold are chosen, and
//! read 2 of that spool downmixes, trims, measures and spools the result.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::SystemTime;

use crate::audio::ahead::read_ahead;
use crate::audio::units::{frames_to_secs as secs, secs_to_frames};
use crate::audio::{drain, Processed, Source};
use crate::dsp::denoise::denoised;
use crate::dsp::front::{
    Downmix, Downmixed, FrontAnalysis, HighPass, Threshold, DIGITAL_SILENCE_DB, MIN_SOUND_S,
};
use crate::dsp::resample::Resample;
use crate::dsp::silence::{trimmed, SilenceSettings};
use crate::error::{Error, Result, Stage};
use crate::io::{remove_quietly, Input};
use crate::loudness::{leveller_curve, GainPlan, Measurement, Measures, Meter, HOP_SECONDS};
use crate::pipeline::calibrate::{calibrate, Calibrated, HopStats};
use crate::pipeline::control::{halted, timed, StageProgress, Watch};
use crate::pipeline::spool::{Spool, SpoolWriter};
use crate::report::{RecordingReport, TimeSpan};
use crate::settings::Settings;

/// One of the two recordings: its input until the first pass, then what the
/// first pass found, kept for every render.
pub(crate) struct Recording {
    subject: String,
    input: Option<Input>,
    /// The input's file and its size and time of change, when it is a
    /// regular file: it can be read again, so its trimmed spool may be
    /// limited in place (see [`Recording::calibrated`]). A path to a pipe
    /// or a device cannot be read twice.
    again: Option<(PathBuf, Stamp)>,
    spool: PathBuf,
    analysed: Option<Analysed>,
}

/// Runs the first pass over the recording again (see [`Analysed::trimmed`]).
pub(crate) type Reread<'a> = &'a dyn Fn() -> Result<Analysed>;

/// A regular file's size and time of last change: a file read a second time
/// must still have the same.
#[derive(Debug, Clone, PartialEq)]
struct Stamp(u64, Option<SystemTime>);

impl Stamp {
    /// `path`'s, when it is a regular file.
    fn of(path: &Path) -> Option<Stamp> {
        let m = fs::metadata(path).ok().filter(fs::Metadata::is_file)?;
        Some(Stamp(m.len(), m.modified().ok()))
    }
}

impl Recording {
    /// The recording `input`, named `subject` in errors and logs, spooled at
    /// `spool` (in the run's private directory).
    pub(crate) fn new(subject: String, input: Input, spool: PathBuf) -> Self {
        let again = match &input {
            Input::Path(p) => Stamp::of(p).map(|stamp| (p.clone(), stamp)),
            Input::Bytes(_) | Input::Reader(_) => None,
        };
        Recording {
            subject,
            input: Some(input),
            again,
            spool,
            analysed: None,
        }
    }

    /// The recording analysed (the first time it is asked for) and
    /// calibrated at `ceiling`, and how long each took (0 for an analysis
    /// done before). A recording read from a file has its trimmed spool
    /// limited in place, so the disk holds one spool of it at a time; the
    /// rare pass or render that needs the trimmed recording again reads the
    /// file again (the first pass is deterministic; a file whose size or
    /// time of change moved, or whose second reading differs, is an error).
    /// One given as bytes, a reader or a path that is not a regular file
    /// keeps its trimmed spool beside the limited one.
    pub(crate) fn calibrated(
        &mut self,
        settings: &Settings,
        ceiling: f64,
        watch: Watch<'_>,
    ) -> Result<(Calibrated, [f64; 2])> {
        let (_, analysed_s) = self.analysed(settings, watch)?;
        let (subject, spool) = (&self.subject, &self.spool);
        let reread = self.again.as_ref().map(|(path, stamp)| {
            move || {
                if Stamp::of(path).as_ref() != Some(stamp) {
                    return Err(changed(subject, "its size or time of change moved"));
                }
                watch.0.log(&format!(
                    "{subject}: reading it again (its trimmed spool was limited in place)"
                ));
                let input = Input::Path(path.clone());
                analyse(subject, input, settings, spool, watch).map_err(read_again)
            }
        });
        let a = self
            .analysed
            .as_mut()
            .ok_or_else(|| not_analysed(subject))?;
        let reread = reread.as_ref().map(|f| f as Reread<'_>);
        let (c, calibrated_s) = timed(|| calibrate(a, reread, settings, ceiling, watch))?;
        Ok((c, [analysed_s.unwrap_or(0.0), calibrated_s]))
    }

    /// The recording after its first pass, which runs the first time it is
    /// asked for (and how long it took, then).
    pub(crate) fn analysed(
        &mut self,
        settings: &Settings,
        watch: Watch<'_>,
    ) -> Result<(&Analysed, Option<f64>)> {
        let mut took = None;
        if self.analysed.is_none() {
            let input = self.input.take().ok_or_else(|| {
                Error::stage(&self.subject, Stage::Decode, "internal error: read twice")
            })?;
            let (a, t) = timed(|| analyse(&self.subject, input, settings, &self.spool, watch))?;
            log(&a, watch.0);
            self.analysed = Some(a);
            took = Some(t);
        }
        let a = (self.analysed.as_ref()).ok_or_else(|| not_analysed(&self.subject))?;
        Ok((a, took))
    }
}

/// The error of a recording that changed between its two readings; `how`
/// says how that showed.
fn changed(subject: &str, how: &str) -> Error {
    Error::stage(
        subject,
        Stage::Read,
        format!(
            "it changed while podstitch was working on it (it had to be read a second time, \
             and {how}); leave it untouched until podstitch ends"
        ),
    )
}

/// `e`, from a second reading of a recording, saying why it was read again.
fn read_again(e: Error) -> Error {
    const WHY: &str = "reading it a second time (its trimmed spool had been limited in place)";
    if halted(&e) {
        return e;
    }
    match e {
        Error::Stage {
            subject,
            stage,
            message,
        } => Error::stage(subject, stage, format!("{WHY}: {message}")),
        Error::Io {
            subject,
            action,
            source,
        } => Error::stage(subject, Stage::Read, format!("{WHY}: {action}: {source}")),
        e => e,
    }
}

fn not_analysed(subject: &str) -> Error {
    Error::stage(subject, Stage::Decode, "internal error: not analysed")
}

/// A recording after the first pass: trimmed, measured and spooled, with the
/// gain plan that puts it on target before the limiter.
pub(crate) struct Analysed {
    pub(crate) subject: String,
    /// The trimmed recording (mono), while its file holds it: `None` once a
    /// calibration pass has limited it in place (see [`Analysed::trimmed`]).
    spool: Option<Spool>,
    /// Where the trimmed recording is spooled.
    pub(crate) path: PathBuf,
    pub(crate) measurement: Measurement,
    /// The gain to the target and, when its loudness range is too wide, the
    /// leveller's curve.
    pub(crate) plan: GainPlan,
    pub(crate) hops: HopStats,
    /// Its 100 ms K-weighted block energies.
    pub(crate) blocks: Vec<f64>,
    /// All but what calibration decides (`gain_db`, `calibration_passes`).
    pub(crate) report: RecordingReport,
}

impl Analysed {
    /// The trimmed recording's spool. When a calibration pass has limited it
    /// in place, the first pass runs again (`reread`) after `stale`, that
    /// pass's spool, is removed (so the disk never holds three); the second
    /// reading must give the same recording.
    pub(crate) fn trimmed(&mut self, reread: Option<Reread<'_>>, stale: &Path) -> Result<&Spool> {
        if self.spool.is_none() {
            let internal = || {
                Error::stage(
                    &self.subject,
                    Stage::Read,
                    "internal error: the spool is gone",
                )
            };
            let reread = reread.ok_or_else(internal)?;
            remove_quietly(stale);
            let again = reread()?;
            if again.measurement != self.measurement
                || again.report.duration_s != self.report.duration_s
            {
                remove_quietly(&self.path);
                return Err(changed(
                    &self.subject,
                    "its second reading differs from the first",
                ));
            }
            self.spool = again.spool;
        }
        let internal = || Error::stage(&self.subject, Stage::Read, "internal error: no spool");
        self.spool.as_ref().ok_or_else(internal)
    }

    /// The trimmed recording's spool, taken out for a rewrite in place: the
    /// next [`Analysed::trimmed`] reads the recording again.
    pub(crate) fn take_trimmed(&mut self) -> Option<Spool> {
        self.spool.take()
    }
}

/// The front end's decisions about one recording (see [`crate::dsp::front`]).
struct FrontEnd {
    downmix: Downmix,
    correlation: Option<f64>,
    threshold: Threshold,
}

/// The first pass over `input` (see the module's documentation).
fn analyse(
    subject: &str,
    input: Input,
    settings: &Settings,
    spool: &Path,
    watch: Watch<'_>,
) -> Result<Analysed> {
    let rate = settings.sample_rate;
    let raw = spool.with_extension("raw.f32");
    let first = thread::scope(|s| {
        // Decode on one thread (the larger half), the rest on this one.
        let (front, (info, stats, total_s)) = read_ahead(s, subject, 8, || {
            let dec = input.open_within(subject, &settings.limits, false)?;
            let format = format!("{}/{}", dec.container_name(), dec.codec_name());
            let (in_rate, in_ch, stats) = (dec.sample_rate(), dec.channels(), dec.stats());
            let total_s = dec.declared_duration_s();
            Ok((dec, ((format, in_rate, in_ch), stats, total_s)))
        })?;
        // High-pass at the input rate, before the resampler, whose start-up
        // would otherwise turn an offset's first sample into a transient.
        let channels = front.channels();
        let hp = HighPass::new(channels, front.sample_rate(), settings.highpass_hz);
        let hp = Processed::new(front, hp);
        let mut front: Box<dyn Source> = if settings.denoise {
            Box::new(denoised(hp, rate, subject)?)
        } else {
            Box::new(Resample::new(hp, rate, subject)?)
        };
        let (analysis, untrimmed, ()) = drain(
            &mut front,
            (
                FrontAnalysis::new(channels, rate, settings.silence.window_ms),
                SpoolWriter::create(&raw, rate, channels)?,
                StageProgress::new(watch, "analysing", subject, rate, total_s),
            ),
        )?;
        Ok::<_, Error>((analysis, untrimmed, info, stats))
    });
    let result = first.and_then(|(analysis, untrimmed, info, stats)| {
        let downmix = analysis.downmix();
        let threshold = analysis.threshold(&downmix, &settings.silence);
        let front = FrontEnd {
            correlation: analysis.correlation(),
            downmix,
            threshold,
        };
        if front.threshold.adapted && front.threshold.above_s < MIN_SOUND_S {
            return Err(only_noise(subject, &front.threshold));
        }
        // Read 2 rewrites the untrimmed spool in place: downmixing and
        // trimming only shorten it, so the disk never holds both.
        let (untrimmed, out) = untrimmed.rewrite(spool, 1)?;
        let src = Downmixed::new(untrimmed, &front.downmix);
        let mut a = measure_and_spool(subject, (src, out), (settings, watch), info, front)?;
        a.report.non_finite_samples = stats.non_finite();
        a.report.input_parts = stats.links();
        Ok(a)
    });
    remove_quietly(&raw);
    if result.is_err() {
        remove_quietly(spool);
    }
    result
}

fn only_noise(subject: &str, t: &Threshold) -> Error {
    Error::stage(
        subject,
        Stage::Silence,
        format!(
            "it holds only background noise: its noise floor is about {:.1} dBFS and only {:.2} s of it is louder than {} dBFS{}; record it again with the voice closer to the microphone or in a quieter room",
            t.floor_db.unwrap_or(f64::NEG_INFINITY),
            t.above_s,
            (t.threshold_db * 10.0).round() / 10.0,
            if t.adapted { " (the floor + 6 dB)" } else { "" }
        ),
    )
}

/// The back half of [`analyse`]: trim, measure and spool.
fn measure_and_spool(
    subject: &str,
    (front_src, out): (impl Source, SpoolWriter),
    (settings, watch): (&Settings, Watch<'_>),
    (format, in_rate, in_ch): (String, u32, usize),
    front: FrontEnd,
) -> Result<Analysed> {
    let rate = settings.sample_rate;
    let silence = SilenceSettings {
        threshold_db: front.threshold.threshold_db,
        ..settings.silence.clone()
    };
    let mut chain = trimmed(front_src, &silence);
    let hop = secs_to_frames(HOP_SECONDS, rate) as usize;
    let ((), (mut meter, hops), spool) = drain(
        &mut chain,
        (
            StageProgress::silent(watch, subject),
            (Meter::new(1, rate, Measures::ALL)?, HopStats::new(hop)),
            out,
        ),
    )?;
    let frames = spool.frames();
    let stats = chain.stage().stats().clone();
    if !chain.stage().started() {
        let t = &front.threshold;
        return Err(match t.floor_db {
            Some(f) if f > DIGITAL_SILENCE_DB => only_noise(subject, t),
            _ => Error::stage(
                subject,
                Stage::Silence,
                format!(
                    "nothing in it is louder than {} dBFS: it is silent; record it again with the microphone on",
                    t.threshold_db
                ),
            ),
        });
    }
    let m = meter.measurement()?;
    if m.integrated_lufs <= -69.9 {
        return Err(Error::stage(
            subject,
            Stage::Loudness,
            format!(
                "only {:.2} s of sound, too short to measure its loudness (EBU R128 needs at least 0.4 s); record a longer message",
                secs(frames, rate)
            ),
        ));
    }
    let series = meter.take_series();
    let blocks = meter.take_block_energies();
    let l = &settings.loudness;
    let leveller = m.lra_lu > l.lra_lu;
    let plan = GainPlan {
        gain_db: l.integrated_lufs - m.integrated_lufs,
        curve: leveller.then(|| leveller_curve(&series, m.integrated_lufs, l)),
        hop,
    };
    let removed: u64 = stats.cuts.iter().map(|c| c.len).sum();
    let report = RecordingReport {
        format,
        input_sample_rate: in_rate,
        input_channels: in_ch,
        input_duration_s: secs(stats.frames_in, rate),
        highpass_hz: settings.highpass_hz,
        denoised: settings.denoise,
        downmix: front.downmix.rule,
        channel_correlation: front.correlation,
        noise_floor_dbfs: front.threshold.floor_db,
        silence_threshold_db: front.threshold.threshold_db,
        threshold_adapted: front.threshold.adapted,
        removed: std::iter::once((0, stats.leading_trimmed))
            .chain(stats.cuts.iter().map(|c| (c.at, c.len)))
            .filter(|&(_, len)| len > 0)
            .map(|(at, len)| TimeSpan {
                start_s: secs(at, rate),
                duration_s: secs(len, rate),
            })
            .collect(),
        leading_trimmed_s: secs(stats.leading_trimmed, rate),
        pauses_shortened: stats.cuts.len(),
        pause_removed_s: secs(removed, rate),
        duration_s: secs(frames, rate),
        input_integrated_lufs: m.integrated_lufs,
        input_lra_lu: m.lra_lu,
        input_true_peak_dbtp: m.true_peak_dbtp,
        leveller,
        gain_db: plan.gain_db,
        calibration_passes: 0,
        non_finite_samples: 0,
        input_parts: 1,
    };
    Ok(Analysed {
        subject: subject.to_string(),
        path: spool.path().to_path_buf(),
        spool: Some(spool),
        measurement: m,
        plan,
        hops,
        blocks,
        report,
    })
}

/// What the first pass found, for the log.
fn log(a: &Analysed, obs: &dyn crate::report::Observer) {
    let r = &a.report;
    obs.log(&format!(
        "{}: {} {} Hz {} ch, {:.2} s; trimmed {:.2} s of leading silence and {} pause(s) ({:.2} s); {:.1} LUFS, LRA {:.1} LU{}",
        a.subject,
        r.format,
        r.input_sample_rate,
        r.input_channels,
        r.input_duration_s,
        r.leading_trimmed_s,
        r.pauses_shortened,
        r.pause_removed_s,
        r.input_integrated_lufs,
        r.input_lra_lu,
        if r.leveller { " (leveller on)" } else { "" }
    ));
    obs.log(&format!(
        "{}: high-pass {}; noise suppression {}; downmix {}{}; noise floor {}; silence threshold {:.1} dBFS{}",
        a.subject,
        if r.highpass_hz > 0.0 {
            format!("{} Hz", r.highpass_hz)
        } else {
            "off".to_string()
        },
        if r.denoised { "on" } else { "off" },
        r.downmix,
        r.channel_correlation
            .map_or(String::new(), |c| format!(" (channel correlation {c:.2})")),
        r.noise_floor_dbfs
            .map_or("digital silence".to_string(), |f| format!("{f:.1} dBFS")),
        r.silence_threshold_db,
        if r.threshold_adapted {
            " (raised to the floor + 6 dB)"
        } else {
            ""
        }
    ));
    if r.input_parts > 1 {
        obs.log(&format!(
            "{}: the file holds {} recordings one after the other; decoded in order as one",
            a.subject, r.input_parts
        ));
    }
    if r.non_finite_samples > 0 {
        obs.log(&format!(
            "warning: {}: {} sample(s) were NaN or infinite and were replaced by silence \
             (short dropouts); export the recording again to avoid them",
            a.subject, r.non_finite_samples
        ));
    }
}
