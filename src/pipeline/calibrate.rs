//! Loudness calibration through the limiter, in (usually) one pass.
//!
//! A limiter lowers loudness by an amount that depends on the signal, so the
//! gain that brings the *limited* signal to the target is not known in
//! advance. The first pass records, per 100 ms hop of the trimmed recording,
//! its sample peak and energy ([`HopStats`]); from them [`predicted_loss`]
//! estimates what the limiter will take at a given gain, erring on the high
//! side. The calibration pass then runs gain → limiter once at the predicted
//! gain, measures the limited signal and spools it; because the estimate is
//! high, the result is usually a little loud, and a plain attenuation after
//! the limiter (which scales loudness exactly and only lowers peaks) puts it
//! on target. Only when the limited signal comes out quieter than the target
//! (or far louder) does a further pass run, with the gain corrected by a
//! secant step.

use std::thread;

use crate::audio::ahead::read_ahead;
use crate::audio::units::{frames_to_secs, gain_to_db};
use crate::audio::{drain, Block, BlockSink, Processed, Source};
use crate::dsp::limiter::{Limiter, MARGIN_DB};
use crate::error::{Error, Result, Stage};
use crate::loudness::{Gain, GainPlan, Measures, Meter};
use crate::pipeline::control::{StageProgress, Watch};
use crate::pipeline::recording::{Analysed, Reread};
use crate::pipeline::spool::{Spool, SpoolReader, SpoolWriter};
use crate::report::RecordingReport;
use crate::settings::Settings;

/// A source read through a true-peak [`Limiter`] (same length, aligned).
pub(crate) type Limited<S> = Processed<S, Limiter>;

/// Limits `inner` to `ceiling_dbtp`.
pub(crate) fn limited<S: Source>(inner: S, ceiling_dbtp: f64) -> Limited<S> {
    let limiter = Limiter::new(inner.channels(), inner.sample_rate(), ceiling_dbtp);
    Processed::new(inner, limiter)
}

/// A recording calibrated at one ceiling: what its renders read.
pub(crate) struct Calibrated {
    /// Named in errors and logs.
    pub(crate) subject: String,
    /// The trimmed recording when the limiter has nothing to do, else the
    /// limited one.
    spool: Spool,
    /// The gain applied to `spool` when rendering: the whole plan for the
    /// trimmed recording, the trim after the limiter for the limited one.
    plan: GainPlan,
    /// The 100 ms block energies of `spool`, before `plan`.
    pub(crate) blocks: Vec<f64>,
    /// The recording's report, complete: the first pass's with the gain and
    /// the passes through the limiter that calibration took.
    pub(crate) report: RecordingReport,
}

impl Calibrated {
    /// The recording as rendered.
    pub(crate) fn source(&self) -> Result<Gain<SpoolReader>> {
        Ok(Gain::new(self.spool.open()?, &self.plan))
    }

    /// Its length in frames.
    pub(crate) fn frames(&self) -> u64 {
        self.spool.frames()
    }

