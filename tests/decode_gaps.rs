//! Issue 11: every decodable byte of a real upload. Each test builds its
//! input from a committed fixture or a generated signal, and checks the
//! decoded length against a count that does not come from podstitch or
//! symphonia: the generated signal's own length, FFmpeg's count for the
//! fixture (`fixtures/expected.txt`), or MPEG frames counted by the walker
//! in this file.

use std::io::Cursor;
use std::sync::Mutex;

use podstitch::internals::{decode_all, MAX_NON_FINITE_FRACTION};
use podstitch::stages::Decoder;
use podstitch::stages::{Block, Source};
use podstitch::Limits;
use podstitch::{Input, Observer, Settings};

mod common;
use common::{fixture, noise};

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("fixture")
}

/// FFmpeg's decoded length of a fixture (`fixtures/expected.txt`, written
/// by make-fixtures.sh).
fn ffmpeg_frames(name: &str) -> usize {
    let text = std::fs::read_to_string(fixture("expected.txt")).expect("expected.txt");
    text.lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&name)).then(|| f[3].parse().expect("a count"))
        })
        .unwrap_or_else(|| panic!("{name} not in expected.txt"))
}

fn decode(subject: &str, bytes: Vec<u8>) -> Block {
    decode_all(subject, Box::new(Cursor::new(bytes)))
        .unwrap_or_else(|e| panic!("{subject}: {e}"))
        .1
}

/// Decodes through a one-shot reader (no seeking, no length).
fn decode_stream(subject: &str, bytes: Vec<u8>) -> Block {
    let mut dec = Input::Reader(Box::new(Cursor::new(bytes)))
        .open(subject)
        .unwrap_or_else(|e| panic!("{subject}: {e}"));
    let mut all = Block::new(dec.channels(), 0);
    let mut block = Block::default();
    while dec
        .read(&mut block)
        .unwrap_or_else(|e| panic!("{subject}: {e}"))
    {
        for (dst, src) in all.channels_mut().iter_mut().zip(block.planes()) {
            dst.extend_from_slice(src);
        }
    }
    all
}

fn open_err(subject: &str, bytes: Vec<u8>) -> String {
    match decode_all(subject, Box::new(Cursor::new(bytes))) {
        Ok((_, b)) => panic!(
            "{subject}: decoded {} frames, expected an error",
            b.frames()
        ),
        Err(e) => e.to_string(),
    }
}

// ---------------------------------------------------------------- item 1

/// Encodes `signal` (mono, 44.1 kHz) as VBR MP3 *without* a Xing/Info tag,
/// as `lame -V 2 -t` does.
fn vbr_without_tag(signal: &[f32]) -> Vec<u8> {
    use mp3lame_encoder::{Builder, FlushGap, MonoPcm, Quality, VbrMode};
    let mut b = Builder::new().expect("lame");
    b.set_num_channels(1).expect("channels");
    b.set_sample_rate(44_100).expect("rate");
    b.set_vbr_mode(VbrMode::Mtrh).expect("vbr");
    b.set_vbr_quality(Quality::Good).expect("vbr quality");
    b.set_to_write_vbr_tag(false).expect("no tag");
    let mut enc = b.build().expect("encoder");
    let pcm: Vec<i16> = signal.iter().map(|&s| (s * 32767.0) as i16).collect();
    let mut out = Vec::new();
    for chunk in pcm.chunks(44_100) {
        out.reserve(mp3lame_encoder::max_required_buffer_size(chunk.len()));
        enc.encode_to_vec(MonoPcm(chunk), &mut out).expect("encode");
    }
    out.reserve(7200);
    enc.flush_to_vec::<FlushGap>(&mut out).expect("flush");
    out
}

/// MPEG audio Layer III frames in `b`, counted by walking the headers
/// (ISO/IEC 11172-3 §2.4.2.3; MPEG-1 only, which is what 44.1 kHz is).
fn mpeg1_frames(b: &[u8]) -> usize {
    const KBPS: [usize; 15] = [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ];
    let (mut at, mut n) = (0, 0);
    while at + 4 <= b.len() {
        assert!(
            b[at] == 0xFF && b[at + 1] & 0xFE == 0xFA,
            "frame sync at {at}"
        );
        let kbps = KBPS[usize::from(b[at + 2] >> 4)];
        let pad = usize::from((b[at + 2] >> 1) & 1);
        at += 144_000 * kbps / 44_100 + pad;
        n += 1;
    }
    assert_eq!(at, b.len(), "the frames fill the file");
    n
}

