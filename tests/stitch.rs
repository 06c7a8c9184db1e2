//! End-to-end: every input format through the whole pipeline, with the
//! properties every output must have checked on the decoded MP3s.

use std::sync::Mutex;

use podstitch::{stitch, stitch_to_dir, Bumpers, Input, Observer, Outputs, Quiet, Settings, Stage};

mod common;
use common::{bumper_frames, check_outputs, fixture, noise};

fn wav_bytes(rate: u32, samples: &[f32]) -> Vec<u8> {
    common::wav_bytes(rate, &[samples])
}

/// Collects log lines.
#[derive(Default)]
struct Logs(Mutex<Vec<String>>);

impl Observer for Logs {
    fn log(&self, line: &str) {
        self.0.lock().unwrap().push(line.to_string());
    }
}

/// Runs the pipeline into memory; returns the outputs, the report and the
/// lines logged.
fn stitch_logged(
    call: Input,
    response: Input,
    settings: &Settings,
) -> (
    Outputs<std::io::Cursor<Vec<u8>>>,
    podstitch::Report,
    Vec<String>,
) {
    let logs = Logs::default();
    let (out, report) = common::stitch_in_memory(call, response, settings, &logs);
    (out, report, logs.0.into_inner().unwrap())
}

/// Runs the pipeline on two fixtures and checks every promised property of
/// the outputs (see `common::check_outputs`: loudness, true peak, pauses,
/// leading silence, episode length, report and JSON equal to the files).
fn check_pair(call: &str, response: &str) {
    let mut out = Outputs::in_memory();
    let report = stitch(
        Input::Path(fixture(call)),
        Input::Path(fixture(response)),
        Bumpers::embedded(),
        &mut out,
        &Settings::default(),
        &Quiet,
    )
    .unwrap_or_else(|e| panic!("{call} + {response}: {e}"));
    check_outputs(&format!("{call} + {response}"), &out, &report);
    // Calibration predicts the limiter's loss and trims after it, so one
    // pass through the limiter is the rule (a second corrects a miss).
    for (name, r) in [("caller", &report.caller), ("response", &report.response)] {
        eprintln!("{name}: {} calibration pass(es)", r.calibration_passes);
        assert!(
            r.calibration_passes <= 2,
            "{call} + {response}: {name} took {} calibration passes",
            r.calibration_passes
        );
    }
}

#[test]
fn webm_opus_and_ogg_opus() {
    check_pair("caller.webm", "response.ogg");
}

#[test]
fn mp4_aac_and_mp3() {
    check_pair("caller.m4a", "response.mp3");
}

#[test]
fn fragmented_mp4_and_flac_96k() {
    check_pair("caller-frag.mp4", "response.flac");
}

#[test]
fn stereo_vorbis_and_24_bit_wav() {
    check_pair("caller.ogg", "speech-s24.wav");
}

#[test]
fn wav_8k_and_float_wav() {
    check_pair("speech-8k.wav", "speech-f32.wav");
}

/// Real MediaRecorder output (fixtures/browser/): Chrome's `timeslice`
/// WebM (every cluster of unknown size, no Cues, no duration) and Firefox's
/// Ogg/Opus.
#[test]
fn browser_chrome_timeslice_webm_and_firefox_ogg() {
    check_pair(
        "browser/chrome-timeslice-40s.webm",
        "browser/firefox-default-40s.ogg",
    );
}

/// Chrome's `audio/mp4` (Opus in fragmented MP4, a track duration that
/// reads 0.91 s for 43.8 s of audio) and Firefox's WebM (Duration 0).
#[test]
fn browser_chrome_mp4_opus_and_firefox_webm() {
    check_pair(
        "browser/chrome-mp4-40s.mp4",
        "browser/firefox-webm-40s.webm",
    );
}

#[test]
fn pauses_are_shortened_and_reported() {
    let mut out = Outputs::in_memory();
    let report = stitch(
        Input::Path(fixture("caller.webm")),
        Input::Path(fixture("response.ogg")),
        Bumpers::embedded(),
        &mut out,
        &Settings::default(),
        &Quiet,
    )
    .unwrap();
    // caller.webm has a 1.7 s pause in a noise floor, response.ogg a 1.8 s
    // digital silence; both become 1 s.
    assert_eq!(report.caller.pauses_shortened, 1);
    assert_eq!(report.response.pauses_shortened, 1);
    assert!(report.response.leading_trimmed_s > 0.1);
    for r in [&report.caller, &report.response] {
        assert!(
            (r.input_duration_s - r.leading_trimmed_s - r.pause_removed_s - r.duration_s).abs()
                < 1e-9
        );
    }
}

