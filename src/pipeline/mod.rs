//! The pipeline, top to bottom.
//!
//! 1. Bumpers: decoded once (they are short), converted to the common rate,
//!    measured and spooled; gained to the target (see `balance.rs`).
//! 2. First pass, both recordings in parallel: decode → high-pass →
//!    resample, spooled untrimmed while the downmix and the noise floor are
//!    analysed (see [`crate::dsp::front`]); then that spool → downmix → trim
//!    silence at the chosen threshold, spooled again while the loudness
//!    meter measures it.
//! 3. Gain plan: one linear gain, or the leveller's curve when the loudness
//!    range is too wide; calibrated through the limiter so the *limited*
//!    signal lands on the target.
//! 4. Second pass, three jobs in parallel: each segment is spool → gain →
//!    limiter → mono MP3; the episode is bumpers and the two processed
//!    recordings → crossfade mixer → stereo limiter → stereo MP3.
//!    The episode's ID3 tag carries a chapter per part, each boundary in
//!    the middle of its crossfade.
//! 5. Verification: each finished MP3 is decoded and measured; if a true peak
//!    is over the ceiling, step 3–4 run again with more headroom.

pub(crate) mod balance;
pub(crate) mod calibrate;
pub(crate) mod spool;
mod verify;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Instant;

use crate::audio::ahead::read_ahead;
use crate::audio::units::{frames_to_secs as secs, secs_to_frames};
use crate::audio::{Block, Mono, Processed, Source};
use crate::dsp::denoise::denoised;
use crate::dsp::front::{
    Downmix, Downmixed, FrontAnalysis, HighPass, Threshold, DIGITAL_SILENCE_DB, MIN_SOUND_S,
};
use crate::dsp::limiter::{Limiter, MARGIN_DB};
use crate::dsp::mixer::{mix, plan_fades, MixPart};
use crate::dsp::resample::Resample;
use crate::dsp::silence::{trimmed, SilenceSettings};
use crate::encode::chunked::{ChunkOptions, ChunkedMp3Writer, EncodePool};
use crate::encode::id3::{Chapter, Cover, Tag};
use crate::encode::Mp3Format;
use crate::error::{Error, Result, Stage};
use crate::io::{remove_quietly, Bumpers, FileSink, Input, Outputs, Sink};
use crate::loudness::{leveller_curve, Gain, GainPlan, Measurement, Measures, Meter, HOP_SECONDS};
use crate::pipeline::balance::{bumper_trim, predict_episode, PartEnergy};
use crate::pipeline::calibrate::{predicted_gain, HopStats};
use crate::pipeline::spool::{SpoolReader, SpoolWriter, TempDir};
use crate::pipeline::verify::{check_tag, decode_stream, tee, WriteSeek};
use crate::report::waveform::{Waveform, WaveformBuilder};
use crate::report::{
    BumperReport, Observer, OutputReport, PartSpan, RecordingReport, Report, TimeSpan, Timings,
};
use crate::settings::{BumperLoudness, Settings};

/// A source read through a true-peak [`Limiter`] (same length, aligned).
pub type Limited<S> = Processed<S, Limiter>;

/// Limits `inner` to `ceiling_dbtp`.
pub fn limited<S: Source>(inner: S, ceiling_dbtp: f64) -> Limited<S> {
    let limiter = Limiter::new(inner.channels(), inner.sample_rate(), ceiling_dbtp);
    Processed::new(inner, limiter)
}

/// A recording after the first pass.
struct Prepared {
    subject: String,
    /// The trimmed recording.
    spool: PathBuf,
    frames: u64,
    measurement: Measurement,
    /// Gain plan before the limiter (the calibrated one once calibrated).
    plan: GainPlan,
    hops: HopStats,
    /// The trimmed recording's 100 ms K-weighted block energies.
    blocks: Vec<f64>,
    /// The limited recording's, once calibration has limited it.
    limited_blocks: Option<Vec<f64>>,
    /// What the renders read: the spool and the gain to apply to it (the
    /// trimmed recording and the whole plan when no limiting is needed, or
    /// the limited one and the trim after the limiter).
    render: (PathBuf, GainPlan),
    report: RecordingReport,
}

/// Seconds of audio between two progress reports of a stage.
const PROGRESS_STEP_S: u32 = 10;

/// Reports a long stage's progress to the observer every
/// [`PROGRESS_STEP_S`] seconds of audio, and once at its end.
struct StageProgress<'a> {
    obs: &'a dyn Observer,
    halt: &'a Halt,
    subject: &'a str,
    stage: String,
    rate: u32,
    total_s: Option<f64>,
    done: u64,
    next: u64,
}

impl<'a> StageProgress<'a> {
    fn new(
        (obs, halt): (&'a dyn Observer, &'a Halt),
        verb: &str,
        subject: &'a str,
        rate: u32,
        total_s: Option<f64>,
    ) -> Self {
        // "caller recording (call.webm)" → "analysing caller recording".
        let what = subject.split(" (").next().unwrap_or(subject);
        StageProgress {
            obs,
            halt,
            subject,
            stage: format!("{verb} {what}"),
            rate,
            total_s,
            done: 0,
            next: 0,
        }
    }

    /// Counts `frames` more; an error once the other recording has failed.
    fn add(&mut self, frames: usize) -> Result<()> {
        self.halt.check(self.subject)?;
        self.done += frames as u64;
        if self.done >= self.next {
            self.next = self.done + u64::from(PROGRESS_STEP_S * self.rate);
            self.obs
                .stage_progress(&self.stage, secs(self.done, self.rate), self.total_s);
        }
        Ok(())
    }

    fn end(&self) {
        let done = secs(self.done, self.rate);
        self.obs.stage_progress(&self.stage, done, Some(done));
    }
}

