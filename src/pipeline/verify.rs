//! Verifying an MP3 while it is written.
//!
//! To verify an output is to decode it as a player would, check that it
//! yields exactly the frames that were encoded, and measure the loudness and
//! true peak a listener gets. Decoding an hour of MP3 takes seconds of one
//! core, so instead of starting when the output is finished the decoder
//! follows the writer: [`tee`] hands a copy of every byte appended to the
//! sink to a [`Pipe`] that [`decode_stream`] reads on a thread of its own.
//! The check then ends a moment after the encoding does, and the decoding
//! shares the cores with the encoders instead of running alone at the end.
//!
//! Until the writer finishes, the stream's first MPEG frame is LAME's blank
//! placeholder for the Info tag (it decodes to one frame of silence); the
//! writer overwrites it at the end with the tag that tells a decoder what to
//! drop: the encoder's and the decoder's delay at the start, the padding at
//! the end. The streaming decode therefore drops the placeholder and the
//! delay itself and holds back its last few thousand frames until the
//! number encoded is known. Finally [`check_tag`] reads the real tag back
//! from the finished file: its delay must be the one assumed, its padding
//! the frames held back beyond the end, and its length the frames encoded.
//! The audio frames the file holds are the bytes that were decoded: the
//! tee copies every write at the end of the stream and nothing else.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use symphonia::core::io::{MediaSource, ReadOnlySource};

use crate::audio::{Block, Source};
use crate::decode::Decoder;
use crate::encode::frame_samples;
use crate::error::{Error, Result, Stage};
use crate::loudness::{Measurement, Measures, Meter};

/// Samples LAME 3.100 puts before the first input sample (`ENCDELAY`).
const ENCODER_DELAY: u64 = 576;
/// Samples an MPEG layer III decoder's synthesis adds in front (the 528 + 1
/// that LAME's tag and symphonia add to the encoder delay).
const DECODER_DELAY: u64 = 529;
/// MPEG frames of decoded audio held back from the meter until the number of
/// frames encoded is known; LAME's padding is less than two.
const HOLD_FRAMES: usize = 4;
/// Byte runs queued between a writer and its verifier, at most: the writer
/// waits when the decoder is this far behind.
const QUEUED: usize = 16;

/// Something an MP3 writer can write to: [`Tee`] or the sink itself.
pub(crate) trait WriteSeek: Write + Seek {}

impl<T: Write + Seek + ?Sized> WriteSeek for T {}

/// Starts verifying what is written through the returned [`Tee`] from the
/// sink's current position on; hand the [`Pipe`] to [`decode_stream`].
pub(crate) fn tee<W: Write + Seek>(mut inner: W) -> io::Result<(Tee<W>, Pipe)> {
    let pos = inner.stream_position()?;
    let (tx, rx) = sync_channel(QUEUED);
    let frames = Arc::new(OnceLock::new());
    let tee = Tee {
        inner,
        tx: Some(tx),
        frames: Arc::clone(&frames),
        pos,
        end: pos,
    };
    let pipe = Pipe {
        rx: Mutex::new(rx),
        buf: Vec::new(),
        at: 0,
        frames,
    };
    Ok((tee, pipe))
}

/// A writer that passes everything to its sink and copies what extends the
/// stream (not what overwrites it) to a [`Pipe`].
pub(crate) struct Tee<W> {
    inner: W,
    tx: Option<SyncSender<Vec<u8>>>,
    frames: Arc<OnceLock<u64>>,
    pos: u64,
    end: u64,
}

impl<W> Tee<W> {
    /// Ends the stream: `Some(frames)` encoded, or `None` when the encoding
    /// failed (the verifier then stops with an error nobody needs to read).
    pub(crate) fn end(mut self, frames: Option<u64>) {
        if let Some(frames) = frames {
            // Set before the channel closes, so the reader sees it at its end.
            let _ = self.frames.set(frames);
        }
        self.tx = None;
    }

    fn send(&mut self, bytes: Vec<u8>) {
        // A verifier that stopped has its own error to report.
        if self.tx.as_ref().is_some_and(|tx| tx.send(bytes).is_err()) {
            self.tx = None;
        }
    }
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let new_end = self.pos + n as u64;
        if new_end > self.end {
            if self.pos > self.end {
                // Written after a seek past the end: the gap reads as zeros.
                self.send(vec![0; (self.pos - self.end) as usize]);
            }
            let from = self.end.saturating_sub(self.pos) as usize;
            self.send(buf[from..n].to_vec());
            self.end = new_end;
        }
        self.pos = new_end;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Seek> Seek for Tee<W> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = self.inner.seek(to)?;
        Ok(self.pos)
    }
}

/// The reading end of a [`Tee`]: the bytes of the stream as they are
/// written, then the end of the stream.
pub(crate) struct Pipe {
    // Only ever used by its one reader; the lock makes the pipe `Sync`, as
    // a media source must be.
    rx: Mutex<Receiver<Vec<u8>>>,
    buf: Vec<u8>,
    at: usize,
    frames: Arc<OnceLock<u64>>,
}