#[test]
fn silent_recording_is_a_clear_error_naming_it() {
    // Noise at about -60 dBFS RMS: below the -50 dBFS threshold everywhere.
    let quiet = wav_bytes(48000, &noise(48000 * 3, 0.0017, 7));
    let mut out = Outputs::in_memory();
    let err = stitch(
        Input::Path(fixture("caller.webm")),
        Input::Bytes(quiet),
        Bumpers::embedded(),
        &mut out,
        &Settings::default(),
        &Quiet,
    )
    .unwrap_err();
    assert_eq!(err.stage_of(), Some(Stage::Silence));
    let msg = err.to_string();
    assert!(msg.starts_with("response recording ("), "{msg}");
    assert!(msg.contains("-50 dBFS"), "{msg}");
    assert!(!msg.contains('\n'));
}

#[test]
fn recording_shorter_than_the_fade_shortens_it_and_logs() {
    // 0.6 s of a loud tone: long enough to measure, shorter than the 1 s crossfade.
    let rate = 44100;
    let tone: Vec<f32> = (0..(rate * 6 / 10))
        .map(|i| 0.3 * (i as f32 * 2.0 * std::f32::consts::PI * 330.0 / rate as f32).sin())
        .collect();
    let (_, report, logs) = stitch_logged(
        Input::Bytes(wav_bytes(rate as u32, &tone)),
        Input::Path(fixture("response.ogg")),
        &Settings::default(),
    );
    assert!(
        logs.iter().any(|l| l.contains("intro -> caller shortened")),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.contains("caller -> interstitial shortened")),
        "{logs:?}"
    );
    // The caller is shared between its two fades; the other two stay 1 s.
    let c = report.caller_segment.frames;
    let fades = c + 2 * 44100;
    assert_eq!(
        report.episode.frames,
        bumper_frames() + c + report.response_segment.frames - fades
    );
}

#[test]
fn true_peak_promise_holds_on_a_clipped_square_wave() {
    // A full-scale square wave is the worst case for MP3 overshoot.
    let rate = 44100;
    let sq: Vec<f32> = (0..rate * 4)
        .map(|i| if (i / 50) % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let mut out = Outputs::in_memory();
    let report = stitch(
        Input::Bytes(wav_bytes(rate as u32, &sq)),
        Input::Bytes(wav_bytes(rate as u32, &sq)),
        Bumpers::embedded(),
        &mut out,
        &Settings::default(),
        &Quiet,
    )
    .unwrap();
    for r in [
        &report.episode,
        &report.caller_segment,
        &report.response_segment,
    ] {
        assert!(r.true_peak_dbtp.unwrap() <= 0.0, "{r:?}");
    }
}

/// Speech pushed to -10 LUFS without headroom: the limiter works hard and
/// the MP3s overshoot the 0 dBTP ceiling, so every output is rendered again
/// with more headroom, the caller's segment too (on the first render it was
/// encoded early, before the response was ready), and what is delivered
/// keeps the promise, whether the recordings are read again or kept.
#[test]
fn an_overshoot_renders_every_output_again() {
    let settings = overshooting();
    let target = settings.loudness.integrated_lufs;
    let (out, report, logs) = stitch_logged(
        Input::Path(fixture("caller.webm")),
        Input::Path(fixture("response.ogg")),
        &settings,
    );
    assert!(
        logs.iter().any(|l| l.contains("rendering again")),
        "no re-render: {logs:?}"
    );
    assert!(!logs.iter().any(|l| l.contains("still peaks")), "{logs:?}");
    for (r, bytes) in [
        (&report.episode, out.episode.get_ref()),
        (&report.caller_segment, out.caller_segment.get_ref()),
        (&report.response_segment, out.response_segment.get_ref()),
    ] {
        assert!(r.true_peak_dbtp.unwrap() <= 0.0, "{r:?}");
        assert_eq!(r.bytes, bytes.len() as u64, "the file is the last render");
    }
    for r in [&report.caller_segment, &report.response_segment] {
        let lufs = r.integrated_lufs.unwrap();
        assert!((lufs - target).abs() < 0.3, "{r:?}");
    }
    // Given as files, the recordings had their trimmed spools limited in
    // place, so the re-render read them again; given as bytes, they keep
    // their trimmed spools. The two ways deliver the same bytes.
    assert!(
        (logs.iter())
            .any(|l| l.starts_with("response recording") && l.contains("reading it again")),
        "{logs:?}"
    );
    let read = |name| std::fs::read(fixture(name)).unwrap();
    let (kept, _, logs) = stitch_logged(
        Input::Bytes(read("caller.webm")),
        Input::Bytes(read("response.ogg")),
        &settings,
    );
    assert!(
        logs.iter().any(|l| l.contains("rendering again")),
        "{logs:?}"
    );
    assert!(
        !logs.iter().any(|l| l.contains("reading it again")),
        "{logs:?}"
    );
    assert!(out.episode.get_ref() == kept.episode.get_ref());
    assert!(out.caller_segment.get_ref() == kept.caller_segment.get_ref());
    assert!(out.response_segment.get_ref() == kept.response_segment.get_ref());
}

/// The overshoot's settings: every output is rendered twice.
fn overshooting() -> Settings {
    let mut settings = Settings::default();
    settings.loudness.integrated_lufs = -10.0;
    settings.loudness.mp3_headroom_db = 0.0;
    settings
}

/// A path that is not a regular file (here a named pipe) is read once: its
/// trimmed spool is kept, and the re-render does not try to read it again.
#[cfg(unix)]
#[test]
fn a_pipe_given_as_a_path_is_read_once_and_its_trimmed_spool_kept() {
    let dir = std::env::temp_dir().join(format!("podstitch-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("response.ogg");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let bytes = std::fs::read(fixture("response.ogg")).unwrap();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            // The reader may stop at the end of the stream's last page.
            let _ = std::fs::File::create(&fifo).and_then(|mut f| f.write_all(&bytes));
        })
    };
    let logs = Logs::default();
    let mut out = Outputs::in_memory();
    let result = stitch(
        Input::Path(fixture("caller.webm")),
        Input::Path(fifo.clone()),
        Bumpers::embedded(),
        &mut out,
        &overshooting(),
        &logs,
    );
    writer.join().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    result.unwrap();
    let logs = logs.0.into_inner().unwrap();
    assert!(
        logs.iter().any(|l| l.contains("rendering again")),
        "{logs:?}"
    );
    assert!(
        !logs
            .iter()
            .any(|l| l.starts_with("response recording") && l.contains("reading it again")),
        "{logs:?}"
    );
}