/// Stops the other recording's work once one has failed: whichever fails
/// first sets it (on an error or a panic), and the other's passes check it
/// at every block, so the first error is reported at once instead of after
/// the other recording's whole pass.
struct Halt(AtomicBool);

/// The message of the error a halted pass returns; [`first_error`] never
/// reports it when the error that caused it is at hand.
const HALTED: &str = "stopped: the other recording failed";

impl Halt {
    fn new() -> Self {
        Halt(AtomicBool::new(false))
    }

    fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// An error once set.
    fn check(&self, subject: &str) -> Result<()> {
        if self.0.load(Ordering::Relaxed) {
            Err(Error::stage(subject, Stage::Decode, HALTED))
        } else {
            Ok(())
        }
    }

    /// Runs `f`, setting the halt if it fails or panics.
    fn guard<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        /// Sets the halt when dropped during a panic.
        struct OnPanic<'a>(&'a Halt);
        impl Drop for OnPanic<'_> {
            fn drop(&mut self) {
                if thread::panicking() {
                    self.0.set();
                }
            }
        }
        let _on_panic = OnPanic(self);
        let r = f();
        if r.is_err() {
            self.set();
        }
        r
    }
}

/// Both results, or the error that came first: a halted pass's error only
/// when there is no other.
fn first_error<A, B>(a: Result<A>, b: Result<B>) -> Result<(A, B)> {
    let halted = |e: &Error| matches!(e, Error::Stage { message, .. } if message == HALTED);
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(e), Err(f)) if halted(&e) => Err(f),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// Runs `f`; its value and how long it took, in seconds.
fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let t = Instant::now();
    f().map(|v| (v, t.elapsed().as_secs_f64()))
}

/// The front end's decisions about one recording (see [`crate::dsp::front`]).
struct FrontEnd {
    downmix: Downmix,
    correlation: Option<f64>,
    threshold: Threshold,
}

