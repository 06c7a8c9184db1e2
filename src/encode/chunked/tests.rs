use super::*;
use std::io::{Cursor, Seek, SeekFrom, Write};

use crate::encode::tests::decode;
use crate::encode::Mp3Options;

const RATE: u32 = 44_100;

fn stereo() -> Mp3Format {
    Mp3Format {
        options: Mp3Options {
            bitrate_kbps: 128,
            quality: 3,
        },
        channels: 2,
        sample_rate: RATE,
    }
}

/// Noisy tones with an envelope, different in each channel.
pub(crate) fn signal(frames: usize, channels: usize) -> Vec<Vec<f32>> {
    let mut seed = 7u32;
    (0..channels)
        .map(|c| {
            (0..frames)
                .map(|i| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    let noise = (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
                    let t = i as f32 / RATE as f32;
                    let env = 0.5 + 0.5 * (t * 3.0 + c as f32).sin();
                    env * (0.3 * (t * 440.0 * std::f32::consts::TAU).sin() + 0.2 * noise)
                })
                .collect()
        })
        .collect()
}

fn options(seconds: f64) -> ChunkOptions {
    ChunkOptions {
        chunk: Duration::from_secs_f64(seconds),
        ..ChunkOptions::default()
    }
}

/// A stereo writer into memory.
fn writer<'p>(
    subject: &str,
    pool: &'p EncodePool,
    opts: &ChunkOptions,
) -> Result<ChunkedMp3Writer<'p, Cursor<Vec<u8>>>> {
    ChunkedMp3Writer::with_options(subject, Cursor::new(Vec::new()), &stereo(), pool, opts)
}

fn encode_with(
    planes: &[Vec<f32>],
    pool: &EncodePool,
    opts: &ChunkOptions,
    faults: Faults,
) -> Result<(Vec<u8>, ChunkReport)> {
    let mut w = writer("t (t.mp3)", pool, opts)?;
    w.faults = faults;
    let n = planes[0].len();
    let mut pos = 0;
    for step in [1000, 0, 7, 33_333, 4096].iter().cycle() {
        let end = (pos + step).min(n);
        let block: Vec<&[f32]> = planes.iter().map(|p| &p[pos..end]).collect();
        w.write(&block)?;
        pos = end;
        if pos == n {
            break;
        }
    }
    let (c, report) = w.finish_with_report()?;
    Ok((c.into_inner(), report))
}

/// The decoded length equals the input and the audio is the input.
fn check_decodes(data: Vec<u8>, planes: &[Vec<f32>]) {
    let (_, decoded) = decode(data);
    assert_eq!(decoded.len(), planes.len());
    for (want, got) in planes.iter().zip(&decoded) {
        assert_eq!(got.len(), want.len(), "gapless length");
        let (mut sig, mut err) = (0f64, 0f64);
        for (w, g) in want.iter().zip(got) {
            sig += f64::from(*w).powi(2);
            err += f64::from(w - g).powi(2);
        }
        let snr = 10.0 * (sig / err).log10();
        assert!(snr > 12.0, "SNR {snr:.1} dB");
    }
}

#[test]
fn small_chunks_decode_to_the_written_length() {
    let pool = EncodePool::new(2).unwrap();
    let planes = signal(RATE as usize * 6 + 123, 2);
    let (data, report) = encode_with(&planes, &pool, &options(1.0), Faults::default()).unwrap();
    assert_eq!(report.bytes, data.len() as u64);
    assert_eq!(
        (report.chunks, report.joins.len(), report.continued),
        (6, 5, 0)
    );
    check_decodes(data, &planes);
}

#[test]
fn without_a_clean_join_the_earlier_encoder_continues() {
    let pool = EncodePool::new(2).unwrap();
    let planes = signal(RATE as usize * 6 + 123, 2);
    // Chunk 2 cannot join chunk 1, nor chunk 5 (the last) chunk 4.
    for refuse in [2, 5] {
        let faults = Faults {
            refuse_join_to: Some(refuse),
            ..Faults::default()
        };
        let (data, report) = encode_with(&planes, &pool, &options(1.0), faults).unwrap();
        assert_eq!(
            (report.chunks, report.joins.len(), report.continued),
            (6, 4, 1)
        );
        check_decodes(data, &planes);
    }
}

#[test]
fn a_panicking_chunk_encoder_is_an_encode_error() {
    let pool = EncodePool::new(2).unwrap();
    let planes = signal(RATE as usize * 8, 2);
    for chunk in [0, 3, 7] {
        let faults = Faults {
            panic_in_chunk: Some(chunk),
            ..Faults::default()
        };
        let err = encode_with(&planes, &pool, &options(1.0), faults).unwrap_err();
        assert_eq!(err.stage_of(), Some(Stage::Encode), "{err}");
        assert!(err.to_string().contains("panicked"), "{err}");
        assert!(err.to_string().starts_with("t (t.mp3): encode:"), "{err}");
    }
    // The pool survived: a clean run on it still works.
    let (data, _) = encode_with(&planes, &pool, &options(1.0), Faults::default()).unwrap();
    check_decodes(data, &planes);
}