/// Replaces a file with other bytes when the first render is over, and
/// gives it back its time of change when asked to.
struct SwapOnRerender {
    path: std::path::PathBuf,
    with: Vec<u8>,
    keep_time: bool,
}

impl Observer for SwapOnRerender {
    fn log(&self, line: &str) {
        if line.contains("rendering again") {
            let time = std::fs::metadata(&self.path).unwrap().modified().unwrap();
            std::fs::write(&self.path, &self.with).unwrap();
            if self.keep_time {
                let f = std::fs::File::options()
                    .write(true)
                    .open(&self.path)
                    .unwrap();
                f.set_modified(time).unwrap();
            }
        }
    }
}

/// Stitches with the response at `response` (written with `bytes`), swapped
/// for `swap` when the first render is over; the error, the temp dir gone.
fn swapped_response(name: &str, bytes: &[u8], swap: Vec<u8>, keep_time: bool) -> String {
    let dir = std::env::temp_dir().join(format!("podstitch-swap-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let response = dir.join(name);
    std::fs::write(&response, bytes).unwrap();
    let swap = SwapOnRerender {
        path: response.clone(),
        with: swap,
        keep_time,
    };
    let mut out = Outputs::in_memory();
    let result = stitch(
        Input::Path(fixture("caller.webm")),
        Input::Path(response.clone()),
        Bumpers::embedded(),
        &mut out,
        &overshooting(),
        &swap,
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let err = result
        .expect_err("a changed file must fail the run")
        .to_string();
    assert!(err.contains(&response.display().to_string()), "{err}");
    err
}

/// A file that changes before it is read again is an error naming it, not
/// an episode made of two different recordings: caught by its size...
#[test]
fn a_file_that_changes_before_it_is_read_again_is_an_error() {
    let original = std::fs::read(fixture("response.ogg")).unwrap();
    let other = std::fs::read(fixture("caller.webm")).unwrap();
    let err = swapped_response("response.ogg", &original, other, false);
    assert!(
        err.contains("changed while podstitch was working on it"),
        "{err}"
    );
    assert!(err.contains("its size or time of change moved"), "{err}");
}

/// ... or, when its size and time of change are kept, by its second reading.
#[test]
fn a_file_whose_content_alone_changes_is_caught_by_its_second_reading() {
    let (rate, voice) = common::decode_path(&fixture("response.ogg"));
    let quieter: Vec<f32> = voice.channel(0).iter().map(|x| x * 0.5).collect();
    let original = common::wav_bytes(rate, &[voice.channel(0)]);
    let swap = common::wav_bytes(rate, &[&quieter]);
    assert_eq!(original.len(), swap.len());
    let err = swapped_response("response.wav", &original, swap, true);
    assert!(
        err.contains("changed while podstitch was working on it"),
        "{err}"
    );
    assert!(
        err.contains("its second reading differs from the first"),
        "{err}"
    );
}

#[test]
fn readers_and_bytes_work_like_paths() {
    let call = std::fs::read(fixture("caller.webm")).unwrap();
    let resp = std::fs::File::open(fixture("response.ogg")).unwrap();
    let mut a = Outputs::in_memory();
    let ra = stitch(
        Input::Bytes(call),
        Input::Reader(Box::new(resp)),
        Bumpers::embedded(),
        &mut a,
        &Settings::default(),
        &Quiet,
    )
    .unwrap();
    let mut b = Outputs::in_memory();
    let rb = stitch(
        Input::Path(fixture("caller.webm")),
        Input::Path(fixture("response.ogg")),
        Bumpers::embedded(),
        &mut b,
        &Settings::default(),
        &Quiet,
    )
    .unwrap();
    assert_eq!(a.episode.get_ref(), b.episode.get_ref());
    assert_eq!(ra.episode_audio_size, rb.episode_audio_size);
}

#[test]
fn failed_run_leaves_no_files() {
    let dir = std::env::temp_dir().join(format!("podstitch-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let junk = dir.join("junk.webm");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&junk, b"<html><body>403 Forbidden</body></html>").unwrap();
    let out = dir.join("out");
    let err = stitch_to_dir(
        &fixture("caller.webm"),
        &junk,
        Bumpers::embedded(),
        &out,
        &Settings::default(),
        &Quiet,
    )
    .unwrap_err();
    assert!(err.to_string().contains("junk.webm"), "{err}");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One progress report: the stage, seconds done, seconds in all if known.
type Step = (String, f64, Option<f64>);

/// Records how far each stage got.
#[derive(Default)]
struct Progress(Mutex<Vec<Step>>);

impl Observer for Progress {
    fn stage_progress(&self, stage: &str, done_s: f64, total_s: Option<f64>) {
        self.0
            .lock()
            .unwrap()
            .push((stage.to_string(), done_s, total_s));
    }
}

/// Stitches `call` beside `response` (one silent, one 20 minutes long);
/// returns the error and how far, in seconds, the long one's stages got.
fn first_error_of(silent_caller: bool) -> (String, f64, Vec<Step>) {
    const RATE: u32 = 8_000;
    let silent = common::wav_bytes(RATE, &[&vec![0.0f32; 2 * RATE as usize]]);
    let long = noise((LONG_S * f64::from(RATE)) as usize, 0.1, 7);
    let long = common::wav_bytes(RATE, &[&long]);
    let (call, response) = if silent_caller {
        (silent, long)
    } else {
        (long, silent)
    };
    let obs = Progress::default();
    let mut out = Outputs::in_memory();
    let err = stitch(
        Input::Bytes(call),
        Input::Bytes(response),
        Bumpers::embedded(),
        &mut out,
        &Settings::default(),
        &obs,
    )
    .unwrap_err()
    .to_string();
    let seen = obs.0.lock().unwrap().clone();
    let other = if silent_caller { "response" } else { "caller" };
    let furthest = seen
        .iter()
        .filter(|(stage, ..)| stage.contains(other))
        .map(|&(_, done, _)| done)
        .fold(0.0, f64::max);
    (err, furthest, seen)
}

/// The long recording of [`first_error_of`], in seconds.
const LONG_S: f64 = 1200.0;

/// Issue 15: an error in the caller's analysis is reported at once, while
/// the response (20 minutes, analysed on another thread) is still in its
/// first pass: that pass stops at its next block instead of running to the
/// end (before the fix it ran to 1200 s, then calibrated). The response's
/// progress reports show how far it got.
#[test]
fn a_caller_error_is_reported_before_the_responses_first_pass_ends() {
    let (err, furthest, seen) = first_error_of(true);
    assert!(
        err.starts_with("caller recording") && err.contains("silent"),
        "the caller's own error: {err}"
    );
    assert!(
        furthest < LONG_S / 2.0,
        "the response's first pass went on to {furthest:.0} s of {LONG_S} s: {seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|(stage, ..)| stage.starts_with("calibrating response")),
        "the response was not calibrated: {seen:?}"
    );
}

/// The same the other way round: the response's error (on its own thread)
/// stops the caller's first pass, and it is the response's error that is
/// reported, not the caller's "stopped".
#[test]
fn a_response_error_is_reported_before_the_callers_first_pass_ends() {
    let (err, furthest, seen) = first_error_of(false);
    assert!(
        err.starts_with("response recording") && err.contains("silent"),
        "the response's own error: {err}"
    );
    assert!(
        furthest < LONG_S / 2.0,
        "the caller's first pass went on to {furthest:.0} s of {LONG_S} s: {seen:?}"
    );
}