/// A loud, broadband start (high VBR bitrate) and a long quiet tone (low
/// bitrate): symphonia's estimate from the first frames' bitrate comes out
/// far too short. The reverse order makes it far too long.
fn loud_then_quiet(loud_first: bool) -> Vec<f32> {
    let loud = noise(44_100 * 6, 0.5, 7);
    let quiet: Vec<f32> = (0..44_100 * 24)
        .map(|i| 0.01 * (i as f32 * 2.0 * std::f32::consts::PI * 220.0 / 44_100.0).sin())
        .collect();
    if loud_first {
        [loud, quiet].concat()
    } else {
        [quiet, loud].concat()
    }
}

#[test]
fn vbr_mp3_without_a_header_decodes_to_its_real_end() {
    let signal = loud_then_quiet(true);
    let mp3 = vbr_without_tag(&signal);
    assert_ne!(&mp3[..3], b"ID3");
    let frames = mpeg1_frames(&mp3);
    for all in [
        decode("vbr", mp3.clone()),
        decode_stream("vbr", mp3.clone()),
    ] {
        // No gapless information: every frame's 1152 samples come out; the
        // signal is all there (the encoder delay is in front of it).
        assert_eq!(all.frames(), frames * 1152, "MPEG frames × 1152");
        assert!(
            all.frames() >= signal.len(),
            "{} < {}",
            all.frames(),
            signal.len()
        );
        assert!(all.frames() < signal.len() + 1105 + 2 * 1152);
    }
}

#[test]
fn a_bitrate_estimate_never_trips_the_duration_limit() {
    let signal = loud_then_quiet(false);
    let mp3 = vbr_without_tag(&signal);
    let real_s = (mpeg1_frames(&mp3) * 1152) as f64 / 44_100.0;
    let limits = Limits {
        max_duration_s: real_s + 1.0,
        ..Limits::default()
    };
    let mut dec = Input::Bytes(mp3)
        .open_within("vbr", &limits, false)
        .unwrap_or_else(|e| panic!("refused on an estimate: {e}"));
    let mut n = 0;
    let mut block = Block::default();
    while dec.read(&mut block).expect("decodes within the limit") {
        n += block.frames();
    }
    assert!(n >= signal.len());
}

// ---------------------------------------------------------------- item 2

#[test]
fn appended_webm_recordings_decode_in_order_as_one() {
    let one = read("caller.webm");
    let n = ffmpeg_frames("caller.webm");
    let two = decode("two webm", [one.clone(), one.clone()].concat());
    // FFmpeg's count for caller.webm honours its DiscardPadding of 648
    // samples, which podstitch keeps (tests/golden_decoders.rs).
    let each = n + 648;
    assert_eq!(two.frames(), 2 * each);
    let (a, b) = two.channel(0).split_at(each);
    assert_eq!(
        a, b,
        "the second recording decodes like the first, from a fresh decoder"
    );
    // Chrome's timeslice file followed by the fixture; a one-shot reader.
    let chrome = read("browser/chrome-timeslice-40s.webm");
    let first = decode("chrome", chrome.clone()).frames();
    let both = decode_stream("chrome+caller", [chrome, one].concat());
    assert_eq!(both.frames(), first + each);
}

#[test]
fn appended_webm_is_reported_and_logged_by_stitch() {
    let one = read("caller.webm");
    let logs = Logs::default();
    let (_, report) = common::stitch_in_memory(
        Input::Bytes([one.clone(), one].concat()),
        Input::Path(fixture("response.ogg")),
        &Settings::default(),
        &logs,
    );
    assert_eq!(report.caller.input_parts, 2);
    assert_eq!(report.response.input_parts, 1);
    let expected = 2.0 * (ffmpeg_frames("caller.webm") + 648) as f64 / 48_000.0;
    assert!((report.caller.input_duration_s - expected).abs() < 0.01);
    assert!(logs.has("2 recordings one after the other"), "{:?}", logs.0);
}

// ---------------------------------------------------------------- item 3

#[test]
fn streamed_wav_with_zero_sizes_is_read_to_the_end() {
    let wav = read("speech-s16.wav");
    let whole = decode("wav", wav.clone());
    assert_eq!(whole.frames(), ffmpeg_frames("speech-s16.wav"));
    let mut streamed = wav.clone();
    streamed[4..8].copy_from_slice(&[0; 4]);
    let data = streamed
        .windows(4)
        .position(|w| w == b"data")
        .expect("data")
        + 4;
    streamed[data..data + 4].copy_from_slice(&[0; 4]);
    for got in [
        decode("streamed", streamed.clone()),
        decode_stream("streamed", streamed),
    ] {
        assert_eq!(got.frames(), ffmpeg_frames("speech-s16.wav"));
        assert_eq!(got.channel(0), whole.channel(0));
    }
}

// ---------------------------------------------------------------- item 4

