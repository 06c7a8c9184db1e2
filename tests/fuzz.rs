//! A seeded mutation fuzzer over the decode and analysis path, run as a plain
//! test (cargo-fuzz needs a nightly toolchain; this needs nothing).
//!
//! Every committed fixture (and every file in `fixtures/fuzz/`, the inputs of
//! past findings) is mutated — bit flips, byte and word overwrites,
//! truncation, insertion, deletion, chunk duplication, biased towards the
//! headers — and fed to `Decoder::open_bytes` and a full read, and to
//! `analyze`. Asserted for every case: no panic (neither escaping nor caught
//! by the decoder's guard and turned into a "crashed" error), every sample
//! finite and within [-1, 1], blocks of the announced channel count, and a
//! decoded length bounded by the input's (at most 16 times the clean
//! fixture's duration plus 10 s).
//!
//! `cargo test` runs a few hundred cases (a few seconds). Long runs:
//!
//! ```text
//! PODSTITCH_FUZZ_SECS=1200 cargo test --release --test fuzz -- --nocapture
//! PODSTITCH_FUZZ_ITERS=100000 PODSTITCH_FUZZ_SEED=7 cargo test --release --test fuzz -- --nocapture
//! ```
//!
//! A finding is printed with its seed and case number (`PODSTITCH_FUZZ_SEED`
//! and the case reproduce it) and, when `PODSTITCH_FUZZ_OUT` names a
//! directory, written there after minimisation, ready to become a regression
//! input in `fixtures/fuzz/`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use podstitch::analyze;
use podstitch::stages::Decoder;
use podstitch::stages::{Block, Source};
use podstitch::Input;
use podstitch::SilenceSettings;

/// Where the last panic happened (set by the test's panic hook).
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// A position, half the time within the first 512 bytes (the headers).
fn position(r: &mut Rng, len: usize) -> usize {
    if r.below(2) == 0 {
        r.below(len.min(512))
    } else {
        r.below(len)
    }
}

const INTERESTING: [u32; 8] = [
    0,
    1,
    0x7F,
    0x80,
    0xFF,
    0x7FFF_FFFF,
    0xFFFF_FFFF,
    0x8000_0000,
];

fn mutate(r: &mut Rng, data: &mut Vec<u8>) {
    let rounds = 1 + r.below(4);
    for _ in 0..rounds {
        let len = data.len();
        if len == 0 {
            data.push(r.next() as u8);
            continue;
        }
        match r.below(8) {
            0 => {
                for _ in 0..1 + r.below(8) {
                    let i = position(r, len);
                    data[i] ^= 1 << r.below(8);
                }
            }
            1 => {
                let i = position(r, len);
                data[i] = r.next() as u8;
            }
            2 => {
                let i = position(r, len);
                let v = INTERESTING[r.below(INTERESTING.len())];
                let bytes = if r.below(2) == 0 {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                };
                for (k, b) in bytes.iter().enumerate() {
                    if let Some(d) = data.get_mut(i + k) {
                        *d = *b;
                    }
                }
            }
            3 => data.truncate(r.below(len)),
            4 => {
                let i = position(r, len);
                let n = 1 + r.below(64);
                let ins: Vec<u8> = (0..n).map(|_| r.next() as u8).collect();
                data.splice(i..i, ins);
            }
            5 => {
                let i = position(r, len);
                let n = (1 + r.below(1024)).min(len - i);
                data.drain(i..i + n);
            }
            6 => {
                let from = r.below(len);
                let n = (1 + r.below(4096)).min(len - from);
                let chunk = data[from..from + n].to_vec();
                let to = r.below(len);
                data.splice(to..to, chunk);
            }
            _ => {
                // Swap the order of two chunks' contents (same length).
                let n = 1 + r.below(256);
                if len > 2 * n {
                    let a = r.below(len - n);
                    let b = r.below(len - n);
                    for k in 0..n {
                        data.swap(a + k, b + k);
                    }
                }
            }
        }
    }
}

/// One seed input: its bytes and a bound on what it may decode to.
struct Seed {
    name: String,
    bytes: Vec<u8>,
    /// Most samples per channel any mutation may decode to.
    max_frames: u64,
}

