//! The three bumpers: decoded once (they are short), converted to the
//! common rate, measured and spooled; then gained so that each sits at the
//! target plus its offset and the episode as a whole lands on the target
//! (the model is in `balance.rs`).

use std::path::Path;

use crate::audio::units::secs_to_frames;
use crate::audio::{drain, Mono, Source};
use crate::dsp::resample::Resample;
use crate::error::{Error, Result, Stage};
use crate::io::{Bumpers, Input};
use crate::loudness::{Gain, GainPlan, Measurement, Measures, Meter, HOP_SECONDS};
use crate::pipeline::balance::{bumper_trim, predict_episode, PartEnergy};
use crate::pipeline::calibrate::{limited, secant_slope, Calibrated};
use crate::pipeline::episode::Layout;
use crate::pipeline::spool::{Spool, SpoolReader, SpoolWriter};
use crate::report::Observer;
use crate::settings::{BumperLoudness, Settings};

/// A bumper decoded at the common rate, mono or stereo, spooled to disk (so
/// that it takes no memory while the outputs are encoded).
pub(crate) struct Bumper {
    /// `intro`, `interstitial` or `outro`.
    pub(crate) name: &'static str,
    pub(crate) subject: String,
    spool: Spool,
    /// As mastered (integrated loudness and true peak).
    pub(crate) measurement: Measurement,
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
        let mut src = limited(b.source(gain)?, ceiling);
        let meter = Meter::new(b.spool.channels(), rate, Measures::INTEGRATED)?;
        let mut meter = drain(&mut src, meter)?;
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
    /// The bumper at `gain_db` (0 dB multiplies by exactly 1: `keep` mixes
    /// its samples unchanged).
    pub(crate) fn source(&self, gain_db: f64) -> Result<Gain<SpoolReader>> {
        let plan = GainPlan {
            gain_db,
            curve: None,
            hop: 1,
        };
        Ok(Gain::new(self.spool.open()?, &plan))
    }

    /// Its length in frames.
    pub(crate) fn frames(&self) -> u64 {
        self.spool.frames()
    }
}

/// Loads the three bumpers, spooled into `dir`.
pub(crate) fn load_bumpers(b: Bumpers, settings: &Settings, dir: &Path) -> Result<[Bumper; 3]> {
    let load = |name: &'static str, input: Input| {
        let subject = format!("{name} bumper ({})", input.describe());
        let spool = dir.join(format!("{name}.f32"));
        load_bumper(name, &subject, input, settings, &spool)
    };
    Ok([
        load("intro", b.intro)?,
        load("interstitial", b.interstitial)?,
        load("outro", b.outro)?,
    ])
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
    let (mut meter, spool) = drain(
        &mut rs,
        (
            Meter::new(channels, rate, Measures::LOUDNESS_AND_PEAK)?,
            SpoolWriter::create(spool, rate, channels)?,
        ),
    )?;
    if spool.frames() == 0 {
        return Err(Error::stage(
            subject,
            Stage::Decode,
            "contains no audio; replace it with the bumper's MP3",
        ));
    }
    Ok(Bumper {
        name,
        subject: subject.to_string(),
        spool,
        measurement: meter.measurement()?,
        blocks: meter.take_block_energies(),
    })
}

/// The five parts for the loudness model: the voices as rendered, the
/// bumpers' `blocks` at `gains`.
fn episode_parts<'a>(
    bumpers: &[Bumper; 3],
    [caller, response]: [&'a Calibrated; 2],
    f: &[u64],
    blocks: [&'a [f64]; 3],
    gains: [f64; 3],
) -> [PartEnergy<'a>; 5] {
    let voice = |p: &'a Calibrated| PartEnergy {
        blocks: &p.blocks,
        gain_db: p.render_gain_db(),
        len: p.frames(),
        ramp_in: 0,
        ramp_out: 0,
    };
    let bumper = |k: usize, ramp_in: u64, ramp_out: u64| PartEnergy {
        blocks: blocks[k],
        gain_db: gains[k],
        len: bumpers[k].frames(),
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

/// How the bumpers are gained in the episode.
pub(crate) struct BumperGains {
    /// Each bumper's gain, dB, the trim included.
    pub(crate) gains: [f64; 3],
    /// The trim that makes the whole episode land on the target, dB.
    pub(crate) trim_db: f64,
    /// The episode's predicted loudness, LUFS.
    pub(crate) predicted_lufs: f64,
}

/// The three bumpers' gains in the episode of `voices` at `ceiling` (see
/// `balance.rs`).
pub(crate) fn bumper_gains(
    bumpers: &[Bumper; 3],
    voices: [&Calibrated; 2],
    plan: &Layout,
    (settings, ceiling): (&Settings, f64),
    obs: &dyn Observer,
) -> Result<BumperGains> {
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
        let p = episode_parts(bumpers, voices, &plan.fades, as_mastered, plain);
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
            let p = episode_parts(bumpers, voices, &plan.fades, blocks, gains);
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
    Ok(BumperGains {
        gains,
        trim_db: trim,
        predicted_lufs: predicted,
    })
}
