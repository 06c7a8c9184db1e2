//! Helpers shared by the integration tests: fixtures, decoding, SNR, the
//! golden-file bless switch and the end-to-end property checks.
#![allow(dead_code)] // each test crate uses a different subset

pub mod room;

use std::io::Cursor;
use std::path::{Path, PathBuf};

use podstitch::analyze;
use podstitch::stages::Decoder;
use podstitch::stages::{Block, Source};
use podstitch::SilenceSettings;
use podstitch::{stitch, Bumpers, Input, Observer, Outputs, Report, Settings};

/// Stitches into memory with the embedded bumpers; panics with the error.
pub fn stitch_in_memory(
    call: Input,
    response: Input,
    settings: &Settings,
    obs: &dyn Observer,
) -> (Outputs<Cursor<Vec<u8>>>, Report) {
    let mut out = Outputs::in_memory();
    let report = stitch(call, response, Bumpers::embedded(), &mut out, settings, obs)
        .unwrap_or_else(|e| panic!("{e}"));
    keep_outputs(&out);
    (out, report)
}

/// With `PODSTITCH_KEEP_OUTPUTS=DIR`, writes the three outputs of a stitch
/// into `DIR` as `TEST-N-NAME.mp3` (TEST is the test's name, N counts the
/// test's stitches), so `sha256sum DIR/*` before and after a change shows
/// whether it changed any byte (`scripts/output-hashes.sh`). Without the
/// variable it does nothing.
pub fn keep_outputs(out: &Outputs<Cursor<Vec<u8>>>) {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static COUNT: Mutex<Option<HashMap<String, usize>>> = Mutex::new(None);
    let Some(dir) = std::env::var_os("PODSTITCH_KEEP_OUTPUTS") else {
        return;
    };
    let test = std::thread::current()
        .name()
        .unwrap_or("main")
        .replace("::", "-");
    let n = {
        let mut map = COUNT.lock().unwrap_or_else(|e| e.into_inner());
        let c = map
            .get_or_insert_with(HashMap::new)
            .entry(test.clone())
            .or_default();
        *c += 1;
        *c
    };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("create the PODSTITCH_KEEP_OUTPUTS dir");
    for (name, w) in [
        ("episode", &out.episode),
        ("caller-segment", &out.caller_segment),
        ("response-segment", &out.response_segment),
    ] {
        let p = dir.join(format!("{test}-{n}-{name}.mp3"));
        std::fs::write(&p, w.get_ref()).expect("write a kept output");
    }
}

/// A file under `fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// A file under `fixtures/golden/`.
pub fn golden_path(name: &str) -> PathBuf {
    fixture("golden").join(name)
}

/// True when `PODSTITCH_BLESS=1`: golden tests rewrite their goldens instead
/// of comparing. Without it nothing in the tree is written.
pub fn blessing() -> bool {
    std::env::var("PODSTITCH_BLESS").is_ok_and(|v| v == "1")
}

/// Where a failing golden test leaves its candidate output (never the tree).
pub fn candidate_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("podstitch-golden-candidates");
    std::fs::create_dir_all(&dir).expect("create candidate dir");
    dir
}

/// Writes `bytes` as the candidate `name` and returns its path.
pub fn write_candidate(name: &str, bytes: &[u8]) -> PathBuf {
    let p = candidate_dir().join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("create candidate dir");
    }
    std::fs::write(&p, bytes).expect("write candidate");
    p
}

/// Writes a golden (only called when blessing).
pub fn bless(name: &str, bytes: &[u8]) {
    assert!(
        blessing(),
        "goldens are only written with PODSTITCH_BLESS=1"
    );
    let p = golden_path(name);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("create golden dir");
    std::fs::write(&p, bytes).expect("write golden");
    eprintln!("blessed {}", p.display());
}

/// Decodes a whole stream with podstitch's decoder: (rate, planar audio).
pub fn decode_bytes(subject: &str, bytes: Vec<u8>) -> (u32, Block) {
    let dec = Decoder::open_bytes(subject, bytes).unwrap_or_else(|e| panic!("{e}"));
    drain(dec)
}

/// Decodes a whole file with podstitch's decoder: (rate, planar audio).
pub fn decode_path(path: &Path) -> (u32, Block) {
    let name = path.display().to_string();
    let dec = Decoder::open_path(&name, path).unwrap_or_else(|e| panic!("{e}"));
    drain(dec)
}

fn drain(mut dec: Decoder) -> (u32, Block) {
    let rate = dec.sample_rate();
    let mut all = Block::new(dec.channels(), 0);
    let mut b = Block::default();
    while dec.read(&mut b).unwrap_or_else(|e| panic!("{e}")) {
        for (dst, src) in all.channels_mut().iter_mut().zip(b.planes()) {
            dst.extend_from_slice(src);
        }
    }
    (rate, all)
}

