//! Synthesises podstitch's three original bumpers (intro, interstitial,
//! outro) and encodes them with [`podstitch::stages::Mp3Writer`] as 44.1 kHz
//! stereo 128 kb/s MP3s.
//!
//! Run with `cargo run --release --example make_bumpers -- assets/`.
//!
//! Everything is additive synthesis (harmonic series with per-partial decay,
//! an inharmonic bell, a soft pad), a little deterministic noise (fixed-seed
//! generator) and a small feedback-delay reverb. The output is the same on
//! every run.

use std::f32::consts::{FRAC_PI_2, PI, TAU};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use podstitch::stages::{Mp3Format, Mp3Writer};
use podstitch::Mp3Options;

const RATE: u32 = 44_100;
const SR: f32 = RATE as f32;
/// Target integrated loudness: the episode's speech target, so the bumpers
/// sit at the same level as the voices around them.
const LOUDNESS_LUFS: f64 = -16.0;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "assets".into()));
    std::fs::create_dir_all(&dir)?;
    for (name, mut song) in [
        ("intro", intro()),
        ("interstitial", interstitial()),
        ("outro", outro()),
    ] {
        song.finish();
        let path = dir.join(format!("{name}.mp3"));
        let bytes = write_mp3(&path, &song)?;
        println!(
            "{}: {:.2} s, {} bytes",
            path.display(),
            song.l.len() as f32 / SR,
            bytes
        );
    }
    Ok(())
}

fn write_mp3(path: &Path, song: &Song) -> Result<u64, Box<dyn std::error::Error>> {
    let settings = Mp3Format {
        options: Mp3Options {
            bitrate_kbps: 128,
            quality: 2,
        },
        channels: 2,
        sample_rate: RATE,
    };
    let subject = format!("bumper ({})", path.display());
    let sink = BufWriter::new(File::create(path)?);
    let mut writer = Mp3Writer::new(&subject, sink, &settings)?;
    for (l, r) in song.l.chunks(8192).zip(song.r.chunks(8192)) {
        writer.write(&[l, r])?;
    }
    let (_, bytes) = writer.finish()?;
    Ok(bytes)
}

/// MIDI note number to frequency in Hz.
fn hz(note: u8) -> f32 {
    440.0 * 2f32.powf((f32::from(note) - 69.0) / 12.0)
}

/// A stereo piece being built.
struct Song {
    l: Vec<f32>,
    r: Vec<f32>,
    fade_in: f32,
    fade_out: f32,
    reverb: f32,
}

/// How a note sounds.
#[derive(Clone, Copy)]
enum Voice {
    /// Soft electric-piano-like pluck: harmonics that die away faster the
    /// higher they are.
    Pluck,
    /// Sustained pad: two slightly detuned harmonic tones with slow attack.
    Pad,
    /// Bell: inharmonic partials, long decay.
    Bell,
    /// Round bass: fundamental and a touch of second harmonic.
    Bass,
}

impl Song {
    fn new(seconds: f32, fade_in: f32, fade_out: f32) -> Self {
        let n = (seconds * SR) as usize;
        Song {
            l: vec![0.0; n],
            r: vec![0.0; n],
            fade_in,
            fade_out,
            reverb: 0.22,
        }
    }

    /// Adds one note starting at `at` seconds, held `dur` seconds (it rings
    /// on after that), `pan` from −1 (left) to 1 (right).
    fn note(&mut self, voice: Voice, at: f32, dur: f32, note: u8, amp: f32, pan: f32) {
        let f = hz(note);
        let angle = (pan.clamp(-1.0, 1.0) + 1.0) * FRAC_PI_2 / 2.0;
        let (gl, gr) = (angle.cos(), angle.sin());
        let ring = match voice {
            Voice::Pluck => 1.2,
            Voice::Pad => 1.5,
            Voice::Bell => 3.5,
            Voice::Bass => 0.4,
        };
        let start = (at * SR) as usize;
        let len = ((dur + ring) * SR) as usize;
        let end = (start + len).min(self.l.len());
        for i in start..end {
            let t = (i - start) as f32 / SR;
            // A 10 ms fade where rendering stops, so no tail ends in a click.
            let tail = ((start + len - i) as f32 / (0.01 * SR)).min(1.0);
            let s = amp * tail * sample(voice, f, t, dur);
            self.l[i] += gl * s;
            self.r[i] += gr * s;
        }
    }