fn corpus() -> Vec<Seed> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut paths: Vec<PathBuf> = Vec::new();
    for dir in [root.clone(), root.join("fuzz")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let ext = p.extension().and_then(|x| x.to_str()).unwrap_or("");
            if p.is_file() && !matches!(ext, "txt" | "md" | "sh" | "py") {
                paths.push(p);
            }
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).expect("read fixture");
            let name = p.strip_prefix(&root).unwrap_or(&p).display().to_string();
            // The clean file's length at its rate, if it decodes at all.
            let clean_s = Decoder::open_bytes("seed", bytes.clone())
                .ok()
                .map(|mut d| {
                    let rate = f64::from(d.sample_rate().max(1));
                    let mut b = Block::default();
                    let mut n = 0u64;
                    while let Ok(true) = d.read(&mut b) {
                        n += b.frames() as u64;
                    }
                    n as f64 / rate
                })
                .unwrap_or(0.0);
            // Any rate up to 384 kHz: 16x the clean length plus 10 s.
            let max_frames = ((clean_s * 16.0 + 10.0) * 384_000.0) as u64;
            Seed {
                name,
                bytes,
                max_frames,
            }
        })
        .collect()
}

/// What went wrong with one case, if anything.
fn check_case(bytes: &[u8], max_frames: u64) -> Option<String> {
    let decoded = catch_unwind(AssertUnwindSafe(|| -> Option<String> {
        let mut dec = match Decoder::open_bytes("fuzz", bytes.to_vec()) {
            Ok(d) => d,
            Err(e) => return crashed(&e.to_string()),
        };
        let (rate, channels) = (dec.sample_rate(), dec.channels());
        if rate == 0 || channels == 0 {
            return Some(format!("opened with rate {rate}, {channels} channels"));
        }
        let mut block = Block::default();
        let mut frames = 0u64;
        loop {
            match dec.read(&mut block) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return crashed(&e.to_string()),
            }
            if block.channels() != channels {
                return Some(format!(
                    "block of {} channels from a {channels}-channel decoder",
                    block.channels()
                ));
            }
            if let Some(bad) = block
                .planes()
                .iter()
                .flat_map(|c| c.iter())
                .find(|s| !s.is_finite() || s.abs() > 1.0)
            {
                return Some(format!("sample {bad} out of [-1, 1]"));
            }
            frames += block.frames() as u64;
            if frames > max_frames {
                return Some(format!("decoded more than {max_frames} frames"));
            }
        }
        None
    }));
    match decoded {
        Ok(Some(f)) => return Some(f),
        Ok(None) => {}
        Err(_) => return Some(format!("panic escaped the decoder: {}", last_panic())),
    }
    let analysed = catch_unwind(AssertUnwindSafe(|| {
        analyze(
            "fuzz",
            Input::Bytes(bytes.to_vec()),
            &SilenceSettings::default(),
        )
    }));
    match analysed {
        Ok(Ok(a)) => {
            let figures = [a.duration_s, a.leading_silence_s, a.longest_pause_s];
            if figures.iter().any(|x| !x.is_finite() || *x < 0.0) {
                return Some(format!("analysis figures out of range: {figures:?}"));
            }
            None
        }
        Ok(Err(e)) => crashed(&e.to_string()),
        Err(_) => Some(format!("panic escaped analyze: {}", last_panic())),
    }
}

/// A panic caught by the decoder's guard is a finding too.
fn crashed(msg: &str) -> Option<String> {
    (msg.contains("crashed") || msg.contains("panicked"))
        .then(|| format!("caught panic: {msg} [at {}]", last_panic()))
}

fn last_panic() -> String {
    LAST_PANIC
        .lock()
        .map(|p| p.clone().unwrap_or_default())
        .unwrap_or_default()
}

