//! Throughput of each stage, in multiples of real time, on fixed inputs.
//!
//! Run with `cargo bench --bench stages [-- FILTER...]` (only the benchmarks
//! whose name contains one of the FILTER words). No benchmark framework: each
//! stage runs 5 times on synthetic or fixture audio prepared outside the timed
//! region, and the median is printed with its throughput in multiples of real
//! time (audio seconds per second of one core; the end-to-end `stitch` uses
//! up to three threads and the chunked encoder one pool of 1 or 2 threads,
//! so their figures are per wall second).
//!
//! `cargo bench --bench stages -- denoise` also prints what the noise
//! suppressor does to speech mixed with steady noise at 0, 10 and 20 dB SNR
//! and to clean speech (SNR against the clean speech, loudness change).
//!
//! The loudness meter is also timed against the `ebur128` crate (a
//! dev-dependency), configured as podstitch used it before its own meter.
//!
//! divan was tried as the harness and rejected: as a dev-dependency it added
//! divan, divan-macros, rustix and a re-featured clap/bitflags to every
//! `cargo test` build (about 90 s of compile time on the 2-core development
//! machine, plus rebuilding symphonia and reqwest in a warm target because of
//! feature unification), well over the 30 s budget. `benches/compare.sh`
//! measures the whole binary against FFmpeg and the LAME floor.

use std::hint::black_box;
use std::io::Cursor;
use std::path::Path;
use std::time::Instant;

use ebur128::{EbuR128, Mode};
use podstitch::internals::SpoolWriter;
use podstitch::internals::{denoised, Denoise, DENOISE_RATE};
use podstitch::internals::{plan_fades, Mix, MixPart};
use podstitch::internals::{ChunkOptions, ChunkedMp3Writer, EncodePool};
use podstitch::internals::{Downmix, Downmixed, FrontAnalysis};
use podstitch::stages::Decoder;
use podstitch::stages::HighPass;
use podstitch::stages::Limiter;
use podstitch::stages::Processor;
use podstitch::stages::Resample;
use podstitch::stages::SilenceCutter;
use podstitch::stages::TempDir;
use podstitch::stages::{Block, BlockSink, MemorySource, Processed, Source};
use podstitch::stages::{Measures, Meter};
use podstitch::stages::{Mp3Format, Mp3Writer};
use podstitch::Mp3Options;
use podstitch::SilenceSettings;

#[path = "../tests/common/room.rs"]
mod room;
use podstitch::{stitch, Bumpers, Input, Outputs, Quiet, Settings};
use room::{dc_blocked, room_noise};

const RATE: u32 = 44100;
const SECONDS: usize = 60;

fn speechlike(n: usize) -> Vec<f32> {
    let mut s = 1u32;
    (0..n)
        .map(|i| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
            let env = if (i / 20000) % 3 == 2 { 0.0005 } else { 0.3 };
            env * ((i as f32 * 0.03).sin() + noise)
        })
        .collect()
}

/// The command-line filter words (cargo passes `--bench`, which is skipped).
fn selected(name: &str) -> bool {
    let words: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    words.is_empty() || words.iter().any(|w| name.contains(w.as_str()))
}

/// Runs `f` 5 times and prints the median as a multiple of `audio_s` real time.
fn bench(name: &str, audio_s: f64, mut f: impl FnMut()) {
    if !selected(name) {
        return;
    }
    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let med = times[2];
    println!(
        "{name:<44} {:>9.1} ms  {:>8.0}x real time",
        med * 1000.0,
        audio_s / med
    );
}

/// The meter podstitch used before its own: the `ebur128` crate in
/// histogram mode, fed one 100 ms hop at a time with a short-term reading
/// after each when the series is kept (and LRA mode then).
fn ebur128_meter(ch: usize, input: &[Block], series: bool) -> (f64, f64, usize) {
    let mut mode = Mode::I | Mode::HISTOGRAM;
    if series {
        mode |= Mode::LRA;
    }
    let mut e = EbuR128::new(ch as u32, RATE, mode).expect("valid");
    let hop = (RATE / 10) as usize;
    let (mut in_hop, mut values) = (0, 0);
    for b in input {
        let planes = b.planes();
        if !series {
            e.add_frames_planar_f32(&planes).expect("valid");
            continue;
        }
        let mut at = 0;
        while at < b.frames() {
            let take = (hop - in_hop).min(b.frames() - at);
            let part: Vec<&[f32]> = planes.iter().map(|p| &p[at..at + take]).collect();
            e.add_frames_planar_f32(&part).expect("valid");
            at += take;
            in_hop += take;
            if in_hop == hop {
                in_hop = 0;
                black_box(e.loudness_shortterm().expect("S mode"));
                values += 1;
            }
        }
    }
    let lra = if series {
        e.loudness_range().expect("LRA mode")
    } else {
        0.0
    };
    (e.loudness_global().expect("I mode"), lra, values)
}