    /// Adds a chord on one voice, spread across the stereo field.
    fn chord(&mut self, voice: Voice, at: f32, dur: f32, notes: &[u8], amp: f32) {
        let n = notes.len().max(2) as f32 - 1.0;
        for (k, &m) in notes.iter().enumerate() {
            let pan = -0.5 + k as f32 / n;
            self.note(voice, at, dur, m, amp, pan);
        }
    }

    /// Plays `notes` one after another, `step` seconds apart, each held
    /// `hold` seconds, panned back and forth.
    fn arpeggio(&mut self, at: f32, step: f32, hold: f32, notes: &[u8], amp: f32) {
        for (k, &m) in notes.iter().enumerate() {
            let pan = if k % 2 == 0 { -0.35 } else { 0.35 };
            // A gentle accent on the first note of each group of four.
            let a = if k % 4 == 0 { amp } else { amp * 0.8 };
            self.note(Voice::Pluck, at + k as f32 * step, hold, m, a, pan);
        }
    }

    /// A soft swell of low-passed noise from `at` to `at + dur`, rising in
    /// level and brightness, then falling away quickly.
    fn swell(&mut self, at: f32, dur: f32, amp: f32) {
        let mut rng = Lcg(0x5eed_1234_abcd_0001);
        let (mut yl, mut yr) = (0f32, 0f32);
        let start = (at * SR) as usize;
        let end = (((at + dur + 2.0) * SR) as usize).min(self.l.len());
        for i in start..end {
            let t = (i - start) as f32 / SR;
            let rise = (t / dur).min(1.0);
            let env = if t < dur {
                rise * rise * (3.0 - 2.0 * rise)
            } else {
                (-(t - dur) / 0.3).exp()
            };
            // One-pole low-pass whose cutoff opens from ~300 Hz to ~5 kHz.
            let cutoff = 300.0 * (5000.0f32 / 300.0).powf(rise);
            let a = 1.0 - (-TAU * cutoff / SR).exp();
            yl += a * (rng.next() - yl);
            yr += a * (rng.next() - yr);
            self.l[i] += amp * env * yl;
            self.r[i] += amp * env * yr;
        }
    }

    /// Reverb, fades and loudness normalisation.
    fn finish(&mut self) {
        reverb(&mut self.l, &mut self.r, self.reverb);
        let n = self.l.len();
        let fi = (self.fade_in * SR) as usize;
        let fo = (self.fade_out * SR) as usize;
        for i in 0..n {
            let mut g = 1.0;
            if i < fi {
                g *= raised_cosine(i as f32 / fi as f32);
            }
            if i + fo > n {
                g *= raised_cosine((n - i) as f32 / fo as f32);
            }
            self.l[i] *= g;
            self.r[i] *= g;
        }
        let mut meter =
            podstitch::stages::Meter::new(2, RATE, podstitch::stages::Measures::INTEGRATED)
                .expect("a stereo 44.1 kHz meter");
        meter.add(&[&self.l, &self.r]).expect("finite samples");
        let lufs = meter.measurement().expect("a measurement").integrated_lufs;
        let gain = 10f64.powf((LOUDNESS_LUFS - lufs) / 20.0) as f32;
        for x in self.l.iter_mut().chain(self.r.iter_mut()) {
            *x *= gain;
        }
    }
}

/// 0 at x = 0 to 1 at x = 1, smoothly.
fn raised_cosine(x: f32) -> f32 {
    0.5 - 0.5 * (PI * x.clamp(0.0, 1.0)).cos()
}

