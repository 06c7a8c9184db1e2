//! Issue 12: finding the speech in real recordings. Each fault (DC offset,
//! anti-phase or one-sided stereo, a noise floor above the threshold, a
//! recording of noise alone, a loudness calibration cannot reach) is made in
//! the test from the committed speech fixtures plus synthetic noise, offset
//! or inversion, and checked against a known answer.

use podstitch::analyze;
use podstitch::SilenceSettings;
use podstitch::{Input, Quiet, Report, Settings, Stage};

mod common;
use common::{check_outputs, decode_path, fixture, noise, stitch_in_memory, wav_bytes};

/// The caller fixture's speech (two sentences, a 1.7 s pause, a pink-noise
/// floor at about −58 dBFS), decoded: (rate, mono samples).
fn caller_speech() -> (u32, Vec<f32>) {
    let (rate, b) = decode_path(&fixture("caller.webm"));
    (rate, b.channel(0).to_vec())
}

fn run(
    call: Vec<u8>,
    settings: &Settings,
) -> (podstitch::Outputs<std::io::Cursor<Vec<u8>>>, Report) {
    stitch_in_memory(
        Input::Bytes(call),
        Input::Path(fixture("response.ogg")),
        settings,
        &Quiet,
    )
}

/// The error of a run with `call` beside the response fixture, whichever
/// recording it names (the first to fail is reported).
fn stitch_err(call: Vec<u8>, settings: &Settings) -> podstitch::Error {
    let mut out = podstitch::Outputs::in_memory();
    let err = podstitch::stitch(
        Input::Bytes(call),
        Input::Path(fixture("response.ogg")),
        podstitch::Bumpers::embedded(),
        &mut out,
        settings,
        &Quiet,
    )
    .expect_err("must fail");
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "one line: {msg}");
    err
}

/// [`stitch_err`], checked to be the caller's.
fn run_err(call: Vec<u8>, settings: &Settings) -> podstitch::Error {
    let err = stitch_err(call, settings);
    let msg = err.to_string();
    assert!(msg.starts_with("caller recording ("), "{msg}");
    err
}

/// Mean of the decoded caller segment (its DC offset).
fn segment_dc(out: &podstitch::Outputs<std::io::Cursor<Vec<u8>>>) -> f64 {
    let (_, b) = common::decode_bytes("caller segment", out.caller_segment.get_ref().clone());
    let x = b.channel(0);
    x.iter().map(|&v| f64::from(v)).sum::<f64>() / x.len() as f64
}

/// The trimming figures of a report, to compare two runs.
fn cuts(r: &Report) -> (String, usize, String, String) {
    (
        format!("{:.6}", r.caller.leading_trimmed_s),
        r.caller.pauses_shortened,
        format!("{:.6}", r.caller.pause_removed_s),
        format!("{:.6}", r.caller.duration_s),
    )
}

#[test]
fn a_dc_offset_trims_at_the_same_positions_and_leaves_no_offset() {
    let (rate, speech) = caller_speech();
    let (clean_out, clean) = run(wav_bytes(rate, &[&speech]), &Settings::default());
    check_outputs("clean", &clean_out, &clean);
    assert!(
        clean.caller.pauses_shortened >= 1,
        "the fixture has a 1.7 s pause"
    );
    for dc in [0.01f32, 0.02, 0.25] {
        let shifted: Vec<f32> = speech.iter().map(|v| v + dc).collect();
        let (out, r) = run(wav_bytes(rate, &[&shifted]), &Settings::default());
        let ctx = format!("DC {dc}");
        assert_eq!(cuts(&r), cuts(&clean), "{ctx}: cut positions");
        check_outputs(&ctx, &out, &r);
        assert!(r.caller.calibration_passes <= 2, "{ctx}: {r:?}");
        let m = segment_dc(&out);
        assert!(m.abs() < 0.001, "{ctx}: segment DC {m}");
        // Without the high-pass the same input trims differently (so the
        // comparison above can fail): the offset is above -50 dBFS everywhere.
        if dc == 0.02 {
            let off = Settings {
                highpass_hz: 0.0,
                ..Settings::default()
            };
            let (_, r0) = run(wav_bytes(rate, &[&shifted]), &off);
            assert_ne!(cuts(&r0), cuts(&clean), "{ctx} without high-pass");
        }
    }
}

/// Integrated loudness of mono `x` at `rate` by the ebur128 crate (the
/// independent reference).
fn ebur128_lufs(rate: u32, x: &[f32]) -> f64 {
    let mut m = ebur128::EbuR128::new(1, rate, ebur128::Mode::I).unwrap();
    m.add_frames_f32(x).unwrap();
    m.loudness_global().unwrap()
}

