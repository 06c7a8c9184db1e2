//! Golden group 3: stage goldens. Small deterministic inputs through the
//! silence cutter, the crossfade mixer and the limiter; the exact outputs
//! (cut positions, lengths, gains, every sample) are stored as text under
//! `fixtures/golden/stages/` and compared: figures exactly, samples within
//! 1e-6 absolute (−120 dBFS; room only for a last-bit difference in `sin`
//! or fused multiply-add on another platform). A refactor that moves a cut
//! or a fade by one sample fails with a diff.
//!
//! `PODSTITCH_BLESS=1 cargo test --test stage_goldens` rewrites them.

mod common;

use podstitch::internals::{plan_fades, Mix, MixPart};
use podstitch::stages::Limiter;
use podstitch::stages::SilenceCutter;
use podstitch::stages::{Block, MemorySource, Source};
use podstitch::SilenceSettings;

use common::{noise, StageGolden};

const TOLERANCE: f32 = 1e-6;

fn sine(n: usize, cycles_per_frame: f64, amp: f64) -> Vec<f32> {
    (0..n)
        .map(|i| (amp * (2.0 * std::f64::consts::PI * cycles_per_frame * i as f64).sin()) as f32)
        .collect()
}

/// Silence: at 1 kHz frame counts read as milliseconds (window 20, fade 5,
/// max pause 1000). A noise floor at about −65 dBFS, two bursts of tone, a
/// 1.6 s pause and a 1.2 s trailing pause, fed in odd-sized blocks.
#[test]
fn silence_cut_positions_and_crossfades() {
    let rate = 1000;
    let mut sig = noise(3_900, 0.001, 11);
    for (start, len, freq) in [(150usize, 400usize, 0.11), (2_550, 150, 0.07)] {
        for (s, t) in sig[start..start + len].iter_mut().zip(sine(len, freq, 0.5)) {
            *s += t;
        }
    }
    let settings = SilenceSettings::default();
    let mut cutter = SilenceCutter::new(1, rate, &settings);
    let mut out = Block::new(1, 0);
    for part in sig.chunks(97) {
        cutter.process(&Block::from_channels(&[part]), &mut out);
    }
    cutter.finish(&mut out);
    let st = cutter.stats();
    let cuts: Vec<String> = st
        .cuts
        .iter()
        .map(|c| format!("{}+{}", c.at, c.len))
        .collect();
    StageGolden {
        about: vec![
            "silence stage: SilenceCutter, SilenceSettings::default(), 1 kHz mono".into(),
            "input: LCG noise (seed 11, ±0.001) + tone at 150..550 and 2550..2700; 3900 frames"
                .into(),
            "cuts: input frame where the removed span starts + its length".into(),
        ],
        figures: vec![
            ("frames_in".into(), st.frames_in.to_string()),
            ("leading_trimmed".into(), st.leading_trimmed.to_string()),
            ("cuts".into(), cuts.join(" ")),
            ("frames_out".into(), st.frames_out.to_string()),
        ],
        channels: vec![out.channel(0).to_vec()],
    }
    .check("silence", TOLERANCE);
}

/// Mixer: the five episode parts at 1 kHz with 100-frame fades and the
/// reference's curves (bumpers fade, recordings stay at full level); stereo
/// bumpers, mono recordings centred at −3 dB. Also a plan with short parts.
#[test]
fn mixer_crossfade_gains_and_length() {
    let rate = 1000;
    let stereo = |n: usize, f: f64| {
        let l = sine(n, f, 0.5);
        let r = sine(n, f * 1.5, 0.25);
        Block::from_channels(&[&l, &r])
    };
    let mono = |n: usize, f: f64| Block::from_channels(&[&sine(n, f, 0.8)]);
    let blocks = [
        ("intro", stereo(300, 0.013), false, true),
        ("caller", mono(500, 0.021), false, false),
        ("interstitial", stereo(200, 0.017), true, true),
        ("response", mono(700, 0.029), false, false),
        ("outro", stereo(400, 0.011), true, false),
    ];
    let lens: Vec<u64> = blocks.iter().map(|b| b.1.frames() as u64).collect();
    let (fades, _) = plan_fades(&lens, 100);
    let parts: Vec<MixPart> = blocks
        .iter()
        .map(|b| MixPart {
            name: b.0,
            len: b.1.frames() as u64,
            source: Box::new(MemorySource::new(rate, b.1.clone(), 61)),
            fade_in: b.2,
            fade_out: b.3,
        })
        .collect();
    let mut mix = Mix::new(parts, fades.clone(), 2).expect("mix");
    let mut out = Block::new(2, 0);
    let mut block = Block::default();
    while mix.read(&mut block).expect("mix") {
        for (d, s) in out.channels_mut().iter_mut().zip(block.planes()) {
            d.extend_from_slice(s);
        }
    }
    let total = out.frames();
    let (short, shortened) = plan_fades(&[300, 50, 30, 700, 400], 100);
    let fmt = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(" ");
    StageGolden {
        about: vec![
            "mixer: intro(st) caller(mono) interstitial(st) response(mono) outro(st), 1 kHz".into(),
            "lengths 300 500 200 700 400, fade 100; samples: left right".into(),
        ],
        figures: vec![
            ("fades".into(), fmt(&fades)),
            ("total".into(), total.to_string()),
            ("short_plan_300_50_30_700_400".into(), fmt(&short)),
            (
                "short_joins".into(),
                shortened
                    .iter()
                    .map(|s| s.join.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        ],
        channels: out.planes().iter().map(|c| c.to_vec()).collect(),
    }
    .check("mixer", TOLERANCE);
}

/// Limiter: 44.1 kHz, ceiling −1 dBTP, a 1 kHz tone at 0.3 with 500 frames
/// at 1.6 (14 dB over) in the middle, in 700-frame blocks, then flushed.
#[test]
fn limiter_gain_envelope() {
    let rate = 44_100;
    let mut x = sine(3_000, 1000.0 / 44_100.0, 0.3);
    for v in &mut x[1_000..1_500] {
        *v *= 1.6 / 0.3;
    }
    let mut lim = Limiter::new(1, rate, -1.0);
    let mut out = vec![Vec::new()];
    for part in x.chunks(700) {
        lim.process(&[part], &mut out);
    }
    lim.flush(&mut out);
    StageGolden {
        about: vec![
            "limiter: Limiter::new(1, 44100, -1.0), default look-ahead and release".into(),
            "input: 1 kHz sine at 0.3, frames 1000..1500 at 1.6; 3000 frames, 700 per call".into(),
        ],
        figures: vec![
            ("latency".into(), lim.latency().to_string()),
            ("frames_out".into(), out[0].len().to_string()),
            ("min_gain".into(), format!("{:.6}", lim.min_gain())),
        ],
        channels: out,
    }
    .check("limiter", TOLERANCE);
}