/// One sample of a voice at time `t` into a note held `dur` seconds.
fn sample(voice: Voice, f: f32, t: f32, dur: f32) -> f32 {
    // Release after the note is let go.
    let released = t > dur;
    match voice {
        Voice::Pluck => {
            let attack = (t / 0.004).min(1.0);
            let release = if released {
                (-(t - dur) / 0.25).exp()
            } else {
                1.0
            };
            let mut s = 0.0;
            for k in 1..=6 {
                let kf = k as f32;
                if f * kf > 12_000.0 {
                    break;
                }
                let decay = (-t * (1.2 + 1.6 * kf)).exp();
                s += (TAU * f * kf * t).sin() * decay / kf.powf(1.6);
            }
            0.6 * attack * release * s
        }
        Voice::Pad => {
            let a = 0.9;
            let attack = if t < a { raised_cosine(t / a) } else { 1.0 };
            let release = if released {
                raised_cosine(1.0 - (t - dur) / 1.5)
            } else {
                1.0
            };
            // Slow shimmer: the two detuned copies beat gently.
            let mut s = 0.0;
            for (detune, phase) in [(0.9985f32, 0.0f32), (1.0015, 1.3)] {
                for k in 1..=5 {
                    let kf = k as f32;
                    s += (TAU * f * detune * kf * t + phase * kf).sin() / (kf * kf);
                }
            }
            0.25 * attack * release * s
        }
        Voice::Bell => {
            let attack = (t / 0.002).min(1.0);
            let mut s = 0.0;
            for (ratio, amp, decay) in [
                (1.0f32, 1.0f32, 0.9f32),
                (2.0, 0.35, 1.6),
                (2.76, 0.3, 2.2),
                (5.4, 0.12, 3.5),
                (8.93, 0.05, 5.0),
            ] {
                if f * ratio > 14_000.0 {
                    continue;
                }
                s += amp * (TAU * f * ratio * t).sin() * (-t * decay).exp();
            }
            0.45 * attack * s
        }
        Voice::Bass => {
            let attack = (t / 0.02).min(1.0);
            let release = if released {
                (-(t - dur) / 0.12).exp()
            } else {
                1.0
            };
            let body = (-t * 0.6).exp() * 0.6 + 0.4;
            let s = (TAU * f * t).sin() + 0.25 * (TAU * 2.0 * f * t).sin();
            0.7 * attack * release * body * s
        }
    }
}

/// Small stereo reverb: per channel, four damped feedback combs in
/// parallel then two all-passes, mixed in at `wet`.
fn reverb(l: &mut [f32], r: &mut [f32], wet: f32) {
    for (chan, spread) in [(l, 0usize), (r, 29usize)] {
        let mut combs: Vec<Comb> = [1327usize, 1453, 1559, 1693]
            .iter()
            .map(|&d| Comb::new(d + spread, 0.8, 0.35))
            .collect();
        let mut passes: Vec<AllPass> = [503usize, 379]
            .iter()
            .map(|&d| AllPass::new(d + spread / 2))
            .collect();
        for x in chan.iter_mut() {
            let input = *x * 0.25;
            let mut y: f32 = combs.iter_mut().map(|c| c.run(input)).sum();
            for p in &mut passes {
                y = p.run(y);
            }
            *x = *x * (1.0 - wet * 0.5) + wet * y;
        }
    }
}

struct Comb {
    buf: Vec<f32>,
    pos: usize,
    feedback: f32,
    damp: f32,
    low: f32,
}

impl Comb {
    fn new(len: usize, feedback: f32, damp: f32) -> Self {
        Comb {
            buf: vec![0.0; len],
            pos: 0,
            feedback,
            damp,
            low: 0.0,
        }
    }

    fn run(&mut self, x: f32) -> f32 {
        let out = self.buf[self.pos];
        self.low = out * (1.0 - self.damp) + self.low * self.damp;
        self.buf[self.pos] = x + self.low * self.feedback;
        self.pos = (self.pos + 1) % self.buf.len();
        out
    }
}