fn decode_all(bytes: &[u8]) -> u64 {
    let mut d = Decoder::open_bytes("bench", bytes.to_vec()).expect("fixture decodes");
    let mut b = Block::default();
    let mut n = 0;
    while d.read(&mut b).expect("fixture decodes") {
        n += b.frames() as u64;
    }
    n
}

/// Reads a mono source to the end.
fn read_mono(mut src: impl Source) -> Vec<f32> {
    let mut all = Vec::new();
    let mut b = Block::default();
    while src.read(&mut b).expect("in memory") {
        all.extend_from_slice(b.channel(0));
    }
    all
}

fn snr_db(reference: &[f32], test: &[f32]) -> f64 {
    let (mut sig, mut err) = (0f64, 0f64);
    for (&r, &t) in reference.iter().zip(test) {
        sig += f64::from(r).powi(2);
        err += (f64::from(r) - f64::from(t)).powi(2);
    }
    10.0 * (sig / err).log10()
}

fn lufs(x: &[f32]) -> f64 {
    let mut m = EbuR128::new(1, DENOISE_RATE, Mode::I).expect("valid");
    m.add_frames_f32(x).expect("valid");
    m.loudness_global().expect("mode I")
}

fn denoise_48k(x: &[f32]) -> Vec<f32> {
    let src = MemorySource::new(DENOISE_RATE, Block::from_channels(&[x]), 1024);
    read_mono(Processed::new(src, Denoise::new(1)))
}

/// The suppressor (issue 12, item 4): what it does to speech mixed with
/// steady noise at known SNRs and to clean speech, then what it costs.
fn denoise_group(fixtures: &Path) {
    if selected("denoise quality") {
        // Clean speech: L1 (speech-s16.wav), at 48 kHz, 0.5 s of silence
        // before and after.
        let bytes = std::fs::read(fixtures.join("speech-s16.wav")).expect("fixture present");
        let d = Decoder::open_bytes("clean", bytes).expect("fixture decodes");
        let speech = read_mono(Resample::new(d, DENOISE_RATE, "clean").expect("valid rates"));
        let pad = vec![0.0; DENOISE_RATE as usize / 2];
        let clean = [pad.as_slice(), &speech, &pad].concat();
        let reference = dc_blocked(&clean);
        let p_clean = clean.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / clean.len() as f64;
        let noise = room_noise(clean.len());
        for snr_in in [0.0, 10.0, 20.0] {
            let g = (p_clean / 10f64.powf(snr_in / 10.0)).sqrt() as f32;
            let noisy: Vec<f32> = clean.iter().zip(&noise).map(|(&c, &n)| c + g * n).collect();
            let out = denoise_48k(&noisy);
            println!(
                "denoise quality: speech + room noise at {snr_in:>4.1} dB SNR: {:.2} dB after ({:+.2} dB; {:.2} dB against the raw clean speech)",
                snr_db(&reference, &out),
                snr_db(&reference, &out) - snr_db(&reference, &dc_blocked(&noisy)),
                snr_db(&clean, &out),
            );
        }
        let out = denoise_48k(&clean);
        println!(
            "denoise quality: clean speech: loudness {:.2} -> {:.2} LUFS ({:+.2} LU), SNR of the output {:.2} dB ({:.2} dB against the raw input)",
            lufs(&clean),
            lufs(&out),
            lufs(&out) - lufs(&clean),
            snr_db(&reference, &out),
            snr_db(&clean, &out),
        );
    }
    let secs = SECONDS as f64;
    let at48 = speechlike(48000 * SECONDS);
    bench("denoise stage 48k mono", secs, || {
        let src = MemorySource::new(48000, Block::from_channels(&[&at48]), 960);
        black_box(read_mono(Processed::new(src, Denoise::new(1))).len());
    });
    let at441 = speechlike(RATE as usize * SECONDS);
    bench("denoise chain 44.1k->48k->44.1k mono", secs, || {
        let src = MemorySource::new(RATE, Block::from_channels(&[&at441]), 1024);
        black_box(read_mono(denoised(src, RATE, "bench").expect("valid rates")).len());
    });
}