    /// The gain `blocks` get when rendered, dB.
    pub(crate) fn render_gain_db(&self) -> f64 {
        self.plan.gain_db
    }
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
pub(crate) fn secant_slope(last: Option<(f64, f64)>, gain: f64, loud: f64) -> f64 {
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

/// Finds the gain that puts the limited recording on target at `ceiling`
/// and spools the limited recording: one pass of gain → limiter → meter at
/// the predicted gain, then a trim after the limiter, or more passes with
/// secant steps when the pass came out under the target or more than
/// [`MAX_TRIM_DB`] over it (at most [`MAX_PASSES`]). A recording that still
/// comes out more than [`MAX_MISS_LU`] under the target is an error.
///
/// With `reread` (the recording can be read again), the first pass writes
/// the limited recording into the trimmed spool's own file, so the disk
/// holds one of the two; the trimmed recording, when a later pass (or a
/// later render) needs it, is then read again ([`Analysed::trimmed`]).
/// Without, the limited spool is written beside the trimmed one.
pub(crate) fn calibrate(
    a: &mut Analysed,
    reread: Option<Reread<'_>>,
    settings: &Settings,
    ceiling: f64,
    watch: Watch<'_>,
) -> Result<Calibrated> {
    let rate = settings.sample_rate;
    let target = settings.loudness.integrated_lufs;
    let base = target - a.measurement.integrated_lufs;
    let mut plan = GainPlan {
        gain_db: base,
        ..a.plan.clone()
    };
    let peak_after_gain = a.measurement.true_peak_dbtp + base;
    // Beside the trimmed recording's spool, in the same private directory.
    let limited_path = a.path.with_extension("limited.f32");
    if plan.curve.is_none() && peak_after_gain <= ceiling - 0.1 {
        // Linear gain, limiter idle: loudness scales exactly with the gain.
        return Ok(Calibrated {
            subject: a.subject.clone(),
            spool: a.trimmed(reread, &limited_path)?.clone(),
            plan,
            blocks: a.blocks.clone(),
            report: RecordingReport {
                gain_db: base,
                calibration_passes: 0,
                ..a.report.clone()
            },
        });
    }
    plan.gain_db = predicted_gain(&a.hops, &plan, base, ceiling - MARGIN_DB);
    let mut last: Option<(f64, f64)> = None;
    // The last pass: its gain, its spool and blocks, how far under the
    // target it came out, and the trim after the limiter it needs.
    let mut spooled = None;
    // The loudest any pass came out (for the error when none reaches the target).
    let mut loudest = f64::NEG_INFINITY;
    let mut passes = 0;
    while passes < MAX_PASSES {
        passes += 1;
        let trimmed = a.trimmed(reread, &limited_path)?;
        let total_s = Some(frames_to_secs(trimmed.frames(), rate));
        // The first pass over a recording that can be read again limits its
        // trimmed spool in place (a miss reads it again); later passes
        // keep it and spool beside it.
        let (reader, out) = if passes == 1 && reread.is_some() {
            let trimmed = (a.take_trimmed()).ok_or_else(|| internal(&a.subject, "no spool"))?;
            trimmed.rewrite(&limited_path, 1)?
        } else {
            (
                trimmed.open()?,
                SpoolWriter::create(&limited_path, rate, 1)?,
            )
        };
        let (mut meter, spool, ()) = thread::scope(|s| {
            // Gain and limiter on one thread, measure and spool on this one.
            let (mut src, ()) = read_ahead(s, &a.subject, 8, || {
                Ok((limited(Gain::new(reader, &plan), ceiling), ()))
            })?;
            drain(
                &mut src,
                (
                    Meter::new(1, rate, Measures::INTEGRATED)?,
                    out,
                    StageProgress::new(watch, "calibrating", &a.subject, rate, total_s),
                ),
            )
        })?;
        let loud = meter.measurement()?.integrated_lufs;
        let err = target - loud;
        loudest = loudest.max(loud);
        let g = plan.gain_db;
        spooled = Some((
            g,
            spool,
            meter.take_block_energies(),
            err.max(0.0),
            err.min(0.0),
        ));
        if (-MAX_TRIM_DB..MAX_SHORT_LU).contains(&err) {
            break;
        }
        let slope = secant_slope(last, g, loud);
        last = Some((g, loud));
        // Aim a little high: the trim after the limiter takes the rest.
        plan.gain_db = g + err / slope + AIM_OVER_DB;
    }
    let (gain, spool, blocks, under, trim) =
        spooled.ok_or_else(|| internal(&a.subject, "no pass"))?;
    if under > MAX_MISS_LU {
        return Err(Error::stage(
            &a.subject,
            Stage::Loudness,
            format!(
                "calibration: after {MAX_PASSES} passes through the limiter it reaches at most {loudest:.2} LUFS, {:.2} LU under the {target} LUFS target (its peaks are too high for its loudness at the {ceiling:.1} dBTP ceiling: clicks, bursts or distortion?); lower --loudness, raise --true-peak, or record it again",
                target - loudest
            ),
        ));
    }
    Ok(Calibrated {
        subject: a.subject.clone(),
        spool,
        plan: GainPlan {
            gain_db: trim,
            curve: None,
            hop: plan.hop,
        },
        blocks,
        report: RecordingReport {
            gain_db: gain + trim,
            calibration_passes: passes,
            ..a.report.clone()
        },
    })
}

fn internal(subject: &str, what: &str) -> Error {
    Error::stage(subject, Stage::Loudness, format!("internal error: {what}"))
}

/// Per-hop sample peak and energy of a mono recording, for
/// [`predicted_loss`]; 8 bytes per hop (about 290 kB per hour at 100 ms).
#[derive(Debug, Clone, Default)]
pub struct HopStats {
    hop: usize,
    in_hop: usize,
    peak: f32,
    energy: f32,
    /// Per completed hop: `(sample peak, mean square)`.
    hops: Vec<(f32, f32)>,
}

impl HopStats {
    /// Statistics over hops of `hop` frames (at least 1).
    pub fn new(hop: usize) -> Self {
        HopStats {
            hop: hop.max(1),
            ..HopStats::default()
        }
    }

    /// Feeds mono samples.
    pub fn add(&mut self, samples: &[f32]) {
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (self.hop - self.in_hop).min(rest.len());
            let (now, later) = rest.split_at(take);
            for &x in now {
                self.peak = self.peak.max(x.abs());
                self.energy += x * x;
            }
            self.in_hop += take;
            if self.in_hop == self.hop {
                self.close();
            }
            rest = later;
        }
    }

    fn close(&mut self) {
        if self.in_hop > 0 {
            let ms = self.energy / self.in_hop as f32;
            self.hops.push((self.peak, ms));
        }
        self.in_hop = 0;
        self.peak = 0.0;
        self.energy = 0.0;
    }

    /// Completed hops: `(sample peak, mean square)` each.
    pub fn hops(&self) -> &[(f32, f32)] {
        &self.hops
    }
}

/// Takes mono blocks (channel 0); `finish` closes the last, partial hop.
impl BlockSink for HopStats {
    type Output = HopStats;