#[test]
fn after_an_error_the_writer_refuses_work() {
    let pool = EncodePool::new(1).unwrap();
    let mut w = writer("t", &pool, &options(1.0)).unwrap();
    w.faults.panic_in_chunk = Some(0);
    let x = vec![0.1f32; RATE as usize];
    let mut failed = None;
    for _ in 0..10 {
        if let Err(e) = w.write(&[&x, &x]) {
            failed = Some(e);
            break;
        }
    }
    assert!(failed.is_some(), "the failure surfaced while writing");
    let err = w.write(&[&x, &x]).unwrap_err();
    assert!(err.to_string().contains("already failed"), "{err}");
    assert!(w.finish().is_err());
}

#[test]
fn wrong_channel_count_in_write_errors() {
    let pool = EncodePool::new(1).unwrap();
    let mut w = ChunkedMp3Writer::new("stereo", Cursor::new(Vec::new()), &stereo(), &pool).unwrap();
    let (a, b) = ([0.0f32; 10], [0.0f32; 9]);
    let err = w.write(&[&a]).unwrap_err();
    assert_eq!(err.stage_of(), Some(Stage::Encode));
    let mut bad = stereo();
    bad.options.bitrate_kbps = 100;
    let err = ChunkedMp3Writer::new("bad", Cursor::new(Vec::new()), &bad, &pool).unwrap_err();
    assert!(matches!(err, Error::Settings(_)), "{err}");
    let mut w = ChunkedMp3Writer::new("stereo", Cursor::new(Vec::new()), &stereo(), &pool).unwrap();
    let err = w.write(&[&a, &b]).unwrap_err();
    assert_eq!(err.stage_of(), Some(Stage::Encode));
}

/// A sink that keeps no bytes, only its length (`.0`) and position.
#[derive(Default)]
struct Counting(u64, u64);

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.1 += buf.len() as u64;
        self.0 = self.0.max(self.1);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Seek for Counting {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        match pos {
            SeekFrom::Start(p) => self.1 = p,
            SeekFrom::Current(d) => self.1 = self.1.saturating_add_signed(d),
            SeekFrom::End(d) => self.1 = self.0.saturating_add_signed(d),
        }
        Ok(self.1)
    }
}

/// What a writer holds stays bounded however long the input, and the bytes
/// reach the sink as the input comes.
#[test]
fn memory_is_bounded_and_output_is_progressive() {
    let pool = EncodePool::new(2).unwrap();
    for in_flight in [None, Some(1)] {
        let opts = ChunkOptions {
            in_flight,
            ..options(1.0)
        };
        let mut w =
            ChunkedMp3Writer::with_options("t", Counting::default(), &stereo(), &pool, &opts)
                .unwrap();
        assert_eq!(w.max_in_flight, in_flight.unwrap_or(3));
        let chunk_samples = (w.chunk * w.spf) as usize;
        let pcm_capacity = w.pcm[0].capacity();
        let frame = 418;
        let tail_bound = ((PRE_ROLL + POST_ROLL + w.hold + 2) as usize) * frame;
        let block = signal(4096, 2);
        let planes: Vec<&[f32]> = block.iter().map(Vec::as_slice).collect();
        let mut written = 0u64;
        let mut max_tail = 0;
        while written < 40 * chunk_samples as u64 {
            w.write(&planes).unwrap();
            written += 4096;
            assert!(w.pending.len() <= w.max_in_flight);
            assert_eq!(w.pcm[0].capacity(), pcm_capacity, "PCM buffer never grows");
            let tail = w.tail.as_ref().map_or(0, |t| t.run.bytes.len());
            max_tail = max_tail.max(tail);
            assert!(tail <= tail_bound, "tail of {tail} bytes held");
            // Everything but the chunks in flight, the one being gathered
            // and the held tail has reached the sink.
            let behind = (w.max_in_flight + 2) * chunk_samples;
            if written as usize > behind {
                let expected = (written as usize - behind) / 1152 * 417;
                assert!(
                    w.out.sink.0 as usize >= expected,
                    "sink has {} bytes",
                    w.out.sink.0
                );
            }
        }
        // Each channel's buffers are allocated once: those in flight, the
        // one being gathered and the next; then recycled.
        assert!(w.chunks >= 30, "{} chunks", w.chunks);
        assert!(
            w.buffers <= 2 * (w.max_in_flight + 2),
            "{} PCM buffers allocated for {} chunks",
            w.buffers,
            w.chunks
        );
        let (sink, bytes) = w.finish().unwrap();
        assert_eq!((sink.0, sink.1), (bytes, bytes));
        assert!(max_tail > 0);
    }
}