impl Read for Pipe {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.buf.len() {
            let rx = self.rx.get_mut().unwrap_or_else(PoisonError::into_inner);
            match rx.recv() {
                Ok(bytes) => (self.buf, self.at) = (bytes, 0),
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// What [`decode_stream`] found.
#[derive(Debug, Clone)]
pub(crate) struct Streamed {
    /// Loudness and true peak of the frames encoded, as decoded.
    pub(crate) measurement: Measurement,
    /// Frames decoded after the ones encoded (the padding of the last frame).
    pub(crate) padding: u64,
}

/// Decodes the MP3 arriving through `pipe` and measures it: the frames from
/// the end of the encoder and decoder delay on, as many as were encoded.
/// Errors name the output `name`.
pub(crate) fn decode_stream(
    name: &str,
    pipe: Pipe,
    rate: u32,
    channels: usize,
) -> Result<Streamed> {
    let ended = Arc::clone(&pipe.frames);
    let fail = |msg: String| Error::stage(name, Stage::Verify, msg);
    let mut dec = Decoder::open(name, Box::new(ReadOnlySource::new(pipe)))?;
    if dec.sample_rate() != rate || dec.channels() != channels {
        return Err(fail(format!(
            "decodes as {} Hz, {} channel(s); {rate} Hz, {channels} were encoded",
            dec.sample_rate(),
            dec.channels()
        )));
    }
    let spf = frame_samples(rate);
    // The placeholder frame, then the delays.
    let mut skip = spf + ENCODER_DELAY + DECODER_DELAY;
    let hold = HOLD_FRAMES * spf as usize;
    let mut meter = Meter::new(channels, rate, Measures::LOUDNESS_AND_PEAK)?;
    let mut held = Block::new(channels, 0);
    let mut fed = 0u64;
    let mut block = Block::default();
    while dec.read(&mut block)? {
        let drop = usize::try_from(skip).map_or(block.frames(), |s| s.min(block.frames()));
        skip -= drop as u64;
        for c in 0..channels {
            held.channel_mut(c)
                .extend_from_slice(&block.channel(c)[drop..]);
        }
        // Feed all but the last `hold` frames, a batch at a time.
        if held.frames() >= 2 * hold {
            let n = held.frames() - hold;
            feed(&mut meter, &mut held, n)?;
            fed += n as u64;
        }
    }
    let Some(&frames) = ended.get() else {
        return Err(fail("the encoding stopped before the end".into()));
    };
    let decoded = fed + held.frames() as u64;
    let rest = frames
        .checked_sub(fed)
        .filter(|&r| r <= held.frames() as u64)
        .ok_or_else(|| {
            fail(format!(
                "decodes to {decoded} frames, {frames} were encoded"
            ))
        })?;
    feed(&mut meter, &mut held, rest as usize)?;
    Ok(Streamed {
        measurement: meter.measurement()?,
        padding: decoded - frames,
    })
}

/// Feeds the first `n` frames of `held` to the meter and drops them.
fn feed(meter: &mut Meter, held: &mut Block, n: usize) -> Result<()> {
    let planes: Vec<&[f32]> = (0..held.channels())
        .map(|c| &held.channel(c)[..n])
        .collect();
    meter.add(&planes)?;
    for c in 0..held.channels() {
        held.channel_mut(c).drain(..n);
    }
    Ok(())
}

/// Reads the Info tag of the finished MP3 (`file`, from its start) and
/// checks that it tells a decoder to drop the delay and the padding that
/// [`decode_stream`] dropped, leaving `frames`.
pub(crate) fn check_tag(
    name: &str,
    file: Box<dyn MediaSource>,
    frames: u64,
    streamed: &Streamed,
) -> Result<()> {
    let dec = Decoder::open(name, file)?;
    let (delay, padding) = dec.declared_trim();
    let (delay, padding) = (delay.map(u64::from), padding.map(u64::from));
    let declared = dec.declared_frames();
    let want_delay = ENCODER_DELAY + DECODER_DELAY;
    if delay != Some(want_delay) || padding != Some(streamed.padding) || declared != Some(frames) {
        return Err(Error::stage(
            name,
            Stage::Verify,
            format!(
                "its Info tag gives delay {delay:?}, padding {padding:?} and {declared:?} frames; \
                 {want_delay}, {} and {frames} were written",
                streamed.padding
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    use crate::encode::chunked::tests::signal;
    use crate::encode::chunked::{ChunkOptions, ChunkedMp3Writer, EncodePool};
    use crate::encode::{Mp3Format, Mp3Options, Mp3Writer};
    use crate::loudness::measure;

    const RATE: u32 = 44_100;

    fn settings(channels: u8) -> Mp3Format {
        Mp3Format {
            options: Mp3Options {
                bitrate_kbps: if channels == 1 { 64 } else { 128 },
                quality: 3,
            },
            channels,
            sample_rate: RATE,
        }
    }

    /// Encodes `planes` with one writer or the other through a tee, and
    /// verifies the stream while it is written, as the pipeline does.
    /// Returns the file, the streamed result and the frames written; the
    /// stream is told it carries `told` frames more than were written.
    fn encode_verified(
        planes: &[Vec<f32>],
        chunked: bool,
        told: i64,
    ) -> (Vec<u8>, Result<Streamed>, u64) {
        let s = settings(planes.len() as u8);
        let pool = EncodePool::new(2).unwrap();
        let mut sink = Cursor::new(Vec::new());
        let frames = planes[0].len() as u64;
        let streamed = std::thread::scope(|scope| {
            let (mut tee, pipe) = tee(&mut sink).unwrap();
            let channels = planes.len();
            let check = scope.spawn(move || decode_stream("out (t.mp3)", pipe, RATE, channels));
            let parts: Vec<&[f32]> = planes.iter().map(Vec::as_slice).collect();
            if chunked {
                let opts = ChunkOptions {
                    chunk: std::time::Duration::from_secs(2),
                    ..ChunkOptions::default()
                };
                let mut w =
                    ChunkedMp3Writer::with_options("t", &mut tee, &s, &pool, &opts).unwrap();
                w.write(&parts).unwrap();
                w.finish().unwrap();
            } else {
                let mut w = Mp3Writer::new("t", &mut tee, &s).unwrap();
                w.write(&parts).unwrap();
                w.finish().unwrap();
            }
            tee.end(Some(frames.saturating_add_signed(told)));
            check.join().unwrap()
        });
        (sink.into_inner(), streamed, frames)
    }

    #[test]
    fn tee_passes_everything_on_and_copies_only_what_extends_the_stream() {
        let mut sink = Cursor::new(b"head".to_vec());
        sink.seek(SeekFrom::End(0)).unwrap();
        let (mut tee, mut pipe) = tee(&mut sink).unwrap();
        tee.write_all(b"abc").unwrap();
        tee.seek(SeekFrom::Start(4)).unwrap();
        tee.write_all(b"AB").unwrap(); // overwrites: not copied
        tee.write_all(b"CDE").unwrap(); // "C" overwrites, "DE" extends
        tee.seek(SeekFrom::Start(11)).unwrap();
        tee.write_all(b"z").unwrap(); // past the end: the gap reads as zeros
        tee.end(Some(0));
        let mut copied = Vec::new();
        pipe.read_to_end(&mut copied).unwrap();
        assert_eq!(copied, b"abcDE\0\0z");
        assert_eq!(sink.into_inner(), b"headABCDE\0\0z");
    }

    /// The streaming check sees exactly what decoding the finished file sees,
    /// for both writers, mono and stereo.
    #[test]
    fn streaming_check_equals_decoding_the_finished_file() {
        for (chunked, channels) in [(false, 1), (false, 2), (true, 1), (true, 2)] {
            let input = signal(7 * RATE as usize + 123, channels);
            let (file, streamed, frames) = encode_verified(&input, chunked, 0);
            let streamed = streamed.unwrap();
            check_tag("t", Box::new(Cursor::new(file.clone())), frames, &streamed).unwrap();
            let mut whole = Decoder::open_bytes("t", file).unwrap();
            let m = measure(&mut whole, Measures::LOUDNESS_AND_PEAK).unwrap();
            let s = &streamed.measurement;
            let case = format!("chunked {chunked}, {channels} ch");
            assert_eq!(m.frames, frames, "{case}");
            assert_eq!(s.frames, frames, "{case}");
            assert_eq!(s.integrated_lufs, m.integrated_lufs, "{case}");
            assert_eq!(s.true_peak_dbtp, m.true_peak_dbtp, "{case}");
            assert!(s.integrated_lufs > -30.0, "{case}: {}", s.integrated_lufs);
        }
    }

    #[test]
    fn a_wrong_frame_count_or_tag_is_an_error() {
        let input = signal(3 * RATE as usize, 1);
        // The stream holds less than the frames it is said to carry.
        let (_, streamed, _) = encode_verified(&input, false, 5000);
        let err = streamed.unwrap_err().to_string();
        assert!(
            err.contains("decodes to") && err.contains("were encoded"),
            "{err}"
        );
        // Said to carry fewer: the tag, written for the real count, disagrees.
        let (file, streamed, frames) = encode_verified(&input, false, -300);
        let streamed = streamed.unwrap();
        assert_eq!(streamed.measurement.frames, frames - 300);
        let err = check_tag("t", Box::new(Cursor::new(file)), frames - 300, &streamed)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Info tag"), "{err}");
    }

    #[test]
    fn an_unfinished_stream_is_an_error() {
        let (tee, pipe) = tee(Cursor::new(Vec::new())).unwrap();
        let check = std::thread::spawn(move || decode_stream("t", pipe, RATE, 1));
        tee.end(None);
        assert!(check.join().unwrap().is_err());
    }
}