    fn write(&mut self, block: &Block) -> Result<()> {
        self.add(block.channel(0));
        Ok(())
    }

    fn finish(mut self) -> Result<HopStats> {
        self.close();
        Ok(self)
    }
}

/// How far (in dB) the leveller curve of `plan` and a limiter with threshold
/// `thresh_db` (dBFS) are expected to lower the loudness of the recording
/// described by `stats` below what `plan.gain_db` alone would give
/// (negative when the curve raises it more than the limiter takes).
///
/// Model: the curve's gain applies per hop; every hop whose peak after gain exceeds the threshold loses the
/// whole excess over the whole hop, and 37 % of it (one release time
/// constant) over the next hop; hops more than 20 dB under the loudest
/// hops' mean level are left out, as loudness gating would. A real limiter
/// only dips around each peak, so the estimate is high, which is the side
/// calibration wants (see the [module documentation](self)).
pub fn predicted_loss(stats: &HopStats, plan: &GainPlan, thresh_db: f64) -> f64 {
    let hops = stats.hops();
    if hops.is_empty() {
        return 0.0;
    }
    let gain_at = |k: usize| -> f64 {
        let curve = plan.curve.as_deref().unwrap_or(&[]);
        let c = if curve.is_empty() {
            0.0
        } else {
            f64::from(curve[k.min(curve.len() - 1)])
        };
        plan.gain_db + c
    };
    // Relative gate on the hops' mean level (energy-weighted mean, like BS.1770).
    let mean: f64 = hops.iter().map(|h| f64::from(h.1)).sum::<f64>() / hops.len() as f64;
    if mean <= 0.0 {
        return 0.0;
    }
    let gate = mean * 0.01;
    let (mut before, mut after) = (0.0f64, 0.0f64);
    let mut carry = 0.0f64;
    for (k, &(peak, ms)) in hops.iter().enumerate() {
        let g = gain_at(k);
        let over = if peak > 0.0 {
            (gain_to_db(f64::from(peak)) + g - thresh_db).max(0.0)
        } else {
            0.0
        };
        let cut = over.max(carry);
        carry = cut * 0.37;
        let ms = f64::from(ms);
        if ms < gate {
            continue;
        }
        before += ms * 10f64.powf(plan.gain_db / 10.0);
        after += ms * 10f64.powf((g - cut) / 10.0);
    }
    if before <= 0.0 || after <= 0.0 {
        return 0.0;
    }
    10.0 * (before / after).log10()
}

/// Most gain [`predicted_gain`] adds to make up for the predicted loss, in dB.
pub const MAX_MAKEUP_DB: f64 = 6.0;

/// The gain (dB) at which the limited signal is predicted to reach the
/// loudness that `base_db` of gain would give without leveller and limiter:
/// the `g` with `g - predicted_loss(g) = base_db`, found by bisection (the
/// left side never falls as `g` rises: a limiter cannot take back more than
/// the gain added), at most [`MAX_MAKEUP_DB`] above `base_db`.
pub fn predicted_gain(stats: &HopStats, plan: &GainPlan, base_db: f64, thresh_db: f64) -> f64 {
    let mut p = plan.clone();
    let mut reached = |g: f64| {
        p.gain_db = g;
        g - predicted_loss(stats, &p, thresh_db)
    };
    let (mut lo, mut hi) = (base_db - MAX_MAKEUP_DB, base_db + MAX_MAKEUP_DB);
    if reached(hi) <= base_db {
        return hi;
    }
    if reached(lo) >= base_db {
        return lo;
    }
    while hi - lo > 0.005 {
        let mid = 0.5 * (lo + hi);
        if reached(mid) < base_db {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(gain_db: f64) -> GainPlan {
        GainPlan {
            gain_db,
            curve: None,
            hop: 10,
        }
    }

    #[test]
    fn hop_stats_record_peak_and_energy_per_hop() {
        let mut s = HopStats::new(4);
        s.add(&[0.5, -1.0, 0.0, 0.0, 0.25]);
        s.add(&[0.25, 0.25, 0.25, 0.1]);
        let s = s.finish().unwrap();
        assert_eq!(s.hops().len(), 3);
        assert_eq!(s.hops()[0], (1.0, 1.25 / 4.0));
        assert_eq!(s.hops()[1], (0.25, 0.0625));
        assert!((s.hops()[2].1 - 0.01).abs() < 1e-7);
    }

    #[test]
    fn loss_is_zero_under_the_threshold_and_grows_with_gain() {
        let mut s = HopStats::new(100);
        let sig: Vec<f32> = (0..10_000)
            .map(|i| if (i / 100) % 5 == 0 { 0.9 } else { 0.3 })
            .collect();
        s.add(&sig);
        let s = s.finish().unwrap();
        assert_eq!(predicted_loss(&s, &plan(-3.0), -1.0), 0.0);
        let a = predicted_loss(&s, &plan(3.0), -1.0);
        let b = predicted_loss(&s, &plan(6.0), -1.0);
        assert!(a > 0.5 && b > a, "{a} {b}");
        // The predicted gain makes up for the predicted loss at that gain.
        let g = predicted_gain(&s, &plan(0.0), 3.0, -1.0);
        assert!(g > 3.5, "{g}");
        assert!((g - 3.0 - predicted_loss(&s, &plan(g), -1.0)).abs() < 0.02);
        // Loudness that the limiter would take back entirely: capped.
        let mut flat = HopStats::new(100);
        flat.add(&vec![0.9; 10_000]);
        let flat = flat.finish().unwrap();
        let capped = predicted_gain(&flat, &plan(0.0), 3.0, -1.0);
        assert!((capped - 3.0 - MAX_MAKEUP_DB).abs() < 0.01, "{capped}");
        // Under the threshold nothing is added.
        assert!((predicted_gain(&s, &plan(0.0), -3.0, -1.0) + 3.0).abs() < 0.01);
    }
}