/// An ID3v2.4 tag with an APIC frame of `image_len` bytes.
fn id3_with_cover(image_len: usize) -> Vec<u8> {
    let syncsafe = |n: usize| {
        [
            (n >> 21) & 0x7f,
            (n >> 14) & 0x7f,
            (n >> 7) & 0x7f,
            n & 0x7f,
        ]
        .map(|x| x as u8)
    };
    let mut apic = vec![3u8]; // UTF-8
    apic.extend_from_slice(b"image/jpeg\0\x03cover\0");
    apic.extend((0..image_len).map(|i| (i * 7 % 256) as u8));
    let mut frame = b"APIC".to_vec();
    frame.extend(syncsafe(apic.len()));
    frame.extend([0, 0]);
    frame.extend(apic);
    let mut tag = b"ID3\x04\x00\x00".to_vec();
    tag.extend(syncsafe(frame.len()));
    tag.extend(frame);
    tag
}

#[test]
fn an_mp3_behind_a_large_id3_tag_is_found() {
    let mp3 = read("response.mp3");
    let plain = decode("mp3", mp3.clone());
    assert_eq!(plain.frames(), ffmpeg_frames("response.mp3"));
    for image in [100_000, 1 << 20, 3 << 20] {
        let tagged = [id3_with_cover(image), mp3.clone()].concat();
        for got in [
            decode("tagged", tagged.clone()),
            decode_stream("tagged", tagged.clone()),
        ] {
            assert_eq!(got.frames(), ffmpeg_frames("response.mp3"), "cover {image}");
            assert_eq!(got.channel(0), plain.channel(0));
        }
    }
    // A tag and nothing after it says so.
    let err = open_err("tag only", id3_with_cover(2000));
    assert!(err.contains("only an ID3 tag"), "{err}");
}

#[test]
fn podstitch_reads_its_own_output_behind_a_large_tag() {
    // The episode issue writes cover art into the outputs' tags; the
    // verification and `analyze` open them like any input.
    let (_, mut out) = (
        (),
        common::stitch_in_memory(
            Input::Path(fixture("caller.webm")),
            Input::Path(fixture("response.ogg")),
            &Settings::default(),
            &podstitch::Quiet,
        )
        .0,
    );
    let seg = std::mem::take(out.caller_segment.get_mut());
    let plain = decode("segment", seg.clone());
    let tagged = [id3_with_cover(2 << 20), seg].concat();
    let got = decode("tagged segment", tagged.clone());
    assert_eq!(got.frames(), plain.frames());
    let dec = Decoder::open_bytes("tagged segment", tagged).expect("opens");
    // The Info tag behind the cover is still read: gapless trim and length.
    assert_eq!(dec.declared_frames(), Some(plain.frames() as u64));
    assert!(dec.declared_trim().0.is_some());
}

// ---------------------------------------------------------------- item 5