struct AllPass {
    buf: Vec<f32>,
    pos: usize,
}

impl AllPass {
    fn new(len: usize) -> Self {
        AllPass {
            buf: vec![0.0; len],
            pos: 0,
        }
    }

    fn run(&mut self, x: f32) -> f32 {
        let delayed = self.buf[self.pos];
        let out = delayed - 0.5 * x;
        self.buf[self.pos] = x + 0.5 * delayed;
        self.pos = (self.pos + 1) % self.buf.len();
        out
    }
}

/// Fixed-seed linear congruential generator giving white noise in [-1, 1).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 40) as f32 / (1u64 << 23) as f32) - 1.0
    }
}

// Notes (MIDI numbers) used below.
const B1: u8 = 35;
const D2: u8 = 38;
const E2: u8 = 40;
const G2: u8 = 43;
const A2: u8 = 45;
const B2: u8 = 47;
const D3: u8 = 50;
const E3: u8 = 52;
const FS3: u8 = 54;
const G3: u8 = 55;
const A3: u8 = 57;
const B3: u8 = 59;
const CS4: u8 = 61;
const D4: u8 = 62;
const E4: u8 = 64;
const FS4: u8 = 66;
const G4: u8 = 67;
const A4: u8 = 69;
const CS5: u8 = 73;
const D5: u8 = 74;
const E5: u8 = 76;
const FS5: u8 = 78;
const A5: u8 = 81;

/// Eighth note at 96 beats per minute.
const EIGHTH: f32 = 0.3125;
/// One bar of 4/4 at 96 beats per minute.
const BAR: f32 = 8.0 * EIGHTH;

/// Intro, ~8 s: a noise swell and pad open onto a rising D-major arpeggio
/// (Dmaj7, Bm7, Gmaj7, Asus4), landing on a ringing Dmaj9 with a bell motif
/// that carries the 1 s crossfade into speech.
fn intro() -> Song {
    let mut s = Song::new(8.0, 0.25, 1.6);
    s.swell(0.0, 1.25, 0.2);
    s.chord(Voice::Pad, 0.2, 1.6, &[D3, A3, CS4, FS4], 0.55);
    let t0 = 1.25;
    let progression: [(&[u8], u8, &[u8]); 4] = [
        (&[D4, FS4, A4, CS5], D2, &[D3, A3, CS4, FS4]),
        (&[B3, D4, FS4, A4], B1, &[B2, FS3, A3, D4]),
        (&[G3, B3, D4, FS4], G2, &[G3, B3, D4, FS4]),
        (&[A3, D4, E4, A4], A2, &[A3, D4, E4, A4]),
    ];
    for (k, (arp, bass, pad)) in progression.iter().enumerate() {
        let at = t0 + k as f32 * BAR / 2.0;
        s.arpeggio(at, EIGHTH, EIGHTH * 1.5, arp, 0.5);
        s.note(Voice::Bass, at, BAR / 2.0 - 0.05, *bass, 0.5, 0.0);
        s.chord(Voice::Pad, at, BAR / 2.0, pad, 0.35);
    }
    let end = t0 + 2.0 * BAR; // 6.25 s
    s.chord(Voice::Pad, end, 1.2, &[D3, A3, CS4, E4, FS4], 0.45);
    s.note(Voice::Bass, end, 1.0, D2, 0.5, 0.0);
    s.note(Voice::Bell, end, 1.0, A5, 0.28, 0.3);
    s.note(Voice::Bell, end + EIGHTH, 1.0, FS5, 0.24, -0.3);
    s.note(Voice::Bell, end + 2.0 * EIGHTH, 1.0, D5, 0.26, 0.0);
    s
}