/// Shrinks a failing input while it still fails the same way (same first
/// word of the finding), by removing ever smaller chunks.
fn minimise(bytes: &[u8], max_frames: u64, kind: &str) -> Vec<u8> {
    let same =
        |b: &[u8]| check_case(b, max_frames).is_some_and(|f| f.split(':').next() == Some(kind));
    let mut cur = bytes.to_vec();
    let mut chunk = cur.len() / 2;
    let started = Instant::now();
    while chunk >= 1 && started.elapsed() < Duration::from_secs(60) {
        let mut i = 0;
        let mut shrunk = false;
        while i < cur.len() {
            let mut cand = cur.clone();
            cand.drain(i..(i + chunk).min(cur.len()));
            if same(&cand) {
                cur = cand;
                shrunk = true;
            } else {
                i += chunk;
            }
        }
        if !shrunk {
            chunk /= 2;
        }
    }
    cur
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn mutated_fixtures_never_crash_the_decoder_or_analysis() {
    let seeds = corpus();
    assert!(seeds.len() >= 10, "fixtures missing");
    let iters = env_u64("PODSTITCH_FUZZ_ITERS");
    let secs = env_u64("PODSTITCH_FUZZ_SECS");
    let (iters, budget) = match (iters, secs) {
        (None, None) => (300, None),
        (i, s) => (i.unwrap_or(u64::MAX), s.map(Duration::from_secs)),
    };
    let seed = env_u64("PODSTITCH_FUZZ_SEED").unwrap_or(0x5EED);
    let out = std::env::var_os("PODSTITCH_FUZZ_OUT").map(PathBuf::from);

    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        if let Ok(mut p) = LAST_PANIC.lock() {
            *p = Some(info.to_string().replace('\n', " "));
        }
    }));

    let started = Instant::now();
    let mut findings: Vec<String> = Vec::new();
    let mut slowest = (Duration::ZERO, String::new());
    let mut case = 0u64;
    while case < iters && budget.is_none_or(|b| started.elapsed() < b) {
        let mut r = Rng(seed ^ case.wrapping_mul(0xD6E8_FEB8_6659_FD93));
        let s = &seeds[r.below(seeds.len())];
        let mut bytes = s.bytes.clone();
        mutate(&mut r, &mut bytes);
        let t = Instant::now();
        let finding = check_case(&bytes, s.max_frames);
        let took = t.elapsed();
        if took > slowest.0 {
            slowest = (took, format!("case {case} ({})", s.name));
        }
        if let Some(f) = finding {
            let line = format!("seed {seed} case {case} ({}): {f}", s.name);
            eprintln!("FINDING {line}");
            if let Some(dir) = &out {
                let kind = f.split(':').next().unwrap_or("").to_string();
                let small = minimise(&bytes, s.max_frames, &kind);
                let _ = std::fs::create_dir_all(dir);
                let name = format!("{}-{seed}-{case}.bin", s.name.replace('/', "_"));
                let _ = std::fs::write(dir.join(&name), &small);
                eprintln!("  minimised to {} bytes: {}", small.len(), name);
            }
            findings.push(line);
        }
        case += 1;
        if budget.is_some() && case.is_multiple_of(1000) {
            eprintln!(
                "fuzz: {case} cases in {:.0} s, {} finding(s)",
                started.elapsed().as_secs_f64(),
                findings.len()
            );
        }
    }
    std::panic::set_hook(previous);
    eprintln!(
        "fuzz: seed {seed}, {case} cases over {} seeds in {:.1} s, slowest {:?} ({}), {} finding(s)",
        seeds.len(),
        started.elapsed().as_secs_f64(),
        slowest.0,
        slowest.1,
        findings.len()
    );
    assert!(findings.is_empty(), "findings:\n{}", findings.join("\n"));
}

/// Inputs the fuzzer found (`fixtures/fuzz/`, minimised), with what each
/// must now do. Each file is also in the fuzzer's seed corpus.
#[test]
fn fuzz_findings_stay_fixed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fuzz");
    let cases: [(&str, &str); 1] = [
        // Found by seed 1 case 26245 (speech-s16.wav mutated): a WAV whose
        // fmt chunk gives 0 Hz opened as a 0 Hz stream (later stages divide
        // by the rate). Now refused at detection.
        (
            "wav-rate-zero.wav",
            "fuzz: detect format: the header gives a sample rate of 0 Hz; the file is damaged: \
             upload it again",
        ),
    ];
    for (name, expected) in cases {
        let bytes = std::fs::read(dir.join(name)).expect("regression input");
        let err = Decoder::open_bytes("fuzz", bytes.clone())
            .err()
            .map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some(expected), "{name}");
        let a = analyze("fuzz", Input::Bytes(bytes), &SilenceSettings::default());
        assert!(a.is_err(), "{name}: analyze must fail too");
    }
    let files = std::fs::read_dir(&dir).expect("fixtures/fuzz").count();
    assert_eq!(
        files,
        cases.len(),
        "every file in fixtures/fuzz has a case here"
    );
}