/// A writer dropped mid-stream cancels its queued chunks; the pool still
/// shuts down.
#[test]
fn dropping_an_unfinished_writer_does_not_hang() {
    let pool = EncodePool::new(1).unwrap();
    let mut w = writer("t", &pool, &options(1.0)).unwrap();
    let x = signal(RATE as usize * 3, 2);
    w.write(&[&x[0], &x[1]]).unwrap();
    assert!(!w.pending.is_empty());
    let cancel = Arc::clone(&w.cancel.0);
    drop(w);
    assert!(cancel.load(Ordering::Relaxed));
    drop(pool);
}

/// A run of `blocks.len()` 417-byte frames from stream frame `first` with
/// the given block types and `main_data_begin`s.
fn run(first: u64, blocks: &[u8], reservoir: &[usize]) -> Run {
    let header = frames::Header::parse(&[0xff, 0xfb, 0x90, 0x64]).unwrap();
    let frames = blocks
        .iter()
        .zip(reservoir)
        .enumerate()
        .map(|(i, (&blocks, &main_data_begin))| Frame {
            offset: i * 417,
            header,
            main_data_begin,
            blocks,
        })
        .collect();
    Run {
        first,
        bytes: vec![0; blocks.len() * 417],
        frames,
    }
}

#[test]
fn joins_need_matching_windows_and_room_in_the_reservoir() {
    const LONG: u8 = 0;
    const START: u8 = 0b0000_0101; // granule 1 of both channels: start
    const SHORT: u8 = 0b1010_1010;
    // Frames 10..=17 of the earlier encoder, 8..=17 of the later one.
    let a = |blocks: [u8; 8], reservoir: [usize; 8]| run(10, &blocks, &reservoir);
    let b = |blocks: [u8; 10], reservoir: [usize; 10]| run(8, &blocks, &reservoir);
    let long_a = a([LONG; 8], [300; 8]);
    let long_b = b([LONG; 10], [200; 10]);
    // The latest frame whose successor exists in both: 16.
    assert_eq!(choose_join(&long_a, &long_b, 12), Some(16));
    // Nothing before `lo`.
    assert_eq!(choose_join(&long_a, &long_b, 17), None);
    // The later encoder needs more reservoir than the earlier one left free
    // before frames 15..=17: the join moves to 13 (needs 200 ≤ 300).
    let mut tight = b([LONG; 10], [200; 10]);
    for f in &mut tight.frames[7..] {
        f.main_data_begin = 301;
    }
    assert_eq!(choose_join(&long_a, &tight, 12), Some(13));
    // Frame 16 ends with start windows in the earlier encoder only: the
    // later one's frame 17 was coded after a long window, so no join at 16.
    let mut starts = a([LONG; 8], [300; 8]);
    starts.frames[6].blocks = START;
    assert_eq!(choose_join(&starts, &long_b, 12), Some(15));
    // Long windows throughout are preferred to matching short ones ...
    let mut short_a = a([LONG; 8], [300; 8]);
    let mut short_b = b([LONG; 10], [200; 10]);
    for k in [15, 16, 17] {
        short_a.frames[k - 10].blocks = SHORT;
        short_b.frames[k - 8].blocks = SHORT;
    }
    assert_eq!(choose_join(&short_a, &short_b, 12), Some(13));
    // ... which are taken when nothing else fits.
    assert_eq!(choose_join(&short_a, &short_b, 15), Some(16));
    // Among short windows, the two encoders must agree: at 16 the earlier
    // one is already in short blocks where the later one starts them.
    let mut onset_a = a([LONG; 8], [300; 8]);
    let mut onset_b = b([LONG; 10], [200; 10]);
    for (k, ka, kb) in [(15, START, START), (16, SHORT, START), (17, SHORT, SHORT)] {
        onset_a.frames[k - 10].blocks = ka;
        onset_b.frames[k - 8].blocks = kb;
    }
    assert_eq!(choose_join(&onset_a, &onset_b, 14), Some(15));
    // The reservoir bytes must be in memory: with no room before frames 16
    // and 17, the join at 14 needs 400 bytes before frame 15 of the earlier
    // encoder, which only its frames before 15 hold.
    let mut full = a([LONG; 8], [500; 8]);
    full.frames[6].main_data_begin = 0;
    full.frames[7].main_data_begin = 0;
    let big = b([LONG; 10], [400; 10]);
    assert_eq!(choose_join(&full, &big, 12), Some(14));
    full.drop_front(4); // frames 14.. only: 381 bytes before frame 15
    assert_eq!(choose_join(&full, &big, 12), None);
}