/// Interstitial, ~5 s: a G-major pad swells in (under the 1 s crossfade),
/// a descending bell motif answers the intro's, then a short arpeggio
/// resolves to D and rings out.
fn interstitial() -> Song {
    let mut s = Song::new(5.0, 0.6, 1.3);
    s.chord(Voice::Pad, 0.0, 1.8, &[G3, B3, D4, FS4], 0.5);
    s.note(Voice::Bass, 0.3, 1.5, G2, 0.35, 0.0);
    s.note(Voice::Bell, 0.95, 0.5, A5, 0.26, 0.35);
    s.note(Voice::Bell, 0.95 + EIGHTH, 0.5, FS5, 0.24, -0.35);
    s.note(Voice::Bell, 0.95 + 2.0 * EIGHTH, 0.5, E5, 0.22, 0.2);
    s.note(Voice::Bell, 0.95 + 3.0 * EIGHTH, 0.8, D5, 0.26, -0.1);
    let at = 2.25;
    s.arpeggio(
        at,
        EIGHTH / 2.0,
        EIGHTH,
        &[D4, FS4, A4, D5, FS5, A4, D5],
        0.45,
    );
    s.chord(Voice::Pad, at, 1.6, &[D3, A3, D4, E4, FS4], 0.45);
    s.note(Voice::Bass, at, 1.6, D2, 0.45, 0.0);
    s
}

/// Outro, ~10 s: a pad fades in under the speech (1 s crossfade), the
/// arpeggio returns over Bm7, Gmaj7, Em7, Asus4 with the bell motif on top,
/// and everything settles on a long Dmaj9 that fades out.
fn outro() -> Song {
    let mut s = Song::new(10.0, 0.7, 2.6);
    s.chord(Voice::Pad, 0.0, 1.6, &[B2, FS3, A3, D4], 0.5);
    s.note(Voice::Bass, 0.4, 1.1, B1, 0.35, 0.0);
    let t0 = 1.25;
    let progression: [(&[u8], u8, &[u8]); 4] = [
        (&[B3, D4, FS4, A4], B1, &[B2, FS3, A3, D4]),
        (&[G3, B3, D4, FS4], G2, &[G3, B3, D4, FS4]),
        (&[E3, G3, B3, D4], E2, &[E3, B3, D4, G4]),
        (&[A3, D4, E4, A4], A2, &[A3, D4, E4, G4]),
    ];
    for (k, (arp, bass, pad)) in progression.iter().enumerate() {
        let at = t0 + k as f32 * BAR / 2.0;
        s.arpeggio(at, EIGHTH, EIGHTH * 1.5, arp, 0.45);
        s.note(Voice::Bass, at, BAR / 2.0 - 0.05, *bass, 0.5, 0.0);
        s.chord(Voice::Pad, at, BAR / 2.0, pad, 0.35);
    }
    s.note(Voice::Bell, t0 + 0.5 * BAR, 0.5, FS5, 0.2, 0.3);
    s.note(
        Voice::Bell,
        t0 + 0.5 * BAR + 2.0 * EIGHTH,
        0.5,
        E5,
        0.18,
        -0.3,
    );
    s.note(Voice::Bell, t0 + 1.5 * BAR, 0.5, CS5, 0.2, 0.3);
    s.note(
        Voice::Bell,
        t0 + 1.5 * BAR + 2.0 * EIGHTH,
        0.5,
        E5,
        0.18,
        -0.3,
    );
    let end = t0 + 2.0 * BAR; // 6.25 s
    s.chord(Voice::Pad, end, 2.6, &[D3, A3, CS4, E4, FS4], 0.45);
    s.note(Voice::Bass, end, 2.4, D2, 0.5, 0.0);
    s.arpeggio(end, EIGHTH, EIGHTH * 2.0, &[D4, FS4, A4, CS5, E5], 0.35);
    s.note(Voice::Bell, end + 5.0 * EIGHTH, 1.5, D5, 0.26, 0.0);
    s.note(Voice::Bell, end + 5.0 * EIGHTH, 1.5, A5, 0.16, 0.4);
    s
}