#[test]
fn anti_phase_and_one_sided_stereo_keep_the_voice_level() {
    let (rate, speech) = caller_speech();
    let reference = ebur128_lufs(rate, &speech);
    let (_, mono) = run(wav_bytes(rate, &[&speech]), &Settings::default());
    assert_eq!(mono.caller.downmix, "mono");
    let inverted: Vec<f32> = speech.iter().map(|v| -v).collect();
    let hiss = noise(speech.len(), 0.0003, 99); // a dead channel's hiss, about -76 dBFS
    let cases: [(&str, Vec<&[f32]>, &str); 3] = [
        ("anti-phase", vec![&speech, &inverted], "difference"),
        ("left only", vec![&speech, &hiss], "channel 1"),
        ("right only", vec![&hiss, &speech], "channel 2"),
    ];
    for (what, chans, rule) in cases {
        let (out, r) = run(wav_bytes(rate, &chans), &Settings::default());
        check_outputs(what, &out, &r);
        assert_eq!(r.caller.input_channels, 2);
        assert_eq!(r.caller.downmix, rule, "{what}");
        let lufs = r.caller.input_integrated_lufs;
        // Within 1 LU of the mono source measured by ebur128 (trimming
        // removes only the quietest parts, which the gate ignores anyway),
        // and of the mono run's own figure.
        assert!(
            (lufs - reference).abs() <= 1.0,
            "{what}: {lufs} vs source {reference}"
        );
        assert!(
            (lufs - mono.caller.input_integrated_lufs).abs() <= 0.1,
            "{what}: {lufs} vs mono run {}",
            mono.caller.input_integrated_lufs
        );
    }
    let (_, r) = run(wav_bytes(rate, &[&speech, &inverted]), &Settings::default());
    assert!(
        r.caller.channel_correlation.unwrap() < -0.99,
        "{:?}",
        r.caller
    );
}

#[test]
fn speech_after_minutes_of_noise_is_found() {
    // Four minutes of room noise at -46 dBFS RMS, then the speech (16 kHz
    // clip, twice with 0.5 s between), the noise going on under it and for
    // 0.3 s after it.
    let (rate, clip) = decode_path(&fixture("speech-s16.wav"));
    let clip = clip.channel(0).to_vec();
    let lead = rate as usize * 240;
    let gap = rate as usize / 2;
    let tail = rate as usize * 3 / 10;
    let speech_len = 2 * clip.len() + gap;
    let amp = 10f32.powf(-46.0 / 20.0) * 3f32.sqrt(); // uniform noise: RMS = amp/√3
    let mut x = noise(lead + speech_len + tail, amp, 7);
    for (i, &v) in clip.iter().enumerate() {
        x[lead + i] += v;
        x[lead + clip.len() + gap + i] += v;
    }
    let (out, r) = run(wav_bytes(rate, &[&x]), &Settings::default());
    let c = &r.caller;
    assert!(c.threshold_adapted, "{c:?}");
    let floor = c.noise_floor_dbfs.unwrap();
    assert!((floor + 46.0).abs() < 1.0, "floor {floor}");
    assert!((c.silence_threshold_db - (floor + 6.0)).abs() < 1e-9);
    let want = speech_len as f64 / f64::from(rate);
    let got = r.caller_segment.duration_s;
    assert!(
        (got - want).abs() <= (0.1 * want).max(1.0),
        "segment {got} s, speech {want} s"
    );
    // Pauses checked at the threshold the report gives, moved by the gain
    // the recording received (the floor moved with it).
    let at = SilenceSettings {
        threshold_db: c.silence_threshold_db + c.gain_db,
        ..SilenceSettings::default()
    };
    let a = analyze(
        "caller segment",
        Input::Bytes(out.caller_segment.get_ref().clone()),
        &at,
    )
    .unwrap();
    assert!(a.longest_pause_s <= 1.05, "{a:?}");
    assert!(a.leading_silence_s <= 0.030, "{a:?}");
    assert!((a.integrated_lufs + 16.0).abs() <= 0.3, "{a:?}");
    // An explicit threshold is used as given: at -50 dBFS the noise is sound.
    let fixed = Settings {
        silence: SilenceSettings {
            adaptive: false,
            ..SilenceSettings::default()
        },
        ..Settings::default()
    };
    let (_, r) = run(wav_bytes(rate, &[&x]), &fixed);
    assert!(!r.caller.threshold_adapted);
    assert!(
        r.caller_segment.duration_s > 200.0,
        "{:?}",
        r.caller_segment
    );
}

#[test]
fn a_recording_of_noise_alone_is_called_noise_not_silence() {
    let amp = 10f32.powf(-46.0 / 20.0) * 3f32.sqrt();
    let err = run_err(
        wav_bytes(16_000, &[&noise(16_000 * 60, amp, 3)]),
        &Settings::default(),
    );
    let msg = err.to_string();
    assert_eq!(err.stage_of(), Some(Stage::Silence));
    assert!(msg.contains("holds only background noise"), "{msg}");
    assert!(!msg.contains("microphone on"), "{msg}");
    // A quieter room (floor under -56 dBFS, threshold kept at -50): the same.
    let amp = 10f32.powf(-62.0 / 20.0) * 3f32.sqrt();
    let msg = run_err(
        wav_bytes(16_000, &[&noise(16_000 * 20, amp, 4)]),
        &Settings::default(),
    )
    .to_string();
    assert!(msg.contains("holds only background noise"), "{msg}");
}

#[test]
fn a_loudness_the_limiter_cannot_reach_is_an_error() {
    // A target of -3 LUFS under a -10 dBTP ceiling: the limiters work at
    // -11 dBTP, and no signal peaking there measures more than about -7 LUFS
    // (a full-scale square wave gains at most the K-weighting's +4 dB shelf).
    let (rate, speech) = caller_speech();
    let mut s = Settings::default();
    s.loudness.integrated_lufs = -3.0;
    s.loudness.true_peak_dbtp = -10.0;
    // Neither recording can reach it: the one that fails first is named.
    let err = stitch_err(wav_bytes(rate, &[&speech]), &s);
    let msg = err.to_string();
    assert!(
        msg.starts_with("caller recording (") || msg.starts_with("response recording ("),
        "{msg}"
    );
    assert_eq!(err.stage_of(), Some(Stage::Loudness), "{msg}");
    assert!(msg.contains("calibration: after 6 passes"), "{msg}");
    assert!(msg.contains("LU under the -3 LUFS target"), "{msg}");
}