/// First pass over one recording. Read 1: decode, high-pass, resample; the
/// recording is spooled with all its channels while the whole-recording
/// figures are gathered. Then the downmix and the threshold are chosen, and
/// read 2 of that spool downmixes, trims, measures and spools the result.
fn analyse(
    subject: &str,
    input: Input,
    settings: &Settings,
    spool: &Path,
    (obs, halt): (&dyn Observer, &Halt),
) -> Result<Prepared> {
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
        let mut progress = StageProgress::new((obs, halt), "analysing", subject, rate, total_s);
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
        let mut analysis = FrontAnalysis::new(channels, rate, settings.silence.window_ms);
        let mut writer = SpoolWriter::create(&raw, channels)?;
        let mut block = Block::default();
        while front.read(&mut block)? {
            analysis.add(&block);
            writer.write(&block)?;
            progress.add(block.frames())?;
        }
        progress.end();
        Ok::<_, Error>((analysis, writer.finish()?, channels, info, stats))
    });
    let result = first.and_then(|(analysis, frames, channels, info, stats)| {
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
        let src = Downmixed::new(
            SpoolReader::open(&raw, rate, channels, frames)?,
            &front.downmix,
        );
        let mut p = measure_and_spool(subject, src, (settings, halt), spool, info, front)?;
        p.report.non_finite_samples = stats.non_finite();
        p.report.input_parts = stats.links();
        Ok(p)
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
    (settings, halt): (&Settings, &Halt),
    spool: &Path,
    (format, in_rate, in_ch): (String, u32, usize),
    front: FrontEnd,
) -> Result<Prepared> {
    let rate = settings.sample_rate;
    let silence = SilenceSettings {
        threshold_db: front.threshold.threshold_db,
        ..settings.silence.clone()
    };
    let mut chain = trimmed(front_src, &silence);
    let mut meter = Meter::new(1, rate, Measures::ALL)?;
    let mut writer = SpoolWriter::create(spool, 1)?;
    let hop = secs_to_frames(HOP_SECONDS, rate) as usize;
    let mut hops = HopStats::new(hop);
    let mut block = Block::default();
    while chain.read(&mut block)? {
        halt.check(subject)?;
        meter.add_block(&block)?;
        hops.add(block.channel(0));
        writer.write(&block)?;
    }
    hops.finish();
    let frames = writer.finish()?;
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
    Ok(Prepared {
        subject: subject.to_string(),
        spool: spool.to_path_buf(),
        frames,
        measurement: m,
        render: (spool.to_path_buf(), plan.clone()),
        plan,
        hops,
        blocks,
        limited_blocks: None,
        report,
    })
}

/// The processed recording, as calibrated: its render spool and gain.
fn processed(p: &Prepared, rate: u32) -> Result<Gain<SpoolReader>> {
    let spool = SpoolReader::open(&p.render.0, rate, 1, p.frames)?;
    Ok(Gain::new(spool, &p.render.1))
}

/// The limited signal may come out this much louder than the target before
/// another calibration pass is preferred to a larger trim after the limiter.
const MAX_TRIM_DB: f64 = 0.5;

/// Most passes through the limiter that calibration takes.
const MAX_PASSES: u32 = 6;

/// A limited pass this close under the target (LU) is on target: the trim
/// after the limiter can only lower the loudness, and 0.02 LU is well inside
/// the outputs' ±0.3 LU promise.
const MAX_SHORT_LU: f64 = 0.02;

/// Added to each secant step's gain (dB) so the next pass aims a little
/// loud: an overshoot is fixed exactly by the trim after the limiter, an
/// undershoot costs another pass.
const AIM_OVER_DB: f64 = 0.05;

/// Bounds of the measured loudness-per-dB slope of the secant step: the
/// limiter never makes the loudness grow faster than the gain (1), and
/// below 0.1 a step would jump by ten times the error, past any plausible
/// gain.
const SLOPE_RANGE: (f64, f64) = (0.1, 1.0);

/// The loudness gained per dB of gain between the last pass `last` (gain,
/// loudness) and this one, within [`SLOPE_RANGE`]; 1 when there is no
/// earlier pass at another gain. The secant step of calibration and of the
/// bumpers' levelling.
fn secant_slope(last: Option<(f64, f64)>, gain: f64, loud: f64) -> f64 {
    match last {
        Some((g0, l0)) if (gain - g0).abs() > 1e-6 => {
            ((loud - l0) / (gain - g0)).clamp(SLOPE_RANGE.0, SLOPE_RANGE.1)
        }
        _ => 1.0,
    }
}

/// A recording still more than this under the target after calibration is
/// an error (the outputs' promise is ±0.3 LU).
const MAX_MISS_LU: f64 = 0.3;

/// Finds the gain that puts the limited recording on target and spools the
/// limited recording (see [`crate::pipeline::calibrate`]): one pass of gain → limiter
/// → meter at the predicted gain, then a trim after the limiter, or more
/// passes with secant steps when the pass came out under the target or more
/// than [`MAX_TRIM_DB`] over it (at most [`MAX_PASSES`]). A recording that
/// still comes out more than [`MAX_MISS_LU`] under the target is an error.
fn calibrate(
    p: &mut Prepared,
    settings: &Settings,
    ceiling: f64,
    (obs, halt): (&dyn Observer, &Halt),
) -> Result<()> {
    let rate = settings.sample_rate;
    let target = settings.loudness.integrated_lufs;
    let base = target - p.measurement.integrated_lufs;
    p.plan.gain_db = base;
    p.report.gain_db = base;
    p.report.calibration_passes = 0;
    let peak_after_gain = p.measurement.true_peak_dbtp + base;
    if p.plan.curve.is_none() && peak_after_gain <= ceiling - 0.1 {
        // Linear gain, limiter idle: loudness scales exactly with the gain.
        p.render = (p.spool.clone(), p.plan.clone());
        p.limited_blocks = None;
        return Ok(());
    }
    p.plan.gain_db = predicted_gain(&p.hops, &p.plan, base, ceiling - MARGIN_DB);
    // Beside the trimmed recording's spool, in the same private directory.
    let limited_spool = p.spool.with_extension("limited.f32");
    let mut last: Option<(f64, f64)> = None;
    let mut trim = 0.0;
    // The gain of the pass whose output is in the limited spool, and how far
    // under the target that output is.
    let (mut spooled_gain, mut under) = (p.plan.gain_db, 0.0);
    // The loudest any pass came out (for the error when none reaches the target).
    let mut loudest = f64::NEG_INFINITY;
    for pass in 1..=MAX_PASSES {
        p.report.calibration_passes = pass;
        let (loud, blocks) = thread::scope(|s| {
            // Gain and limiter on one thread, measure and spool on this one.
            let (spool, plan, frames) = (&p.spool, &p.plan, p.frames);
            let (mut src, ()) = read_ahead(s, &p.subject, 8, move || {
                let spool = SpoolReader::open(spool, rate, 1, frames)?;
                Ok((limited(Gain::new(spool, plan), ceiling), ()))
            })?;
            let mut meter = Meter::new(1, rate, Measures::INTEGRATED)?;
            let mut writer = SpoolWriter::create(&limited_spool, 1)?;
            let mut progress = StageProgress::new(
                (obs, halt),
                "calibrating",
                &p.subject,
                rate,
                Some(secs(frames, rate)),
            );
            let mut block = Block::default();
            while src.read(&mut block)? {
                meter.add_block(&block)?;
                writer.write(&block)?;
                progress.add(block.frames())?;
            }
            progress.end();
            writer.finish()?;
            let loud = meter.measurement()?.integrated_lufs;
            Ok::<_, Error>((loud, meter.take_block_energies()))
        })?;
        p.limited_blocks = Some(blocks);
        let err = target - loud;
        loudest = loudest.max(loud);
        trim = err.min(0.0);
        (spooled_gain, under) = (p.plan.gain_db, err.max(0.0));
        if (-MAX_TRIM_DB..MAX_SHORT_LU).contains(&err) {
            break;
        }
        let g = p.plan.gain_db;
        let slope = secant_slope(last, g, loud);
        last = Some((g, loud));
        // Aim a little high: the trim after the limiter takes the rest.
        p.plan.gain_db = g + err / slope + AIM_OVER_DB;
    }
    if under > MAX_MISS_LU {
        return Err(Error::stage(
            &p.subject,
            Stage::Loudness,
            format!(
                "calibration: after {MAX_PASSES} passes through the limiter it reaches at most {loudest:.2} LUFS, {:.2} LU under the {target} LUFS target (its peaks are too high for its loudness at the {ceiling:.1} dBTP ceiling: clicks, bursts or distortion?); lower --loudness, raise --true-peak, or record it again",
                target - loudest
            ),
        ));
    }
    p.plan.gain_db = spooled_gain;
    p.report.gain_db = spooled_gain + trim;
    p.render = (
        limited_spool,
        GainPlan {
            gain_db: trim,
            curve: None,
            hop: p.plan.hop,
        },
    );
    Ok(())
}

/// A bumper decoded at the common rate, mono or stereo, spooled to disk (so
/// that it takes no memory while the outputs are encoded).
struct Bumper {
    /// `intro`, `interstitial` or `outro`.
    name: &'static str,
    subject: String,
    spool: PathBuf,
    channels: usize,
    frames: u64,
    /// As mastered (integrated loudness and true peak).
    measurement: Measurement,
    /// Its 100 ms K-weighted block energies, as mastered.
    blocks: Vec<f64>,
}

/// A bumper's gain in the episode and the block energies of what the
/// episode gets from it before `blocks_gain_db` (the bumper as mastered, or
/// as gained and limited when the gain raises its peaks over the ceiling).
struct Level {
    gain_db: f64,
    blocks: Vec<f64>,
    blocks_gain_db: f64,
}

/// Passes through the limiter to find a bumper's gain, at most.
const MAX_BUMPER_PASSES: u32 = 5;
/// Largest gain added to make up for what the limiter takes from a
/// bumper, dB: more would turn a very peaky bumper into a squashed one.
const MAX_LIMITER_MAKEUP_DB: f64 = 10.0;

/// The gain that puts `b` at the target plus the offset (see
/// `balance.rs`): with peaks raised over the ceiling, the gained
/// bumper is limited as the episode will limit it and measured, and the
/// gain raised by what the limiter took (at most three passes).
fn level_bumper(
    b: &Bumper,
    settings: &Settings,
    ceiling: f64,
    trim: f64,
    obs: &dyn Observer,
) -> Result<Level> {
    let keep = Level {
        gain_db: 0.0,
        blocks: b.blocks.clone(),
        blocks_gain_db: 0.0,
    };
    let BumperLoudness::Offset(offset) = settings.bumper_loudness else {
        return Ok(keep);
    };
    let m = &b.measurement;
    if m.integrated_lufs <= -69.9 {
        obs.log(&format!(
            "{}: too quiet or too short to measure its loudness; played as it is",
            b.subject
        ));
        return Ok(keep);
    }
    let want = settings.loudness.integrated_lufs + offset + trim;
    let mut gain = want - m.integrated_lufs;
    if m.true_peak_dbtp + gain <= ceiling - 0.1 {
        return Ok(Level {
            gain_db: gain,
            blocks: b.blocks.clone(),
            blocks_gain_db: gain,
        });
    }
    let rate = settings.sample_rate;
    let plain = gain;
    let mut last: Option<(f64, f64)> = None;
    let mut pass = 1;
    let blocks = loop {
        let plan = GainPlan {
            gain_db: gain,
            curve: None,
            hop: 1,
        };
        let mut src = limited(Gain::new(b.reader(rate)?, &plan), ceiling);
        let mut meter = Meter::new(b.channels, rate, Measures::INTEGRATED)?;
        let mut block = Block::default();
        while src.read(&mut block)? {
            meter.add_block(&block)?;
        }
        let loud = meter.measurement()?.integrated_lufs;
        let short = want - loud;
        if short.abs() < 0.02 || pass == MAX_BUMPER_PASSES {
            if short >= 0.02 {
                obs.log(&format!(
                    "{}: the limiter keeps it {short:.2} LU under its level ({gain:+.2} dB of gain); its peaks are far above its loudness",
                    b.subject
                ));
            }
            break meter.take_block_energies();
        }
        // Secant step: the limiter gives back less than the gain added.
        let slope = secant_slope(last, gain, loud);
        last = Some((gain, loud));
        let next = (gain + short / slope).min(plain + MAX_LIMITER_MAKEUP_DB);
        if (next - gain).abs() < 1e-3 {
            obs.log(&format!(
                "{}: gain capped at {next:+.2} dB ({MAX_LIMITER_MAKEUP_DB} dB over the plain gain); the limiter keeps it {short:.2} LU under its level",
                b.subject
            ));
            break meter.take_block_energies();
        }
        gain = next;
        pass += 1;
    };
    Ok(Level {
        gain_db: gain,
        blocks,
        blocks_gain_db: 0.0,
    })
}

impl Bumper {
    fn reader(&self, rate: u32) -> Result<SpoolReader> {
        SpoolReader::open(&self.spool, rate, self.channels, self.frames)
    }
}

/// Decodes a bumper into a spool at `spool`, measuring it on the way.
fn load_bumper(
    name: &'static str,
    subject: &str,
    input: Input,
    settings: &Settings,
    spool: &Path,
) -> Result<Bumper> {
    let rate = settings.sample_rate;
    let dec = input.open_within(subject, &settings.limits, true)?;
    let src: Box<dyn Source> = if dec.channels() > 2 {
        Box::new(Mono::new(dec))
    } else {
        Box::new(dec)
    };
    let mut rs = Resample::new(src, rate, subject)?;
    let channels = rs.channels();
    let mut writer = SpoolWriter::create(spool, channels)?;
    let mut meter = Meter::new(channels, rate, Measures::LOUDNESS_AND_PEAK)?;
    let mut b = Block::default();
    while rs.read(&mut b)? {
        meter.add_block(&b)?;
        writer.write(&b)?;
    }
    let frames = writer.finish()?;
    if frames == 0 {
        return Err(Error::stage(
            subject,
            Stage::Decode,
            "contains no audio; replace it with the bumper's MP3",
        ));
    }
    Ok(Bumper {
        name,
        subject: subject.to_string(),
        spool: spool.to_path_buf(),
        channels,
        frames,
        measurement: meter.measurement()?,
        blocks: meter.take_block_energies(),
    })
}

/// Audio per chunk of a segment's encoding.
const SEGMENT_CHUNK: std::time::Duration = std::time::Duration::from_secs(20);

fn encode_segment(
    p: &Prepared,
    out: &mut dyn WriteSeek,
    name: &str,
    settings: &Settings,
    pool: &EncodePool,
    tag: &Tag,
) -> Result<(u64, u64)> {
    let mp3 = Mp3Format {
        options: settings.segment_mp3.clone(),
        channels: 1,
        sample_rate: settings.sample_rate,
    };
    let mut src = processed(p, settings.sample_rate)?;
    let opts = ChunkOptions {
        chunk: SEGMENT_CHUNK,
        in_flight: Some(2),
        expected_samples: Some(p.frames),
    };
    let mut w = ChunkedMp3Writer::with_tag(name, out, &mp3, pool, &opts, tag)?;
    let mut b = Block::default();
    while src.read(&mut b)? {
        w.write(&b.planes())?;
    }
    Ok((w.finish()?.1, p.frames))
}

/// Encodes and verifies the segment of `p` into `sink`.
fn render_segment<S: Sink>(
    p: &Prepared,
    sink: &mut S,
    name: &str,
    settings: &Settings,
    pool: &EncodePool,
    tag: &Tag,
) -> Result<(OutputReport, f64)> {
    render_output(name, sink, 1, settings, |out| {
        encode_segment(p, out, name, settings, pool, tag)
    })
}

/// Where the five parts sit in the episode: intro, caller, interstitial,
/// response, outro.
struct Layout {
    lens: [u64; 5],
    /// The four crossfades, in frames (shortened when a part is short).
    fades: Vec<u64>,
    /// Frame of the episode at which each part starts.
    offsets: [u64; 5],
    total: u64,
}

const PART_NAMES: [&str; 5] = ["intro", "caller", "interstitial", "response", "outro"];

fn layout(
    caller: &Prepared,
    response: &Prepared,
    bumpers: &[Bumper; 3],
    settings: &Settings,
    obs: &dyn Observer,
) -> Layout {
    let rate = settings.sample_rate;
    let lens = [
        bumpers[0].frames,
        caller.frames,
        bumpers[1].frames,
        response.frames,
        bumpers[2].frames,
    ];
    let fade = secs_to_frames(settings.crossfade_s, rate);
    let (fades, short) = plan_fades(&lens, fade);
    for s in &short {
        obs.log(&format!(
            "crossfade {} -> {} shortened from {:.3} s to {:.3} s: a part is shorter than the fade",
            PART_NAMES[s.join],
            PART_NAMES[s.join + 1],
            secs(s.requested, rate),
            secs(s.used, rate)
        ));
    }
    let mut offsets = [0u64; 5];
    for k in 1..5 {
        offsets[k] = offsets[k - 1] + lens[k - 1] - fades[k - 1];
    }
    let total = lens.iter().sum::<u64>() - fades.iter().sum::<u64>();
    Layout {
        lens,
        fades,
        offsets,
        total,
    }
}

/// The episode's chapters: one per part, each boundary in the middle of
/// its crossfade, in milliseconds from the first decoded sample.
fn chapters(l: &Layout, titles: &[String; 5], rate: u32) -> Vec<Chapter> {
    let ms = |frames: u64| {
        u32::try_from((frames * 1000 + u64::from(rate) / 2) / u64::from(rate)).unwrap_or(u32::MAX)
    };
    let starts: Vec<u64> = (0..5)
        .map(|k| {
            if k == 0 {
                0
            } else {
                l.offsets[k] + l.fades[k - 1] / 2
            }
        })
        .collect();
    (0..5)
        .map(|k| Chapter {
            title: titles[k].clone(),
            start_ms: ms(starts[k]),
            end_ms: ms(starts.get(k + 1).copied().unwrap_or(l.total)),
        })
        .collect()
}

/// The frames the episode and the segments share: the title (`title`),
/// artist, album and year.
fn common_tag(settings: &Settings, title: Option<String>) -> Tag {
    let t = &settings.tags;
    let mut tag = Tag::new();
    if let Some(v) = title {
        tag.text(b"TIT2", &v);
    }
    if let Some(v) = &t.artist {
        tag.text(b"TPE1", v);
    }
    if let Some(v) = &t.album {
        tag.text(b"TALB", v);
    }
    if let Some(y) = t.year {
        tag.text(b"TDRC", &format!("{y:04}"));
    }
    tag
}

/// The episode's ID3 frames: every tag, the cover and the chapters.
fn episode_tag(settings: &Settings, cover: Option<&Cover>, chapters: &[Chapter]) -> Tag {
    let mut tag = common_tag(settings, settings.tags.title.clone());
    if let Some(c) = &settings.tags.comment {
        tag.comment(c);
    }
    if let Some(c) = cover {
        tag.picture(c);
    }
    tag.chapters(chapters);
    tag
}

/// A segment's ID3 frames: artist, album, year, and the title followed by
/// the title of the segment's chapter (`part` 1: caller, 3: response).
fn segment_tag(settings: &Settings, part: usize) -> Tag {
    let title = settings
        .tags
        .title
        .as_ref()
        .map(|v| format!("{v} ({})", settings.chapter_titles[part]));
    common_tag(settings, title)
}

#[allow(clippy::too_many_arguments)]
fn encode_episode(
    caller: &Prepared,
    response: &Prepared,
    bumpers: &[Bumper; 3],
    gains: [f64; 3],
    l: &Layout,
    out: &mut dyn WriteSeek,
    name: &str,
    settings: &Settings,
    ceiling: f64,
    pool: &EncodePool,
    tag: &Tag,
    obs: &dyn Observer,
    waveform: &mut Option<Waveform>,
) -> Result<(u64, u64)> {
    let rate = settings.sample_rate;
    let mut wave = settings
        .waveform_pixels_per_second
        .map(|pps| WaveformBuilder::new(rate, pps));
    let mp3 = Mp3Format {
        options: settings.episode_mp3.clone(),
        channels: 2,
        sample_rate: rate,
    };
    // A gain of 0 dB multiplies by exactly 1: `keep` mixes the bumpers'
    // samples unchanged.
    let bumper = |k: usize| -> Result<Gain<SpoolReader>> {
        let plan = GainPlan {
            gain_db: gains[k],
            curve: None,
            hop: 1,
        };
        Ok(Gain::new(bumpers[k].reader(rate)?, &plan))
    };
    let mut intro = bumper(0)?;
    let mut inter = bumper(1)?;
    let mut outro = bumper(2)?;
    let mut call = processed(caller, rate)?;
    let mut resp = processed(response, rate)?;
    let (lens, fades, total) = (l.lens, &l.fades, l.total);
    let mut parts = [
        MixPart {
            name: "intro bumper",
            source: &mut intro,
            len: lens[0],
            fade_in: false,
            fade_out: true,
        },
        MixPart {
            name: &caller.subject,
            source: &mut call,
            len: lens[1],
            fade_in: false,
            fade_out: false,
        },
        MixPart {
            name: "interstitial bumper",
            source: &mut inter,
            len: lens[2],
            fade_in: true,
            fade_out: true,
        },
        MixPart {
            name: &response.subject,
            source: &mut resp,
            len: lens[3],
            fade_in: false,
            fade_out: false,
        },
        MixPart {
            name: "outro bumper",
            source: &mut outro,
            len: lens[4],
            fade_in: true,
            fade_out: false,
        },
    ];
    let mut limiter = Limiter::new(2, rate, ceiling);
    let opts = ChunkOptions {
        in_flight: Some(2),
        expected_samples: Some(total),
        ..ChunkOptions::default()
    };
    let mut w = ChunkedMp3Writer::with_tag(name, out, &mp3, pool, &opts, tag)?;
    let mut buf: Vec<Vec<f32>> = (0..2).map(|_| Vec::with_capacity(8192)).collect();
    let mut done = 0u64;
    let mut last_report = 0u64;
    mix(&mut parts, fades, 2, &mut |b: &Block| {
        limiter.process(&b.planes(), &mut buf);
        w.write(&[&buf[0], &buf[1]])?;
        if let Some(wave) = wave.as_mut() {
            wave.add(&[&buf[0], &buf[1]]);
        }
        done += buf[0].len() as u64;
        buf.iter_mut().for_each(Vec::clear);
        if done - last_report >= u64::from(rate) {
            last_report = done;
            obs.progress(done, total);
        }
        Ok(())
    })?;
    limiter.flush(&mut buf);
    w.write(&[&buf[0], &buf[1]])?;
    if let Some(wave) = wave.as_mut() {
        wave.add(&[&buf[0], &buf[1]]);
    }
    done += buf[0].len() as u64;
    obs.progress(done, total);
    let bytes = w.finish()?.1;
    *waveform = wave.map(WaveformBuilder::finish);
    Ok((bytes, done))
}

/// The five parts for the loudness model: the voices as rendered, the
/// bumpers' `blocks` at `gains`.
fn episode_parts<'a>(
    bumpers: &[Bumper; 3],
    caller: &'a Prepared,
    response: &'a Prepared,
    f: &[u64],
    blocks: [&'a [f64]; 3],
    gains: [f64; 3],
) -> [PartEnergy<'a>; 5] {
    let voice = |p: &'a Prepared| PartEnergy {
        blocks: p.limited_blocks.as_deref().unwrap_or(&p.blocks),
        gain_db: p.render.1.gain_db,
        len: p.frames,
        ramp_in: 0,
        ramp_out: 0,
    };
    let bumper = |k: usize, ramp_in: u64, ramp_out: u64| PartEnergy {
        blocks: blocks[k],
        gain_db: gains[k],
        len: bumpers[k].frames,
        ramp_in,
        ramp_out,
    };
    [
        bumper(0, 0, f[0]),
        voice(caller),
        bumper(1, f[1], f[2]),
        voice(response),
        bumper(2, f[3], 0),
    ]
}