fn main() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    for f in [
        "caller.webm",
        "response.ogg",
        "caller.m4a",
        "response.mp3",
        "response.flac",
        "caller.ogg",
        "caller-frag.mp4",
        "speech-s16.wav",
        "speech-f32.wav",
    ] {
        let bytes = std::fs::read(fixtures.join(f)).expect("fixture present");
        let d = Decoder::open_bytes("bench", bytes.clone()).expect("fixture decodes");
        let secs = decode_all(&bytes) as f64 / f64::from(d.sample_rate());
        bench(&format!("decode {f}"), secs, || {
            black_box(decode_all(&bytes));
        });
    }

    denoise_group(&fixtures);

    let n = RATE as usize * SECONDS;
    let mono = speechlike(n);
    let secs = SECONDS as f64;
    let at48: Vec<f32> = speechlike(48000 * SECONDS);
    bench("resample 48k->44.1k mono", secs, || {
        let src = MemorySource::new(48000, Block::from_channels(&[&at48]), 960);
        let mut rs = Resample::new(src, RATE, "bench").expect("valid rates");
        let mut b = Block::default();
        while rs.read(&mut b).expect("in memory") {
            black_box(b.frames());
        }
    });
    let at16: Vec<f32> = speechlike(16000 * SECONDS);
    bench("resample 16k->44.1k mono", secs, || {
        let src = MemorySource::new(16000, Block::from_channels(&[&at16]), 320);
        let mut rs = Resample::new(src, RATE, "bench").expect("valid rates");
        let mut b = Block::default();
        while rs.read(&mut b).expect("in memory") {
            black_box(b.frames());
        }
    });
    let blocks: Vec<Block> = mono
        .chunks(4096)
        .map(|c| Block::from_channels(&[c]))
        .collect();
    bench("silence trim mono", secs, || {
        let mut c = SilenceCutter::new(1, RATE, &SilenceSettings::default());
        let mut out = Block::new(1, 8192);
        for b in &blocks {
            out.clear();
            c.process(b, &mut out);
        }
        black_box(c.stats().frames_out);
    });
    let stereo: Vec<Block> = mono
        .chunks(4096)
        .map(|c| Block::from_channels(&[c, c]))
        .collect();
    // The front end's additions to the first pass (issue 12): the high-pass,
    // the whole-recording analysis, and the untrimmed spool written and read
    // back once (with the downmix on the way out).
    for (label, input) in [("mono", &blocks), ("stereo", &stereo)] {
        let ch = input[0].channels();
        bench(&format!("front highpass {label}"), secs, || {
            let mut hp = HighPass::new(ch, RATE, 60.0);
            let mut out = Block::new(ch, 4096);
            for b in input {
                out.clear();
                hp.process(b, &mut out);
            }
            black_box(out.frames());
        });
        bench(&format!("front analysis {label}"), secs, || {
            let mut a = FrontAnalysis::new(ch, RATE, 20.0);
            for b in input {
                a.add(b);
            }
            let d = a.downmix();
            black_box(a.threshold(&d, &SilenceSettings::default()));
        });
        let dir = TempDir::new(None).expect("temp dir");
        let path = dir.path().join("raw.f32");
        bench(&format!("front spool write+read {label}"), secs, || {
            let mut w = SpoolWriter::create(&path, RATE, ch).expect("spool");
            for b in input {
                w.write(b).expect("spool");
            }
            let spool = w.finish().expect("spool");
            let d = Downmix {
                weights: vec![1.0 / ch as f32; ch],
                rule: "average".into(),
                reason: String::new(),
            };
            let mut src = Downmixed::new(spool.open().expect("spool"), &d);
            let mut b = Block::default();
            while src.read(&mut b).expect("spool") {
                black_box(b.frames());
            }
        });
    }
    let loudness_series = Measures {
        lra: true,
        series: true,
        true_peak: false,
    };
    for (label, what) in [
        ("I", Measures::INTEGRATED),
        ("I, LRA, series", loudness_series),
        ("I, TP", Measures::LOUDNESS_AND_PEAK),
        ("I, LRA, TP, series", Measures::ALL),
    ] {
        for (ch, input) in [(1, &blocks), (2, &stereo)] {
            let layout = if ch == 1 { "mono" } else { "stereo" };
            bench(&format!("loudness meter {layout} ({label})"), secs, || {
                let mut m = Meter::new(ch, RATE, what).expect("meter");
                for b in input {
                    m.add_block(b).expect("finite");
                }
                black_box(m.measurement().expect("measured"));
            });
            if !what.true_peak {
                bench(
                    &format!("loudness ebur128 {layout} ({label})"),
                    secs,
                    || {
                        black_box(ebur128_meter(ch, input, what.series));
                    },
                );
            }
        }
    }
    bench("limiter mono", secs, || {
        let mut l = Limiter::new(1, RATE, -1.0);
        let mut out = vec![Vec::with_capacity(8192)];
        for b in &blocks {
            out[0].clear();
            l.process(&[b.channel(0)], &mut out);
        }
    });
    bench("limiter stereo", secs, || {
        let mut l = Limiter::new(2, RATE, -1.0);
        let mut out = vec![Vec::with_capacity(8192), Vec::with_capacity(8192)];
        for b in &stereo {
            out.iter_mut().for_each(Vec::clear);
            l.process(&b.planes(), &mut out);
        }
    });
    bench("mixer 5 parts -> stereo", secs, || {
        let part = n / 5;
        let lens = vec![part as u64; 5];
        let (fades, _) = plan_fades(&lens, u64::from(RATE));
        let parts: Vec<MixPart> = (0..5)
            .map(|k| MixPart {
                name: "p",
                source: Box::new(MemorySource::new(
                    RATE,
                    Block::from_channels(&[&mono[k * part..(k + 1) * part]]),
                    4096,
                )),
                len: part as u64,
                fade_in: true,
                fade_out: true,
            })
            .collect();
        let mut mix = Mix::new(parts, fades, 2).expect("parts fit");
        let (mut total, mut b) = (0, Block::default());
        while mix.read(&mut b).expect("lengths match") {
            total += b.frames();
        }
        black_box(total);
    });
    for (label, ch, kbps) in [
        ("encode mono 64 kb/s q3", 1u8, 64u32),
        ("encode stereo 128 kb/s q3", 2, 128),
    ] {
        bench(label, secs, || {
            let s = Mp3Format {
                options: Mp3Options {
                    bitrate_kbps: kbps,
                    quality: 3,
                },
                channels: ch,
                sample_rate: RATE,
            };
            let mut w =
                Mp3Writer::new("bench", Cursor::new(Vec::new()), &s).expect("valid settings");
            for b in &blocks {
                let c = b.channel(0);
                if ch == 1 {
                    w.write(&[c]).expect("encodes");
                } else {
                    w.write(&[c, c]).expect("encodes");
                }
            }
            black_box(w.finish().expect("finishes").1);
        });
    }

    // The chunked (parallel) writer against the single encoder above: one
    // stereo stream, 20 s chunks (the default) and 5 s chunks (more of them,
    // so a 60 s input shows how the pool scales).
    let episode = Mp3Format {
        options: Mp3Options {
            bitrate_kbps: 128,
            quality: 3,
        },
        channels: 2,
        sample_rate: RATE,
    };
    for threads in [1, 2] {
        let pool = EncodePool::new(threads).expect("threads start");
        for chunk_s in [20, 5] {
            let options = ChunkOptions {
                chunk: std::time::Duration::from_secs(chunk_s),
                ..ChunkOptions::default()
            };
            let name = format!("encode stereo 128 kb/s q3 chunked {chunk_s} s, {threads} thr");
            bench(&name, secs, || {
                let mut w = ChunkedMp3Writer::with_options(
                    "bench",
                    Cursor::new(Vec::new()),
                    &episode,
                    &pool,
                    &options,
                )
                .expect("valid settings");
                for b in &blocks {
                    let c = b.channel(0);
                    w.write(&[c, c]).expect("encodes");
                }
                black_box(w.finish().expect("finishes").1);
            });
        }
    }

    // End to end: the committed fixtures, bumpers embedded, outputs in memory.
    let call = std::fs::read(fixtures.join("caller.webm")).expect("fixture present");
    let response = std::fs::read(fixtures.join("response.ogg")).expect("fixture present");
    let input_s: f64 = [&call, &response]
        .iter()
        .map(|b| {
            let d = Decoder::open_bytes("bench", b.to_vec()).expect("fixture decodes");
            decode_all(b) as f64 / f64::from(d.sample_rate())
        })
        .sum();
    for verify in [true, false] {
        let label = if verify {
            "stitch fixtures (webm + ogg), verified"
        } else {
            "stitch fixtures (webm + ogg), --no-verify"
        };
        bench(label, input_s, || {
            let mut out = Outputs::in_memory();
            let settings = Settings {
                verify,
                ..Settings::default()
            };
            let report = stitch(
                Input::Bytes(call.clone()),
                Input::Bytes(response.clone()),
                Bumpers::embedded(),
                &mut out,
                &settings,
                &Quiet,
            )
            .expect("fixtures stitch");
            black_box(report.episode_audio_size);
        });
    }
}
