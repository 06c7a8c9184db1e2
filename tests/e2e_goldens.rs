//! Golden group 4 (and 5 on these inputs): end-to-end goldens. Two short
//! caller/response pairs are rendered with `podstitch::stitch`,
//! `Settings::default()` (on a named encoder path) and the embedded bumpers, outputs in memory, and
//! each of the three MP3s is compared with the one committed under
//! `fixtures/golden/e2e/PAIR/`:
//!
//! * the same decoded length in frames and the same channel count;
//! * decoded audio within 50 dB SNR of the golden's;
//! * integrated loudness within 0.1 LU and true peak within 0.1 dB of the
//!   golden's (both measured here on the decoded files).
//!
//! Byte-identity is reported but not required: the bytes depend on every
//! float operation upstream of LAME (rustfft/rubato pick SIMD code paths at
//! run time, and other platforms round differently), so a different CPU can
//! encode a slightly different, equally good file. On the machine that
//! blessed them the outputs are byte-identical (the pipeline is
//! deterministic: fixed inputs, no randomness, no thread-order dependence in
//! the arithmetic), which the test prints.
//!
//! Pairs:
//! * `webm-ogg`: `caller.webm` (WebM/Opus, a 1.7 s pause in a noise floor
//!   at about −58 dBFS) + `response.ogg` (Ogg/Opus, a 1.8 s digital-silence
//!   pause, leading silence);
//! * `loud-quiet`: a caller louder than the target (`speech-s24.wav` +10 dB
//!   and soft-clipped with tanh: about −11 LUFS, peaks near 0 dBFS) and a
//!   response much quieter (`speech-8k.wav` −15 dB: about −36 LUFS), both
//!   passed as float WAV bytes built here from the fixtures with hound.
//!
//! * `webm-ogg-keep`: the first pair's episode with
//!   `BumperLoudness::Keep`, which must play the bumpers exactly as before
//!   issue 13. Its golden was, when added, the `webm-ogg` episode blessed
//!   before bumper levelling existed: its decoded samples are compared,
//!   the ID3 tag (which now carries chapters) is not.
//!
//! Encoder paths: each pair is rendered on both (`Settings::encoder`): the
//! chunked path (what `Auto` runs, on any number of CPUs) against
//! `fixtures/golden/e2e/PAIR/`, the single encoder against
//! `fixtures/golden/e2e/PAIR-single/`, and the single encoder's `webm-ogg`
//! outputs also against the chunked goldens, within the bounds of two
//! encodes of the same audio.
//!
//! `PODSTITCH_BLESS=1 cargo test --test e2e_goldens` rewrites the goldens.
//! On a failure the candidate MP3s are written to
//! `$TMPDIR/podstitch-golden-candidates/e2e/PAIR/` to listen to beside the
//! golden.

mod common;

use std::io::Cursor;

use podstitch::stages::{Measures, Meter};
use podstitch::{BumperLoudness, EncoderPath};
use podstitch::{Input, Outputs, Quiet, Report, Settings};

use common::{
    bless, blessing, check_outputs, decode_bytes, fixture, golden_path, snr_db, stitch_in_memory,
    wav_bytes, write_candidate,
};

const MIN_SNR_DB: f64 = 50.0;
const MAX_LUFS_DIFF: f64 = 0.1;
const MAX_TP_DIFF: f64 = 0.1;
/// The single encoder's outputs against the chunked path's goldens: two
/// encodes of the same audio, which differ where the chunked path's
/// encoders started (their pre-roll) and in LAME's bit reservoir.
const MIN_PATHS_SNR_DB: f64 = 50.0;

/// The default settings on the encoder path `encoder`, which each golden
/// names (the two paths' bytes differ).
fn render(
    call: Input,
    response: Input,
    encoder: EncoderPath,
) -> (Outputs<Cursor<Vec<u8>>>, Report) {
    let settings = Settings {
        encoder,
        ..Settings::default()
    };
    stitch_in_memory(call, response, &settings, &Quiet)
}

/// The goldens' directory of `pair` on `encoder`: `e2e/PAIR` for the
/// chunked path, `e2e/PAIR-single` for the single encoder.
fn pair_dir(pair: &str, encoder: EncoderPath) -> String {
    match encoder {
        EncoderPath::Single => format!("{pair}-single"),
        _ => pair.to_string(),
    }
}