/// The three bumpers' gains in the episode at `ceiling` (see
/// `balance.rs`), the trim included in them, and the episode's
/// predicted loudness.
#[allow(clippy::too_many_arguments)]
fn bumper_gains(
    bumpers: &[Bumper; 3],
    caller: &Prepared,
    response: &Prepared,
    plan: &Layout,
    settings: &Settings,
    ceiling: f64,
    obs: &dyn Observer,
) -> Result<([f64; 3], f64, f64)> {
    // First the trim, with each bumper assumed exactly at its level (the
    // limiter's loss is made up below), then each bumper levelled at its
    // level plus the trim, through the limiter where its peaks need it.
    let plain = |b: &Bumper| match settings.bumper_loudness {
        BumperLoudness::Offset(o) if b.measurement.integrated_lufs > -69.9 => {
            settings.loudness.integrated_lufs + o - b.measurement.integrated_lufs
        }
        _ => 0.0,
    };
    let plain = [plain(&bumpers[0]), plain(&bumpers[1]), plain(&bumpers[2])];
    let hop = secs_to_frames(HOP_SECONDS, settings.sample_rate);
    let target = settings.loudness.integrated_lufs;
    let is_bumper = [true, false, true, false, true];
    let as_mastered = [
        bumpers[0].blocks.as_slice(),
        &bumpers[1].blocks,
        &bumpers[2].blocks,
    ];
    let mut trim = if settings.bumper_loudness == BumperLoudness::Offset(0.0) {
        let p = episode_parts(bumpers, caller, response, &plan.fades, as_mastered, plain);
        bumper_trim(&p, &is_bumper, &plan.offsets, plan.total, hop, target).0
    } else {
        0.0
    };
    // Limiting changes a bumper's block energies, not only their sum: when a
    // bumper was limited, the trim is solved again on the limited blocks
    // (at most twice more).
    let mut round = 1;
    let (levels, predicted) = loop {
        let levels = [
            level_bumper(&bumpers[0], settings, ceiling, trim, obs)?,
            level_bumper(&bumpers[1], settings, ceiling, trim, obs)?,
            level_bumper(&bumpers[2], settings, ceiling, trim, obs)?,
        ];
        let (predicted, more) = {
            let blocks = [
                levels[0].blocks.as_slice(),
                &levels[1].blocks,
                &levels[2].blocks,
            ];
            let gains = [0, 1, 2].map(|k| levels[k].blocks_gain_db);
            let p = episode_parts(bumpers, caller, response, &plan.fades, blocks, gains);
            let predicted = predict_episode(&p, &plan.offsets, plan.total, hop);
            let done = settings.bumper_loudness != BumperLoudness::Offset(0.0)
                || (predicted - target).abs() < 0.03
                || round == 3;
            let more = if done {
                None
            } else {
                Some(bumper_trim(&p, &is_bumper, &plan.offsets, plan.total, hop, target).0)
            };
            (predicted, more)
        };
        let Some(more) = more else {
            break (levels, predicted);
        };
        let bound = crate::pipeline::balance::MAX_TRIM_DB;
        let next = (trim + more).clamp(-bound, bound);
        if (next - trim).abs() < 1e-3 {
            break (levels, predicted);
        }
        trim = next;
        round += 1;
    };
    let gains = [0, 1, 2].map(|k| levels[k].gain_db);
    for (b, g) in bumpers.iter().zip(gains) {
        obs.log(&format!(
            "{}: {:.1} LUFS, {:.1} dBTP as mastered; gain {:+.2} dB",
            b.subject, b.measurement.integrated_lufs, b.measurement.true_peak_dbtp, g
        ));
    }
    obs.log(&format!(
        "episode predicted at {predicted:.2} LUFS (bumpers trimmed {trim:+.2} dB)"
    ));
    Ok((gains, trim, predicted))
}