/// SNR in dB of `test` against `reference` (same length), all channels.
/// Infinite when they are identical.
pub fn snr_db(reference: &[&[f32]], test: &[&[f32]]) -> f64 {
    let (mut sig, mut err) = (0f64, 0f64);
    for (r, t) in reference.iter().zip(test) {
        assert_eq!(r.len(), t.len(), "snr: lengths differ");
        for (&a, &b) in r.iter().zip(t.iter()) {
            sig += f64::from(a).powi(2);
            err += (f64::from(a) - f64::from(b)).powi(2);
        }
    }
    if err == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (sig / err).log10()
    }
}

/// A mono or multichannel float WAV in memory.
pub fn wav_bytes(rate: u32, chans: &[&[f32]]) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    let spec = hound::WavSpec {
        channels: chans.len() as u16,
        sample_rate: rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::new(&mut buf, spec).expect("wav");
    for i in 0..chans[0].len() {
        for c in chans {
            w.write_sample(c[i]).expect("wav");
        }
    }
    w.finalize().expect("wav");
    buf.into_inner()
}

/// Total decoded frames of the three embedded bumpers.
pub fn bumper_frames() -> u64 {
    ["intro.mp3", "interstitial.mp3", "outro.mp3"]
        .iter()
        .map(|f| {
            let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets").join(f);
            decode_path(&p).1.frames() as u64
        })
        .sum()
}

/// Checks every property promised for the outputs of one run, whatever the
/// input: decoded shape and length as reported, loudness of the segments
/// within ±0.3 LU of the target (episode ±0.2: its bumpers are gained to
/// the target and trimmed so the episode lands on it, issue 13), decoded true peak ≤ the ceiling, no pause over
/// 1 s + 50 ms, leading silence ≤ 30 ms, episode = parts − fades exactly, and
/// the JSON report equal to the files.
pub fn check_outputs(ctx: &str, out: &Outputs<Cursor<Vec<u8>>>, report: &Report) {
    let json: serde_json::Value =
        serde_json::from_str(&report.to_json_line()).expect("report is JSON");
    let files = [
        (
            "episode",
            out.episode.get_ref(),
            &report.episode,
            "episode",
            2,
        ),
        (
            "caller",
            out.caller_segment.get_ref(),
            &report.caller_segment,
            "callerSegment",
            1,
        ),
        (
            "response",
            out.response_segment.get_ref(),
            &report.response_segment,
            "responseSegment",
            1,
        ),
    ];
    let silence = SilenceSettings::default();
    for (name, bytes, r, key, channels) in files {
        let ctx = format!("{ctx}: {name}");
        let j = &json[key];
        assert_eq!(
            json[format!("{key}AudioSize")].as_u64(),
            Some(bytes.len() as u64),
            "{ctx}: JSON size vs file"
        );
        assert_eq!(r.bytes, bytes.len() as u64, "{ctx}: reported bytes");
        assert!(bytes.starts_with(b"ID3"), "{ctx}: ID3v2 tag");
        let a = analyze(name, Input::Bytes(bytes.clone()), &silence).expect("analyze");
        assert_eq!(
            (a.frames, a.sample_rate, a.channels),
            (r.frames, 44100, channels),
            "{ctx}: decoded shape vs report"
        );
        assert_eq!(j["frames"].as_u64(), Some(a.frames), "{ctx}: JSON frames");
        assert_eq!(
            j["bytes"].as_u64(),
            Some(bytes.len() as u64),
            "{ctx}: JSON bytes"
        );
        let close = |key: &str, x: f64| {
            let v = j[key].as_f64();
            assert!(
                v.is_some_and(|v| (v - x).abs() < 1e-9),
                "{ctx}: JSON {key} {v:?}, the file measures {x}"
            );
        };
        close("durationS", a.duration_s);
        close("integratedLufs", a.integrated_lufs);
        close("truePeakDbtp", a.true_peak_dbtp);
        assert_eq!(
            r.true_peak_dbtp,
            Some(a.true_peak_dbtp),
            "{ctx}: reported true peak vs file"
        );
        assert!(
            a.true_peak_dbtp <= 0.0,
            "{ctx}: true peak {}",
            a.true_peak_dbtp
        );
        assert!(
            a.longest_pause_s <= 1.05,
            "{ctx}: pause {}",
            a.longest_pause_s
        );
        let tol = if name == "episode" { 0.2 } else { 0.3 };
        assert!(
            (a.integrated_lufs + 16.0).abs() <= tol,
            "{ctx}: loudness {}",
            a.integrated_lufs
        );
        if name != "episode" {
            assert!(
                a.leading_silence_s <= 0.030,
                "{ctx}: leading silence {}",
                a.leading_silence_s
            );
        }
    }
    let parts = bumper_frames() + report.caller_segment.frames + report.response_segment.frames;
    assert_eq!(
        report.episode.frames,
        parts - 4 * 44100,
        "{ctx}: episode length"
    );
}