/// Samples of a PCM WAV fixture as f32 (any bit depth hound reads).
fn read_wav(name: &str) -> (u32, Vec<f32>) {
    let mut r = hound::WavReader::open(fixture(name)).expect("wav fixture");
    let spec = r.spec();
    assert_eq!(spec.channels, 1, "{name}: mono");
    let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f64;
    let x = match spec.sample_format {
        hound::SampleFormat::Int => r
            .samples::<i32>()
            .map(|s| (f64::from(s.expect("sample")) * scale) as f32)
            .collect(),
        hound::SampleFormat::Float => r.samples::<f32>().map(|s| s.expect("sample")).collect(),
    };
    (spec.sample_rate, x)
}

/// Measured figures of one decoded output.
struct Figures {
    frames: usize,
    channels: usize,
    lufs: f64,
    tp: f64,
}

fn figures(planes: &[&[f32]]) -> Figures {
    let mut m = Meter::new(planes.len(), 44_100, Measures::LOUDNESS_AND_PEAK).expect("meter");
    m.add(planes).expect("meter");
    let r = m.measurement().expect("meter");
    Figures {
        frames: planes[0].len(),
        channels: planes.len(),
        lufs: r.integrated_lufs,
        tp: r.true_peak_dbtp,
    }
}

/// Compares (or blesses) the three outputs of one pair.
fn check_pair(pair: &str, out: &Outputs<Cursor<Vec<u8>>>) {
    let files = [
        ("episode.mp3", out.episode.get_ref()),
        ("caller-segment.mp3", out.caller_segment.get_ref()),
        ("response-segment.mp3", out.response_segment.get_ref()),
    ];
    if blessing() {
        for (name, bytes) in files {
            bless(&format!("e2e/{pair}/{name}"), bytes);
        }
        return;
    }
    let mut problems = Vec::new();
    let mut lines = Vec::new();
    for (name, bytes) in files {
        let rel = format!("e2e/{pair}/{name}");
        let golden = std::fs::read(golden_path(&rel)).unwrap_or_else(|e| {
            panic!("{rel}: cannot read the golden ({e}); run PODSTITCH_BLESS=1 cargo test to create it")
        });
        let (_, g) = decode_bytes(&rel, golden.clone());
        let (_, c) = decode_bytes(name, bytes.clone());
        let (gf, cf) = (figures(&g.planes()), figures(&c.planes()));
        let mut bad = Vec::new();
        if (gf.frames, gf.channels) != (cf.frames, cf.channels) {
            bad.push(format!(
                "length {} x {} ch (golden {} x {} ch, {:+} frames)",
                cf.frames,
                cf.channels,
                gf.frames,
                gf.channels,
                cf.frames as i64 - gf.frames as i64
            ));
        }
        let snr = if bad.is_empty() {
            snr_db(&g.planes(), &c.planes())
        } else {
            f64::NAN
        };
        if snr < MIN_SNR_DB {
            bad.push(format!("SNR {snr:.1} dB < {MIN_SNR_DB} dB"));
        }
        if (cf.lufs - gf.lufs).abs() > MAX_LUFS_DIFF {
            bad.push(format!(
                "loudness {:.3} LUFS (golden {:.3}, {:+.3} LU > {MAX_LUFS_DIFF})",
                cf.lufs,
                gf.lufs,
                cf.lufs - gf.lufs
            ));
        }
        if (cf.tp - gf.tp).abs() > MAX_TP_DIFF {
            bad.push(format!(
                "true peak {:.3} dBTP (golden {:.3}, {:+.3} dB > {MAX_TP_DIFF})",
                cf.tp,
                gf.tp,
                cf.tp - gf.tp
            ));
        }
        let identical = golden == *bytes;
        lines.push(format!(
            "{pair}/{name}: {} frames, SNR {snr:.1} dB, {:.3} LUFS ({:+.3}), {:.3} dBTP ({:+.3}), byte-identical: {}",
            cf.frames,
            cf.lufs,
            cf.lufs - gf.lufs,
            cf.tp,
            cf.tp - gf.tp,
            if identical { "yes" } else { "no" }
        ));
        if !bad.is_empty() {
            let cand = write_candidate(&rel, bytes);
            problems.push(format!(
                "{rel}: {}\n    candidate: {}\n    golden:    {}",
                bad.join("; "),
                cand.display(),
                golden_path(&rel).display()
            ));
        }
    }
    println!("{}", lines.join("\n"));
    assert!(
        problems.is_empty(),
        "end-to-end golden {pair} differs:\n  {}\n(if the change is intended: PODSTITCH_BLESS=1 cargo test)",
        problems.join("\n  ")
    );
}

fn webm_ogg(encoder: EncoderPath) -> Outputs<Cursor<Vec<u8>>> {
    let (out, report) = render(
        Input::Path(fixture("caller.webm")),
        Input::Path(fixture("response.ogg")),
        encoder,
    );
    check_outputs("webm-ogg", &out, &report);
    check_pair(&pair_dir("webm-ogg", encoder), &out);
    out
}