/// Encodes one output into `sink` with `encode` (which returns the bytes and
/// frames written) and, unless verification is off, verifies it while it is
/// written (see [`crate::pipeline::verify`]). Also returns how long the verification
/// went on after the encoding had ended.
fn render_output<S: Sink>(
    name: &str,
    sink: &mut S,
    channels: usize,
    settings: &Settings,
    encode: impl FnOnce(&mut dyn WriteSeek) -> Result<(u64, u64)>,
) -> Result<(OutputReport, f64)> {
    sink.reset().map_err(|e| Error::io(name, "reset", e))?;
    let rate = settings.sample_rate;
    if !settings.verify {
        let (bytes, frames) = encode(&mut *sink)?;
        return Ok((unverified(bytes, frames, rate, channels), 0.0));
    }
    let (streamed, bytes, frames, t) = thread::scope(|s| {
        let (mut tee, pipe) = tee(&mut *sink).map_err(|e| Error::io(name, "seek", e))?;
        let check = s.spawn(move || decode_stream(name, pipe, rate, channels));
        let encoded = encode(&mut tee);
        let t = Instant::now();
        tee.end(encoded.as_ref().ok().map(|&(_, frames)| frames));
        let streamed = join(check);
        let (bytes, frames) = encoded?;
        Ok::<_, Error>((streamed?, bytes, frames, t))
    })?;
    let file = sink.reader().map_err(|e| Error::io(name, "read back", e))?;
    check_tag(name, file, frames, &streamed)?;
    let m = &streamed.measurement;
    let report = OutputReport {
        integrated_lufs: Some(m.integrated_lufs),
        true_peak_dbtp: Some(m.true_peak_dbtp),
        ..unverified(bytes, frames, rate, channels)
    };
    Ok((report, t.elapsed().as_secs_f64()))
}

