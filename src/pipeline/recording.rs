//! The first pass over a recording, which makes it [`Analysed`]: read 1
//! decodes, high-passes and resamples it (denoised on request) into an
//! untrimmed spool while the front end's whole-recording figures are
//! gathered; then the downmix and the silence threshold are chosen, and
//! read 2 of that spool downmixes, trims, measures and spools the result.

use std::path::{Path, PathBuf};
use std::thread;

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
use crate::pipeline::calibrate::HopStats;
use crate::pipeline::control::{timed, StageProgress, Watch};
use crate::pipeline::spool::{Spool, SpoolWriter};
use crate::report::{RecordingReport, TimeSpan};
use crate::settings::Settings;

/// One of the two recordings: its input until the first pass, then what the
/// first pass found, kept for every render.
pub(crate) struct Recording {
    subject: String,
    input: Option<Input>,
    spool: PathBuf,
    analysed: Option<Analysed>,
}

impl Recording {
    /// The recording `input`, named `subject` in errors and logs, spooled at
    /// `spool` (in the run's private directory).
    pub(crate) fn new(subject: String, input: Input, spool: PathBuf) -> Self {
        Recording {
            subject,
            input: Some(input),
            spool,
            analysed: None,
        }
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
        let a = self.analysed.as_ref().ok_or_else(|| {
            Error::stage(&self.subject, Stage::Decode, "internal error: not analysed")
        })?;
        Ok((a, took))
    }
}

/// A recording after the first pass: trimmed, measured and spooled, with the
/// gain plan that puts it on target before the limiter.
pub(crate) struct Analysed {
    pub(crate) subject: String,
    /// The trimmed recording (mono).
    pub(crate) spool: Spool,
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
        let src = Downmixed::new(untrimmed.open()?, &front.downmix);
        let mut a = measure_and_spool(subject, src, (settings, watch), spool, info, front)?;
        a.report.non_finite_samples = stats.non_finite();
        a.report.input_parts = stats.links();
        Ok(a)
    });
    remove_quietly(&raw);
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
    front_src: impl Source,
    (settings, watch): (&Settings, Watch<'_>),
    spool: &Path,
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
            SpoolWriter::create(spool, rate, 1)?,
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
        spool,
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