#[test]
fn golden_webm_opus_with_pauses_and_noise_floor_and_ogg_opus() {
    webm_ogg(EncoderPath::Chunked);
}

/// The single encoder (`--encoder single`): its own goldens,
/// and the same audio as the chunked path's goldens within the bounds of a
/// re-encode: the same length, and SNR over [`MIN_PATHS_SNR_DB`] (measured:
/// the episode, two chunks on the chunked path, 61.7 dB; the segments, one
/// chunk each, decode to identical samples).
#[test]
fn golden_webm_opus_on_the_single_encoder_path() {
    let single = webm_ogg(EncoderPath::Single);
    if blessing() {
        return;
    }
    for (name, bytes) in [
        ("episode.mp3", single.episode.get_ref()),
        ("caller-segment.mp3", single.caller_segment.get_ref()),
        ("response-segment.mp3", single.response_segment.get_ref()),
    ] {
        let rel = format!("e2e/webm-ogg/{name}");
        let chunked = std::fs::read(golden_path(&rel)).expect("the chunked golden");
        let (_, c) = decode_bytes(&rel, chunked);
        let (_, s) = decode_bytes(name, bytes.clone());
        assert_eq!(
            (s.frames(), s.channels()),
            (c.frames(), c.channels()),
            "{name}: length"
        );
        let snr = snr_db(&c.planes(), &s.planes());
        println!("{name}: single vs chunked SNR {snr:.1} dB");
        assert!(
            snr > MIN_PATHS_SNR_DB,
            "{name}: single vs chunked SNR {snr:.1} dB"
        );
    }
}

#[test]
fn golden_loud_caller_and_quiet_response() {
    loud_quiet(EncoderPath::Chunked);
}

#[test]
fn golden_loud_caller_and_quiet_response_on_the_single_encoder_path() {
    loud_quiet(EncoderPath::Single);
}

fn loud_quiet(encoder: EncoderPath) {
    let (rate, speech) = read_wav("speech-s24.wav");
    let gain = 10f64.powf(10.0 / 20.0);
    let loud: Vec<f32> = speech
        .iter()
        .map(|&s| (f64::from(s) * gain).tanh() as f32)
        .collect();
    let (rate8k, resp) = read_wav("speech-8k.wav");
    let quiet: Vec<f32> = resp
        .iter()
        .map(|&s| (f64::from(s) * 10f64.powf(-15.0 / 20.0)) as f32)
        .collect();
    let (out, report) = render(
        Input::Bytes(wav_bytes(rate, &[&loud])),
        Input::Bytes(wav_bytes(rate8k, &[&quiet])),
        encoder,
    );
    // The inputs really are on both sides of the target.
    println!(
        "loud caller {:.2} LUFS, quiet response {:.2} LUFS (after trimming)",
        report.caller.input_integrated_lufs, report.response.input_integrated_lufs
    );
    assert!(
        report.caller.input_integrated_lufs > -13.0,
        "loud caller measures {}",
        report.caller.input_integrated_lufs
    );
    assert!(
        report.response.input_integrated_lufs < -30.0,
        "quiet response measures {}",
        report.response.input_integrated_lufs
    );
    check_outputs("loud-quiet", &out, &report);
    check_pair(&pair_dir("loud-quiet", encoder), &out);
}

#[test]
fn golden_keep_plays_the_bumpers_as_before() {
    let settings = Settings {
        bumper_loudness: BumperLoudness::Keep,
        encoder: EncoderPath::Chunked,
        ..Settings::default()
    };
    let (out, _) = stitch_in_memory(
        Input::Path(fixture("caller.webm")),
        Input::Path(fixture("response.ogg")),
        &settings,
        &Quiet,
    );
    let rel = "e2e/webm-ogg-keep/episode.mp3";
    let bytes = out.episode.get_ref();
    if blessing() {
        bless(rel, bytes);
        return;
    }
    let golden = std::fs::read(golden_path(rel)).expect("the keep golden");
    let (_, g) = decode_bytes(rel, golden);
    let (_, c) = decode_bytes("episode", bytes.clone());
    assert_eq!(g.frames(), c.frames(), "length");
    let identical = g.planes() == c.planes();
    let snr = snr_db(&g.planes(), &c.planes());
    println!("webm-ogg-keep/episode.mp3: SNR {snr:.1} dB, decoded samples identical: {identical}");
    if snr < MIN_SNR_DB {
        let cand = write_candidate(rel, bytes);
        panic!(
            "{rel}: SNR {snr:.1} dB < {MIN_SNR_DB} dB\n    candidate: {}",
            cand.display()
        );
    }
}