/// Decodes `bytes` (an in-memory output) frames count.
pub fn frames_of(bytes: &[u8]) -> u64 {
    let mut d = Decoder::open_bytes("output", bytes.to_vec()).expect("decodes");
    let mut b = Block::default();
    let mut n = 0;
    while d.read(&mut b).expect("decodes") {
        n += b.frames() as u64;
    }
    n
}

/// A small stage golden: named figures (compared exactly, as text) and
/// planar samples (compared within `tolerance`), stored as text under
/// `fixtures/golden/stages/NAME.txt`.
pub struct StageGolden {
    /// What the golden is, written as `#` comment lines.
    pub about: Vec<String>,
    /// Figures compared exactly: cut positions, lengths, gains as text.
    pub figures: Vec<(String, String)>,
    /// Samples, one `Vec` per channel (all the same length).
    pub channels: Vec<Vec<f32>>,
}

impl StageGolden {
    fn to_text(&self) -> String {
        let mut s = String::new();
        for line in &self.about {
            s.push_str(&format!("# {line}\n"));
        }
        for (k, v) in &self.figures {
            s.push_str(&format!("{k}: {v}\n"));
        }
        let n = self.channels.first().map_or(0, Vec::len);
        s.push_str(&format!("samples: {n} x {}\n", self.channels.len()));
        for i in 0..n {
            let row: Vec<String> = self
                .channels
                .iter()
                .map(|c| format!("{:.9e}", c[i]))
                .collect();
            s.push_str(&row.join(" "));
            s.push('\n');
        }
        s
    }

    fn parse(text: &str) -> (Vec<(String, String)>, Vec<Vec<f32>>) {
        let mut figures = Vec::new();
        let mut channels: Vec<Vec<f32>> = Vec::new();
        let mut in_samples = false;
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            if in_samples {
                let vals: Vec<f32> = line
                    .split_whitespace()
                    .map(|v| v.parse().expect("golden sample"))
                    .collect();
                channels.resize_with(vals.len(), Vec::new);
                for (c, v) in channels.iter_mut().zip(vals) {
                    c.push(v);
                }
            } else if let Some((k, v)) = line.split_once(": ") {
                if k == "samples" {
                    in_samples = true;
                } else {
                    figures.push((k.to_string(), v.to_string()));
                }
            }
        }
        (figures, channels)
    }

    /// Compares with `fixtures/golden/stages/NAME.txt` (or rewrites it when
    /// blessing). On a difference, writes the candidate to the temp dir and
    /// panics with what differs.
    pub fn check(&self, name: &str, tolerance: f32) {
        let rel = format!("stages/{name}.txt");
        let text = self.to_text();
        if blessing() {
            bless(&rel, text.as_bytes());
            return;
        }
        let golden = std::fs::read_to_string(golden_path(&rel)).unwrap_or_else(|e| {
            panic!("{rel}: cannot read the golden ({e}); run PODSTITCH_BLESS=1 cargo test to create it")
        });
        let (figures, channels) = Self::parse(&golden);
        let mut diffs = Vec::new();
        for (k, v) in &self.figures {
            match figures.iter().find(|(gk, _)| gk == k) {
                Some((_, gv)) if gv == v => {}
                Some((_, gv)) => diffs.push(format!("{k}: golden {gv}, now {v}")),
                None => diffs.push(format!("{k}: not in the golden (now {v})")),
            }
        }
        let n_new = self.channels.first().map_or(0, Vec::len);
        let n_old = channels.first().map_or(0, Vec::len);
        if n_new != n_old || channels.len() != self.channels.len() {
            diffs.push(format!(
                "length: golden {n_old} frames x {} ch, now {n_new} x {}",
                channels.len(),
                self.channels.len()
            ));
        }
        let (mut count, mut first, mut max) = (0usize, None, 0f32);
        for (c, (new, old)) in self.channels.iter().zip(&channels).enumerate() {
            for (i, (&a, &b)) in new.iter().zip(old).enumerate() {
                let d = (a - b).abs();
                if d > tolerance || a.is_nan() != b.is_nan() {
                    count += 1;
                    max = max.max(d);
                    if first.is_none() {
                        first = Some(format!("frame {i} ch {c}: golden {b:.9e}, now {a:.9e}"));
                    }
                }
            }
        }
        if let Some(first) = first {
            diffs.push(format!(
                "samples: {count} differ by more than {tolerance:e} (max |diff| {max:.3e}); first at {first}"
            ));
        }
        if !diffs.is_empty() {
            let cand = write_candidate(&rel, text.as_bytes());
            panic!(
                "stage golden {rel} differs:\n  {}\ncandidate written to {}\ngolden is {}\n(if the change is intended: PODSTITCH_BLESS=1 cargo test)",
                diffs.join("\n  "),
                cand.display(),
                golden_path(&rel).display()
            );
        }
    }
}

/// Deterministic noise in [-amp, amp] (LCG).
pub fn noise(n: usize, amp: f32, seed: u32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((s >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0) * amp
        })
        .collect()
}