fn unverified(bytes: u64, frames: u64, rate: u32, channels: usize) -> OutputReport {
    OutputReport {
        bytes,
        frames,
        duration_s: secs(frames, rate),
        sample_rate: rate,
        channels,
        integrated_lufs: None,
        true_peak_dbtp: None,
    }
}

fn join<T>(h: thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    h.join().unwrap_or_else(|_| {
        Err(Error::stage(
            "podstitch",
            Stage::Mix,
            "internal error: a worker thread panicked",
        ))
    })
}

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
    let caller_tag = segment_tag(settings, 1);
    let response_tag = segment_tag(settings, 3);
    let tmp = TempDir::new(settings.temp_dir.as_deref())
        .map_err(|e| Error::io("temporary directory", "create", e))?;
    let mut timings = Timings::default();

    let call_name = format!("caller recording ({})", call.describe());
    let resp_name = format!("response recording ({})", response.describe());
    let Bumpers {
        intro,
        interstitial,
        outro,
    } = bumpers;
    let load = |what: &'static str, input: Input| {
        let subject = format!("{what} bumper ({})", input.describe());
        load_bumper(
            what,
            &subject,
            input,
            settings,
            &tmp.path().join(format!("{what}.f32")),
        )
    };
    let bumpers = [
        load("intro", intro)?,
        load("interstitial", interstitial)?,
        load("outro", outro)?,
    ];
    // The episode and the segments are cut into chunks encoded on all cores.
    let pool = EncodePool::with_available_parallelism()?;
    let tp = settings.loudness.true_peak_dbtp;
    let mut headroom = settings.loudness.mp3_headroom_db;
    let Outputs {
        episode,
        caller_segment,
        response_segment,
    } = outputs;

    // First attempt: the caller's recording, usually the shorter, is
    // analysed, calibrated and its segment encoded while the response is
    // still being analysed, so the cores are busy from the start.
    let ceiling = tp - headroom;
    // Whichever recording fails first stops the other (`Halt`); both
    // threads are joined on every path.
    let halt = Halt::new();
    let first = thread::scope(|s| {
        let r = s.spawn(|| {
            halt.guard(|| {
                let spool = tmp.path().join("response.f32");
                let (mut p, analysed) =
                    timed(|| analyse(&resp_name, response, settings, &spool, (obs, &halt)))?;
                let ((), calibrated) =
                    timed(|| calibrate(&mut p, settings, ceiling, (obs, &halt)))?;
                Ok((p, analysed, calibrated))
            })
        });
        let caller = halt.guard(|| {
            let spool = tmp.path().join("caller.f32");
            let (mut caller, analysed) =
                timed(|| analyse(&call_name, call, settings, &spool, (obs, &halt)))?;
            let ((), calibrated) =
                timed(|| calibrate(&mut caller, settings, ceiling, (obs, &halt)))?;
            let segment = render_segment(
                &caller,
                caller_segment,
                "caller segment",
                settings,
                &pool,
                &caller_tag,
            )?;
            Ok((caller, analysed, calibrated, segment))
        });
        let ((caller, analysed, calibrated, segment), (response, r_analysed, r_calibrated)) =
            first_error(caller, join(r))?;
        timings.analyse_s = analysed.max(r_analysed);
        timings.calibrate_s = calibrated.max(r_calibrated);
        Ok::<_, Error>((caller, response, segment))
    });
    let (mut caller, mut response, segment) = first?;
    let mut caller_done = Some(segment);
    for p in [&caller, &response] {
        let r = &p.report;
        obs.log(&format!(
            "{}: {} {} Hz {} ch, {:.2} s; trimmed {:.2} s of leading silence and {} pause(s) ({:.2} s); {:.1} LUFS, LRA {:.1} LU{}",
            p.subject,
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
            p.subject,
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
                p.subject, r.input_parts
            ));
        }
        if r.non_finite_samples > 0 {
            obs.log(&format!(
                "warning: {}: {} sample(s) were NaN or infinite and were replaced by silence \
                 (short dropouts); export the recording again to avoid them",
                p.subject, r.non_finite_samples
            ));
        }
    }

    let mut waveform = None;
    let plan = layout(&caller, &response, &bumpers, settings, obs);
    let chapters = chapters(&plan, &settings.chapter_titles, settings.sample_rate);
    let ep_tag = episode_tag(settings, cover.as_ref(), &chapters);
    let mut attempt = 1;
    loop {
        let ceiling = tp - headroom;
        if attempt > 1 {
            let halt = Halt::new();
            let (((), ()), t) = timed(|| {
                thread::scope(|s| {
                    let c = s.spawn(|| {
                        halt.guard(|| calibrate(&mut caller, settings, ceiling, (obs, &halt)))
                    });
                    let r =
                        halt.guard(|| calibrate(&mut response, settings, ceiling, (obs, &halt)));
                    first_error(join(c), r)
                })
            })?;
            timings.calibrate_s += t;
        }

        let (gains, trim, predicted) =
            bumper_gains(&bumpers, &caller, &response, &plan, settings, ceiling, obs)?;
        let t = Instant::now();
        // Each output is verified while it is written.
        let (ep, cs, rs) = thread::scope(|s| {
            let c = s.spawn(|| match caller_done.take() {
                Some(done) => Ok(done),
                None => render_segment(
                    &caller,
                    caller_segment,
                    "caller segment",
                    settings,
                    &pool,
                    &caller_tag,
                ),
            });
            let r = s.spawn(|| {
                render_segment(
                    &response,
                    response_segment,
                    "response segment",
                    settings,
                    &pool,
                    &response_tag,
                )
            });
            let name = "episode";
            let e = render_output(name, episode, 2, settings, |out| {
                encode_episode(
                    &caller,
                    &response,
                    &bumpers,
                    gains,
                    &plan,
                    out,
                    name,
                    settings,
                    ceiling,
                    &pool,
                    &ep_tag,
                    obs,
                    &mut waveform,
                )
            });
            (e, join(c), join(r))
        });
        let ((ep, ep_t), (cs, cs_t), (rs, rs_t)) = (ep?, cs?, rs?);
        timings.render_s += t.elapsed().as_secs_f64();
        timings.verify_s += ep_t.max(cs_t).max(rs_t);
        let reports = [ep, cs, rs];
        let over = reports
            .iter()
            .filter_map(|r| r.true_peak_dbtp)
            .fold(f64::NEG_INFINITY, f64::max)
            - tp;
        if over > 0.0 && attempt < 3 {
            attempt += 1;
            headroom += over + 0.2;
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
        let [episode, caller_segment, response_segment] = reports;
        return Ok(Report {
            episode_audio_size: episode.bytes,
            caller_segment_audio_size: caller_segment.bytes,
            response_segment_audio_size: response_segment.bytes,
            episode,
            caller_segment,
            response_segment,
            caller: caller.report,
            response: response.report,
            bumpers: bumpers
                .iter()
                .zip(gains)
                .map(|(b, gain_db)| BumperReport {
                    name: b.name.to_string(),
                    duration_s: secs(b.frames, settings.sample_rate),
                    integrated_lufs: b.measurement.integrated_lufs,
                    true_peak_dbtp: b.measurement.true_peak_dbtp,
                    gain_db,
                })
                .collect(),
            bumper_trim_db: trim,
            episode_predicted_lufs: predicted,
            chapters,
            episode_parts: (0..5)
                .map(|k| PartSpan {
                    name: PART_NAMES[k].to_string(),
                    start_s: secs(plan.offsets[k], settings.sample_rate),
                    end_s: secs(plan.offsets[k] + plan.lens[k], settings.sample_rate),
                })
                .collect(),
            timings,
            episode_waveform: waveform,
        });
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