/// The Ogg CRC-32 (polynomial 0x04C11DB7, no reflection, initial value 0;
/// RFC 3533 §6).
fn ogg_crc(data: &[u8]) -> u32 {
    let mut crc = 0u32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// `ogg` with every page's serial number replaced (and its CRC redone), so
/// that it can be chained after a stream with the original serial.
fn with_serial(ogg: &[u8], serial: u32) -> Vec<u8> {
    let mut out = ogg.to_vec();
    let mut at = 0;
    while at + 27 <= out.len() {
        assert_eq!(&out[at..at + 4], b"OggS", "page at {at}");
        let segs = usize::from(out[at + 26]);
        let body: usize = out[at + 27..at + 27 + segs]
            .iter()
            .map(|&l| usize::from(l))
            .sum();
        let len = 27 + segs + body;
        out[at + 14..at + 18].copy_from_slice(&serial.to_le_bytes());
        out[at + 22..at + 26].copy_from_slice(&[0; 4]);
        let crc = ogg_crc(&out[at..at + len]);
        out[at + 22..at + 26].copy_from_slice(&crc.to_le_bytes());
        at += len;
    }
    assert_eq!(at, out.len());
    out
}

#[test]
fn chained_ogg_links_decode_in_order() {
    for (name, channels) in [("response.ogg", 1), ("caller.ogg", 2)] {
        let one = read(name);
        let n = ffmpeg_frames(name);
        assert_eq!(decode(name, one.clone()).frames(), n);
        let chained = [one.clone(), with_serial(&one, 0x5eed_0002)].concat();
        for got in [decode(name, chained.clone()), decode_stream(name, chained)] {
            assert_eq!(got.channels(), channels);
            assert_eq!(got.frames(), 2 * n, "{name}: two links");
            for c in 0..channels {
                let (a, b) = got.channel(c).split_at(n);
                assert_eq!(a, b, "{name}: the second link decodes like the first");
            }
        }
    }
}

#[test]
fn chained_ogg_links_that_differ_are_refused_with_the_fix() {
    let chained = [read("response.ogg"), read("caller.ogg")].concat();
    let err = open_err("call.ogg", chained);
    assert!(err.starts_with("call.ogg: decode: "), "{err}");
    assert!(
        err.contains("one after the other") && err.contains("recording 2"),
        "{err}"
    );
    assert!(
        err.contains("44100 Hz/2") && err.contains("48000 Hz/1"),
        "{err}"
    );
    assert!(
        err.contains("export the file again as one recording"),
        "{err}"
    );
}

// ---------------------------------------------------------------- item 6

/// A RIFF/WAVE file whose `fmt ` chunk has format tag `tag`, around `data`.
fn riff_wave(tag: u16, data: &[u8]) -> Vec<u8> {
    let mut fmt = tag.to_le_bytes().to_vec();
    fmt.extend([1, 0]); // mono
    fmt.extend(22_050u32.to_le_bytes());
    fmt.extend(8_000u32.to_le_bytes());
    fmt.extend([1, 0, 0, 0]);
    fmt.extend([0, 0]); // cbSize
    let mut w = b"RIFF".to_vec();
    w.extend(((4 + 8 + fmt.len() + 8 + data.len()) as u32).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend((fmt.len() as u32).to_le_bytes());
    w.extend(fmt);
    w.extend_from_slice(b"data");
    w.extend((data.len() as u32).to_le_bytes());
    w.extend_from_slice(data);
    w
}

#[test]
fn other_codecs_inside_wav_are_named_with_the_fix() {
    let err = open_err("upload.wav", riff_wave(0x55, &read("response.mp3")));
    assert!(err.starts_with("upload.wav: detect format: "), "{err}");
    assert!(
        err.contains("MP3") && err.contains("WAV") && err.contains("0x0055"),
        "{err}"
    );
    assert!(err.contains("upload the MP3 itself"), "{err}");
    let err = open_err("gsm.wav", riff_wave(0x31, &[0; 650]));
    assert!(
        err.contains("GSM 6.10") && err.contains("export it as PCM WAV"),
        "{err}"
    );
    assert!(!err.contains("no known container signature"), "{err}");
}

// ---------------------------------------------------------------- item 8

/// Collects log lines.
#[derive(Default)]
struct Logs(Mutex<Vec<String>>);

impl Observer for Logs {
    fn log(&self, line: &str) {
        self.0.lock().expect("logs").push(line.to_string());
    }
}

impl Logs {
    fn has(&self, needle: &str) -> bool {
        self.0
            .lock()
            .expect("logs")
            .iter()
            .any(|l| l.contains(needle))
    }
}

/// speech-f32.wav with `bad` of its samples replaced by NaN and infinities.
fn float_wav_with_non_finite(bad: usize) -> Vec<u8> {
    let mut wav = read("speech-f32.wav");
    let data = wav.windows(4).position(|w| w == b"data").expect("data") + 8;
    let samples = (wav.len() - data) / 4;
    let step = samples / bad;
    for k in 0..bad {
        let at = data + 4 * (k * step);
        let v = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][k % 3];
        wav[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    wav
}

#[test]
fn non_finite_samples_are_counted_logged_and_reported() {
    let logs = Logs::default();
    let (_, report) = common::stitch_in_memory(
        Input::Bytes(float_wav_with_non_finite(30)),
        Input::Path(fixture("response.ogg")),
        &Settings::default(),
        &logs,
    );
    assert_eq!(report.caller.non_finite_samples, 30);
    assert_eq!(report.response.non_finite_samples, 0);
    assert!(
        logs.has("30 sample(s) were NaN or infinite") && logs.has("caller recording"),
        "{:?}",
        logs.0
    );
    let json = report.to_json_line();
    assert!(json.contains("\"nonFiniteSamples\":30"), "{json}");
}

#[test]
fn too_many_non_finite_samples_refuse_the_file() {
    let frames = ffmpeg_frames("speech-f32.wav");
    let over = (frames as f64 * MAX_NON_FINITE_FRACTION) as usize + 10;
    let err = open_err("float.wav", float_wav_with_non_finite(over));
    assert!(err.starts_with("float.wav: decode: "), "{err}");
    assert!(
        err.contains("not numbers") && err.contains("damaged"),
        "{err}"
    );
    // Just under the fraction decodes, with its count.
    let under = (frames as f64 * MAX_NON_FINITE_FRACTION) as usize - 10;
    let mut dec =
        Decoder::open_bytes("float.wav", float_wav_with_non_finite(under)).expect("opens");
    let stats = dec.stats();
    let mut block = Block::default();
    while dec.read(&mut block).expect("decodes") {}
    assert_eq!(stats.non_finite(), under as u64);
    assert_eq!(stats.samples(), frames as u64);
}
