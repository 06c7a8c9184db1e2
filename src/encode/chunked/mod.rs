//! One MP3 stream encoded in parallel: the input is cut into chunks, each
//! chunk is encoded by a fresh LAME encoder on a shared [`EncodePool`], and
//! the chunks are spliced into one constant-bitrate stream whose joins are
//! inaudible and whose Info/LAME tag describes the whole stream.
//!
//! LAME is single-threaded, so a long episode is bounded by one core. Cutting
//! the encoding itself is possible because an MP3 frame depends on its
//! neighbours only through three things, each of which the splice keeps
//! intact:
//!
//! - **The frame grid.** Every chunk encoder starts on a multiple of the
//!   frame length (1152 samples at 32–48 kHz) and has the same encoder delay,
//!   so its frame *k* carries exactly the audio of frame *k* + start of the
//!   whole stream.
//! - **The overlapped transform.** A decoded granule is the overlap-add of
//!   two transforms, so the last granule of one encoder meets the first of
//!   the other. Each encoder gets a pre-roll (real preceding audio) and a
//!   post-roll (real following audio), so both analyse the same samples on
//!   the same grid; where they also chose the same windows (block types),
//!   the time-domain aliasing of one half cancels that of the other exactly
//!   as inside one stream, and what remains is each side's own coding noise.
//!   Joins between long windows in every channel are preferred.
//! - **The bit reservoir.** A frame may begin its data in the unused end of
//!   earlier frames (`main_data_begin`). The later encoder's first kept frame
//!   needs `m_B` bytes from its own pre-roll frames; the earlier encoder left
//!   `m_A` bytes free before the same frame. A join needs `m_B ≤ m_A`, and
//!   the `m_B` bytes are copied into the free space before the join.
//!
//! The latest frame of the overlap that satisfies all of this is the join.
//! When none does, the earlier encoder simply continues through the next
//! chunk (its encoder is kept, unflushed, until its join is made), so a join
//! is never forced. Measured over 400 s of speech-like audio and 200 s of
//! drums in 1 s chunks, no chunk needed that, and the granules at the joins
//! are as good as the single encoder's (`tests/chunked.rs`).
//!
//! Memory stays flat: a writer keeps a bounded number of chunks of PCM in
//! flight plus the one it is gathering ([`ChunkOptions`]), blocks in
//! [`ChunkedMp3Writer::write`] when they are all busy, and writes the
//! spliced bytes to its sink as soon as no later join can change them (it
//! holds back some 30 frames).

pub(crate) mod frames;
mod pool;

pub use pool::EncodePool;

use std::collections::VecDeque;
use std::io::{Seek, SeekFrom, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::time::Duration;

use mp3lame_encoder::Encoder;

use crate::audio::{Block, BlockSink};
use crate::encode::id3::Tag;
use crate::encode::{
    begin_stream, clamp, frame_samples, lame_encode, lame_flush, lame_tag_frame, makeup_gain,
    new_encoder, Mp3Format, LAME_CALL_FRAMES,
};
use crate::error::{Error, Result, Stage};
use frames::{main_data_before, patch_info_tag, scan, Crc16, Frame, StreamFacts, TocSampler};

/// Frames of real audio before its chunk that a chunk's encoder sees first,
/// so that its psychoacoustic model and its reservoir have settled by the
/// join. The reservoir is what takes longest: it starts empty and LAME fills
/// it by about a tenth of a frame's bits per frame (`ResvMaxBits`), so with a
/// short pre-roll the later encoder is still saving where the earlier one
/// spends (`m_B > m_A`). Measured on 400 s of speech-like audio cut into 1 s
/// chunks: 12 frames left 2 of 400 chunks without a clean join, 18 and more
/// none; 24 leaves margin.
const PRE_ROLL: u64 = 24;
/// Frames of its pre-roll a chunk's encoder must have coded before a frame
/// of it may be kept: the first frames follow an artificial onset (LAME
/// starts from silence) and an empty reservoir.
const WARM_UP: u64 = 6;
/// Frames of real audio after its chunk that a chunk's encoder sees, so that
/// its frames up to the join were coded with the real look-ahead.
const POST_ROLL: u64 = 6;
/// Shortest chunk, in frames: the overlaps of consecutive joins must not meet.
const MIN_CHUNK: u64 = PRE_ROLL + POST_ROLL + 8;

/// How a [`ChunkedMp3Writer`] cuts its input and how much it keeps in flight.
///
/// The writer holds (`in_flight` + 1) chunks of PCM (its chunks being
/// encoded or queued, and the one it is gathering), each (chunk + 30 frames)
/// × channels × 4 bytes: about 7.3 MB per 20 s of stereo at 44.1 kHz, so
/// some 29 MB with the defaults on two threads. Halving the chunk halves
/// that for about 4 % more encoding work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkOptions {
    /// Audio per chunk, rounded to whole MP3 frames (at least 38 frames,
    /// about 1 s at 44.1 kHz). Longer chunks mean fewer joins and less
    /// overlap work (each chunk also encodes 30 frames of its neighbours),
    /// shorter ones less PCM in memory and better balance at the end.
    pub chunk: Duration,
    /// Chunks submitted and not yet joined, at most (at least 1); `None`
    /// means the pool's thread count + 1, which keeps every thread busy
    /// while the writer gathers the next chunk. Writers sharing a pool may
    /// take less.
    pub in_flight: Option<usize>,
    /// Samples per channel the writer expects to be given, if known. With
    /// it, each chunk is queued at the fraction of the stream where it
    /// starts, and the pool runs the chunk furthest behind first, so writers
    /// sharing a pool that all say their length finish together (a longer
    /// output no longer waits for a shorter one's chunks). Without it, the
    /// writer's chunks go before any that have a fraction (in order). A
    /// wrong guess only changes the order of the work, never the output.
    pub expected_samples: Option<u64>,
}

impl Default for ChunkOptions {
    /// 20 s chunks (about 4 % extra work for the overlaps), pool threads + 1
    /// in flight.
    fn default() -> Self {
        ChunkOptions {
            chunk: Duration::from_secs(20),
            in_flight: None,
            expected_samples: None,
        }
    }
}

/// What a finished [`ChunkedMp3Writer`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkReport {
    /// Bytes written to the sink (ID3v2 tag, Info frame and audio frames).
    pub bytes: u64,
    /// Audio frames in the stream (the Info frame not counted).
    pub frames: u64,
    /// Samples per channel written (and decoded, gaplessly).
    pub samples: u64,
    /// Chunks cut from the input.
    pub chunks: usize,
    /// For each join, the stream index of the last audio frame taken from
    /// the earlier encoder (the later encoder's frames follow from the next).
    pub joins: Vec<u64>,
    /// Chunks for which no clean join was found, so that the earlier
    /// encoder continued through them instead.
    pub continued: usize,
}

/// Streaming MP3 writer that encodes in parallel chunks on an
/// [`EncodePool`] and splices them into one stream: same settings, same
/// calls and same file layout as [`Mp3Writer`](crate::encode::Mp3Writer)
/// (ID3v2 tag, Info/LAME tag frame for the whole stream, audio frames).
///
/// A writer dropped without [`finish`](Self::finish) leaves an unfinished
/// file and cancels its queued chunks. After an error the writer is
/// unusable; every later call returns an error.
pub struct ChunkedMp3Writer<'p, W: Write + Seek> {
    subject: Arc<str>,
    pool: &'p EncodePool,
    settings: Mp3Format,
    makeup: f32,
    /// Samples per channel in an MP3 frame.
    spf: u64,
    /// Frames per chunk.
    chunk: u64,
    /// Frames held back before the first frame a join may end on, so that the
    /// reservoir bytes a join overwrites are still in memory.
    hold: u64,
    max_in_flight: usize,
    expected_samples: Option<u64>,
    cancel: CancelOnDrop,

    /// Audio (clamped and scaled for LAME) of the chunk being gathered, from
    /// its pre-roll on.
    pcm: Vec<Vec<f32>>,
    /// Buffers of finished jobs, kept for the next chunks.
    spare: Vec<Vec<f32>>,
    /// PCM buffers allocated so far (bounded: they are recycled).
    buffers: usize,
    /// Stream sample of `pcm[_][0]`.
    pcm_start: u64,
    /// Nominal first frame of the chunk being gathered.
    chunk_start: u64,
    /// Samples per channel written so far.
    samples: u64,
    /// Chunks submitted so far.
    chunks: usize,
    pending: VecDeque<Pending>,

    /// Frames encoded but not yet written: the end of the last chunk joined.
    tail: Option<Tail>,
    out: Output<W>,
    joins: Vec<u64>,
    continued: usize,
    broken: bool,
    #[cfg(test)]
    faults: Faults,
}

/// Failures injected by the tests.
#[cfg(test)]
#[derive(Debug, Default, Clone)]
struct Faults {
    /// The encoder of this chunk panics.
    panic_in_chunk: Option<usize>,
    /// No join is accepted between this chunk and the one before.
    refuse_join_to: Option<usize>,
}

/// Sets the shared cancel flag when the writer goes away, so its queued
/// chunks are skipped.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A chunk job whose result has not been taken yet.
struct Pending {
    result: Receiver<Result<Encoded>>,
    /// Chunk number (read by the tests' fault injection).
    #[cfg_attr(not(test), allow(dead_code))]
    index: usize,
    /// Nominal first frame of the chunk.
    start: u64,
    last: bool,
}

/// Frames laid end to end in a byte buffer, `frames[i]` being frame
/// `first + i` of the whole stream. The last frame may be incomplete.
struct Run {
    first: u64,
    bytes: Vec<u8>,
    frames: Vec<Frame>,
}

impl Run {
    /// Position in `frames` of stream frame `k`.
    fn index(&self, k: u64) -> Option<usize> {
        let i = usize::try_from(k.checked_sub(self.first)?).ok()?;
        (i < self.frames.len()).then_some(i)
    }

    /// Drops the first `n` frames and their bytes.
    fn drop_front(&mut self, n: usize) {
        let cut = self.frames.get(n).map_or(self.bytes.len(), |f| f.offset);
        self.bytes.drain(..cut);
        self.frames.drain(..n);
        for f in &mut self.frames {
            f.offset -= cut;
        }
        self.first += n as u64;
    }
}

/// What a chunk job hands back.
struct Encoded {
    /// The audio frames (for a continued encoder, raw bytes not yet scanned).
    run: Run,
    /// A fresh encoder's blank first frame, which LAME's Info tag replaces.
    placeholder: Vec<u8>,
    /// The encoder, not flushed, when this was not the last chunk.
    encoder: Option<Encoder>,
    /// The Info/LAME tag frame, when the encoder was flushed.
    tag: Option<Vec<u8>>,
    /// The job's input, given back for a continuation.
    pcm: Vec<Vec<f32>>,
    pcm_start: u64,
    /// Stream sample where the encoder's input ends.
    input_end: u64,
}

/// The chunk most recently joined, of which the frames from `run.first` on
/// are not written yet.
struct Tail {
    run: Run,
    encoder: Option<Encoder>,
    tag: Option<Vec<u8>>,
    input_end: u64,
    /// Frames from here on stay in memory until the next join.
    hold_from: u64,
}

/// Work for a pool thread: encode `pcm[_][feed_from..]` with a fresh
/// encoder or continue `encoder`.
struct ChunkJob {
    subject: Arc<str>,
    settings: Mp3Format,
    encoder: Option<Encoder>,
    pcm: Vec<Vec<f32>>,
    pcm_start: u64,
    feed_from: usize,
    /// Stream frame of a fresh encoder's first audio frame.
    first_frame: u64,
    flush: bool,
    cancel: Arc<AtomicBool>,
    #[cfg(test)]
    panic: bool,
}

/// The sink and everything known about what has been written to it.
struct Output<W> {
    subject: Arc<str>,
    sink: W,
    /// Sink position when the writer was created.
    start: u64,
    /// Bytes written since `start`.
    written: u64,
    /// Offset from `start` and length of the Info frame.
    info_at: u64,
    info_len: usize,
    audio_frames: u64,
    audio_bytes: u64,
    crc: Crc16,
    toc: TocSampler,
}

impl<W: Write + Seek> std::fmt::Debug for ChunkedMp3Writer<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkedMp3Writer")
            .field("subject", &self.subject)
            .field("chunk_frames", &self.chunk)
            .field("samples", &self.samples)
            .field("chunks", &self.chunks)
            .field("written", &self.out.written)
            .finish_non_exhaustive()
    }
}

impl<'p, W: Write + Seek> ChunkedMp3Writer<'p, W> {
    /// Starts an MP3 at the sink's current position with 20 s chunks: checks
    /// the settings and writes the ID3v2 tag. `subject` names the output in
    /// errors.
    #[cfg(any(test, feature = "internals"))]
    pub fn new(subject: &str, sink: W, settings: &Mp3Format, pool: &'p EncodePool) -> Result<Self> {
        Self::with_options(subject, sink, settings, pool, &ChunkOptions::default())
    }

    /// Like [`new`](Self::new), with the chunking given.
    #[cfg(any(test, feature = "internals"))]
    pub fn with_options(
        subject: &str,
        sink: W,
        settings: &Mp3Format,
        pool: &'p EncodePool,
        options: &ChunkOptions,
    ) -> Result<Self> {
        Self::with_tag(subject, sink, settings, pool, options, &Tag::new())
    }

    /// Like [`with_options`](Self::with_options), with the frames of `tag`
    /// in the ID3v2 tag after the encoder's.
    pub(crate) fn with_tag(
        subject: &str,
        mut sink: W,
        settings: &Mp3Format,
        pool: &'p EncodePool,
        options: &ChunkOptions,
        tag: &Tag,
    ) -> Result<Self> {
        // Builds (and drops) one encoder: the settings are checked exactly as
        // the chunk encoders will see them.
        new_encoder(subject, settings)?;
        let spf = frame_samples(settings.sample_rate);
        let mpeg1 = spf == 1152;
        let rate = f64::from(settings.sample_rate);
        let chunk =
            ((options.chunk.as_secs_f64() * rate / spf as f64).round() as u64).max(MIN_CHUNK);
        // A join rewrites at most as many main-data bytes as
        // `main_data_begin` can address (9 bits in MPEG-1, 8 in MPEG-2:
        // ISO/IEC 11172-3 and 13818-3 §2.4.1.7); hold back enough of the
        // smallest frames to reach them.
        let smallest = frames::Header {
            mpeg1,
            crc: false,
            kbps: settings.options.bitrate_kbps,
            rate: settings.sample_rate,
            padding: false,
            channels: usize::from(settings.channels),
            mode: 1,
        };
        let area = (smallest.len() - smallest.main_data_offset()) as u64;
        let reach: u64 = if mpeg1 { 511 } else { 255 };
        let hold = reach.div_ceil(area) + 1;

        let (start, id3_len) = begin_stream(subject, &mut sink, tag)?;
        let subject: Arc<str> = Arc::from(subject);
        let channels = usize::from(settings.channels);
        let mut writer = ChunkedMp3Writer {
            subject: Arc::clone(&subject),
            pool,
            settings: settings.clone(),
            makeup: makeup_gain(settings),
            spf,
            chunk,
            hold,
            max_in_flight: options.in_flight.unwrap_or(pool.threads() + 1).max(1),
            expected_samples: options.expected_samples,
            cancel: CancelOnDrop(Arc::new(AtomicBool::new(false))),
            pcm: Vec::new(),
            spare: Vec::new(),
            buffers: 0,
            pcm_start: 0,
            chunk_start: 0,
            samples: 0,
            chunks: 0,
            pending: VecDeque::new(),
            tail: None,
            out: Output {
                subject,
                sink,
                start,
                written: id3_len,
                info_at: 0,
                info_len: 0,
                audio_frames: 0,
                audio_bytes: 0,
                crc: Crc16::default(),
                toc: TocSampler::default(),
            },
            joins: Vec::new(),
            continued: 0,
            broken: false,
            #[cfg(test)]
            faults: Faults::default(),
        };
        writer.pcm = (0..channels).map(|_| writer.chunk_buffer()).collect();
        Ok(writer)
    }

    /// Encodes planar frames; `planes.len()` must equal the channel count and
    /// all planes must have the same length (any length, including zero).
    /// Samples are clamped to [-1, 1]; NaN becomes silence. Blocks while the
    /// writer's chunks in flight are all still being encoded.
    pub fn write(&mut self, planes: &[&[f32]]) -> Result<()> {
        self.usable()?;
        let result = self.write_planes(planes);
        self.broken = result.is_err();
        result
    }

    /// Encodes the rest, waits for every chunk, splices the last joins,
    /// writes the Info/LAME tag for the whole stream over the first chunk's
    /// placeholder, and returns the sink (positioned at the end of the MP3)
    /// and the number of bytes written.
    pub fn finish(self) -> Result<(W, u64)> {
        self.finish_with_report().map(|(w, r)| (w, r.bytes))
    }

    /// Like [`finish`](Self::finish), with what was produced.
    pub fn finish_with_report(mut self) -> Result<(W, ChunkReport)> {
        self.usable()?;
        self.submit_chunk(true)?;
        while !self.pending.is_empty() {
            self.take_front()?;
        }
        let internal = |what: &str| Error::stage(&*self.subject, Stage::Encode, what.to_owned());
        let tail = self
            .tail
            .take()
            .ok_or_else(|| internal("no chunk was encoded"))?;
        if !tail.run.bytes.is_empty() {
            return Err(internal("LAME's last chunk ends inside a frame"));
        }
        let mut tag = tail
            .tag
            .ok_or_else(|| internal("the last chunk was not flushed"))?;
        let out = &mut self.out;
        if tag.len() != out.info_len {
            return Err(internal(
                "LAME's Info tag frame and placeholder differ in size",
            ));
        }
        let facts = StreamFacts {
            frames: out.audio_frames,
            bytes: out.info_len as u64 + out.audio_bytes,
            toc: out.toc.toc(out.audio_frames, out.audio_bytes),
            samples: self.samples,
            music_crc: out.crc.0,
        };
        patch_info_tag(&mut tag, &facts)
            .map_err(|e| Error::stage(&*self.subject, Stage::Encode, format!("Info tag: {e}")))?;
        out.overwrite_info(&tag)?;
        let report = ChunkReport {
            bytes: out.written,
            frames: out.audio_frames,
            samples: self.samples,
            chunks: self.chunks,
            joins: std::mem::take(&mut self.joins),
            continued: self.continued,
        };
        Ok((self.out.sink, report))
    }

    fn usable(&self) -> Result<()> {
        if self.broken {
            return Err(Error::stage(
                &*self.subject,
                Stage::Encode,
                "the MP3 writer already failed",
            ));
        }
        Ok(())
    }

    /// Samples per channel of a whole chunk job's input.
    fn job_len(&self) -> usize {
        ((PRE_ROLL + self.chunk + POST_ROLL) * self.spf) as usize
    }

    /// An empty PCM buffer with room for a whole chunk job: a recycled one
    /// if there is one.
    fn chunk_buffer(&mut self) -> Vec<f32> {
        self.spare.pop().unwrap_or_else(|| {
            self.buffers += 1;
            Vec::with_capacity(self.job_len())
        })
    }

    /// Keeps the buffers of a job that is done with its input for later
    /// chunks (never more than the writer can have in use at once), so the
    /// writer allocates its PCM memory once instead of once per chunk.
    fn recycle(&mut self, pcm: Vec<Vec<f32>>) {
        let keep = usize::from(self.settings.channels) * (self.max_in_flight + 1);
        for mut v in pcm {
            if self.spare.len() < keep && v.capacity() >= self.job_len() {
                v.clear();
                self.spare.push(v);
            }
        }
    }

    fn write_planes(&mut self, planes: &[&[f32]]) -> Result<()> {
        let channels = self.pcm.len();
        if planes.len() != channels {
            return Err(Error::stage(
                &*self.subject,
                Stage::Encode,
                format!(
                    "got {} channels of audio for a {channels}-channel MP3",
                    planes.len()
                ),
            ));
        }
        let frames = planes[0].len();
        if planes.iter().any(|p| p.len() != frames) {
            return Err(Error::stage(
                &*self.subject,
                Stage::Encode,
                "channels of one block differ in length",
            ));
        }
        let mut pos = 0;
        while pos < frames {
            let input_end = (self.chunk_start + self.chunk + POST_ROLL) * self.spf;
            let have = self.pcm_start + self.pcm[0].len() as u64;
            let take =
                usize::try_from(input_end - have).map_or(frames - pos, |n| n.min(frames - pos));
            let makeup = self.makeup;
            for (pcm, plane) in self.pcm.iter_mut().zip(planes) {
                pcm.extend(plane[pos..pos + take].iter().map(|&x| clamp(x) * makeup));
            }
            pos += take;
            self.samples += take as u64;
            if have + take as u64 == input_end {
                self.submit_chunk(false)?;
            }
        }
        Ok(())
    }

    /// Hands the gathered chunk to the pool (after waiting for room) and
    /// starts gathering the next one from its pre-roll.
    fn submit_chunk(&mut self, last: bool) -> Result<()> {
        while self.pending.len() >= self.max_in_flight {
            self.take_front()?;
        }
        let next_start = self.chunk_start + self.chunk;
        let pcm = if last {
            std::mem::take(&mut self.pcm)
        } else {
            let keep_from = ((next_start - PRE_ROLL) * self.spf - self.pcm_start) as usize;
            let mut next = Vec::with_capacity(self.pcm.len());
            for c in 0..self.pcm.len() {
                let mut v = self.chunk_buffer();
                v.extend_from_slice(&self.pcm[c][keep_from..]);
                next.push(v);
            }
            std::mem::replace(&mut self.pcm, next)
        };
        let job = ChunkJob {
            subject: Arc::clone(&self.subject),
            settings: self.settings.clone(),
            encoder: None,
            pcm,
            pcm_start: self.pcm_start,
            feed_from: 0,
            first_frame: self.pcm_start / self.spf,
            flush: last,
            cancel: Arc::clone(&self.cancel.0),
            #[cfg(test)]
            panic: self.faults.panic_in_chunk == Some(self.chunks),
        };
        let result = self.spawn(job);
        self.pending.push_back(Pending {
            result,
            index: self.chunks,
            start: self.chunk_start,
            last,
        });
        self.chunks += 1;
        self.chunk_start = next_start;
        self.pcm_start = (next_start - PRE_ROLL) * self.spf;
        Ok(())
    }

    /// Queues a job; its result (or its panic, as an error) arrives on the
    /// returned channel.
    fn spawn(&self, job: ChunkJob) -> Receiver<Result<Encoded>> {
        let (tx, rx) = sync_channel(1);
        let subject = Arc::clone(&job.subject);
        // How far along the stream the job starts, when the length is known.
        let priority = self.expected_samples.map_or(0.0, |n| {
            (job.first_frame * self.spf) as f64 / n.max(1) as f64
        });
        let run = Box::new(move || {
            let result =
                catch_unwind(AssertUnwindSafe(move || run_job(job))).unwrap_or_else(|panic| {
                    let why = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    Err(Error::stage(
                        &*subject,
                        Stage::Encode,
                        format!("a chunk encoder panicked: {why}"),
                    ))
                });
            // The writer may be gone (dropped after an error): nothing to do.
            let _ = tx.send(result);
        });
        self.pool.submit(run, priority);
        rx
    }

    fn receive(&self, result: &Receiver<Result<Encoded>>) -> Result<Encoded> {
        result.recv().map_err(|_| {
            Error::stage(
                &*self.subject,
                Stage::Encode,
                "a chunk encoder stopped without a result",
            )
        })?
    }

    /// Waits for the oldest chunk in flight, joins it to the tail and writes
    /// out what no later join can change.
    fn take_front(&mut self) -> Result<()> {
        let Some(p) = self.pending.pop_front() else {
            return Ok(());
        };
        let mut b = self.receive(&p.result)?;
        let hold_from = if p.last {
            u64::MAX
        } else {
            (p.start + self.chunk + WARM_UP).saturating_sub(PRE_ROLL + self.hold)
        };
        let tail = match self.tail.take() {
            None => {
                self.recycle(std::mem::take(&mut b.pcm));
                self.out.write_info_placeholder(&b.placeholder)?;
                Tail {
                    run: b.run,
                    encoder: b.encoder.take(),
                    tag: b.tag.take(),
                    input_end: b.input_end,
                    hold_from,
                }
            }
            Some(a) => {
                #[cfg(test)]
                let refuse = self.faults.refuse_join_to == Some(p.index);
                #[cfg(not(test))]
                let refuse = false;
                let lo = (p.start + WARM_UP - PRE_ROLL).max(a.run.first + self.hold);
                let chosen = choose_join(&a.run, &b.run, lo);
                match chosen.filter(|_| !refuse) {
                    Some(f) => {
                        self.recycle(std::mem::take(&mut b.pcm));
                        self.splice(a, b, f, hold_from)?
                    }
                    None => self.continue_through(a, b, p.last, hold_from)?,
                }
            }
        };
        let tail = self.tail.insert(tail);
        let ready = tail
            .run
            .frames
            .iter()
            .enumerate()
            .take_while(|(i, f)| {
                tail.run.first + (*i as u64) < tail.hold_from && f.end() <= tail.run.bytes.len()
            })
            .count();
        self.out.write_frames(&mut tail.run, ready)
    }

    /// Joins `b` after frame `f` of `a`: writes `a` up to `f` with the
    /// reservoir bytes `b`'s next frame needs, and returns `b` from `f + 1`.
    fn splice(&mut self, mut a: Tail, mut b: Encoded, f: u64, hold_from: u64) -> Result<Tail> {
        let lost = || {
            Error::stage(
                &*self.subject,
                Stage::Encode,
                format!("join after frame {f}: reservoir bytes out of reach"),
            )
        };
        let (ia, ib) = (
            a.run.index(f + 1).ok_or_else(lost)?,
            b.run.index(f + 1).ok_or_else(lost)?,
        );
        let need = b.run.frames[ib].main_data_begin;
        let from = main_data_before(&b.run.frames, ib, need).ok_or_else(lost)?;
        let into = main_data_before(&a.run.frames, ia, need).ok_or_else(lost)?;
        let mut bytes = Vec::with_capacity(need);
        for r in from {
            bytes.extend_from_slice(&b.run.bytes[r]);
        }
        let mut pos = 0;
        for r in into {
            let n = r.len();
            a.run.bytes[r].copy_from_slice(&bytes[pos..pos + n]);
            pos += n;
        }
        self.out.write_frames(&mut a.run, ia)?;
        b.run.drop_front(ib);
        self.joins.push(f);
        Ok(Tail {
            run: b.run,
            encoder: b.encoder,
            tag: b.tag,
            input_end: b.input_end,
            hold_from,
        })
    }

    /// No clean join: the earlier encoder `a` encodes `b`'s chunk too, from
    /// where its own input ended; `b`'s frames are dropped.
    fn continue_through(
        &mut self,
        a: Tail,
        b: Encoded,
        last: bool,
        hold_from: u64,
    ) -> Result<Tail> {
        let encoder = a.encoder.ok_or_else(|| {
            Error::stage(
                &*self.subject,
                Stage::Encode,
                "the earlier chunk was already flushed",
            )
        })?;
        let job = ChunkJob {
            subject: Arc::clone(&self.subject),
            settings: self.settings.clone(),
            encoder: Some(encoder),
            feed_from: (a.input_end - b.pcm_start) as usize,
            pcm: b.pcm,
            pcm_start: b.pcm_start,
            first_frame: a.run.first,
            flush: last,
            cancel: Arc::clone(&self.cancel.0),
            #[cfg(test)]
            panic: false,
        };
        let rx = self.spawn(job);
        let mut more = self.receive(&rx)?;
        self.recycle(std::mem::take(&mut more.pcm));
        let mut run = a.run;
        run.bytes.extend_from_slice(&more.run.bytes);
        run.frames = scan(&run.bytes, 0).map_err(|e| lame_output(&self.subject, &e))?;
        self.continued += 1;
        Ok(Tail {
            run,
            encoder: more.encoder,
            tag: more.tag,
            input_end: more.input_end,
            hold_from,
        })
    }
}

/// `finish` gives back the sink and the bytes written (see
/// [`ChunkedMp3Writer::finish`]).
impl<W: Write + Seek> BlockSink for ChunkedMp3Writer<'_, W> {
    type Output = (W, u64);

    fn write(&mut self, block: &Block) -> Result<()> {
        ChunkedMp3Writer::write(self, &block.planes())
    }

    fn finish(self) -> Result<(W, u64)> {
        ChunkedMp3Writer::finish(self)
    }
}

/// The frame `f ≥ lo` after which `b` can follow `a` cleanly, latest first:
///
/// - frame `f` of `a` and of `b` use the same block type in every granule
///   and channel, so the window `a` ends with is the one `b`'s next frame was
///   coded against (long windows throughout are preferred; matching short
///   ones, which LAME also uses in near-silence, are the second choice);
/// - the reservoir bytes `b`'s frame `f + 1` needs fit in the space `a` left
///   free before its own frame `f + 1`.
fn choose_join(a: &Run, b: &Run, lo: u64) -> Option<u64> {
    let hi = (a.first + a.frames.len() as u64).min(b.first + b.frames.len() as u64);
    let fits = |f: u64, long_only: bool| {
        let (Some(ia), Some(ib)) = (a.index(f + 1), b.index(f + 1)) else {
            return false;
        };
        if ia == 0 || ib == 0 {
            return false;
        }
        let (fa, fb, next) = (&a.frames[ia - 1], &b.frames[ib - 1], &b.frames[ib]);
        let need = next.main_data_begin;
        fa.blocks == fb.blocks
            && (!long_only || (fa.all_long() && next.all_long()))
            && need <= a.frames[ia].main_data_begin
            && next.end() <= b.bytes.len()
            && main_data_before(&a.frames, ia, need).is_some()
            && main_data_before(&b.frames, ib, need).is_some()
    };
    let candidates = lo..hi.saturating_sub(1);
    [true, false]
        .into_iter()
        .find_map(|long_only| candidates.clone().rev().find(|&f| fits(f, long_only)))
}

fn lame_output(subject: &str, why: &str) -> Error {
    Error::stage(
        subject,
        Stage::Encode,
        format!("LAME's output is not a stream this writer can splice: {why}"),
    )
}

/// Encodes one chunk job (on a pool thread).
fn run_job(job: ChunkJob) -> Result<Encoded> {
    let subject = &*job.subject;
    if job.cancel.load(Ordering::Relaxed) {
        return Err(Error::stage(subject, Stage::Encode, "cancelled"));
    }
    #[cfg(test)]
    if job.panic {
        panic!("injected failure");
    }
    let fresh = job.encoder.is_none();
    let mut encoder = match job.encoder {
        Some(e) => e,
        None => new_encoder(subject, &job.settings)?,
    };
    let frames = job.pcm.first().map_or(0, Vec::len);
    let settings = &job.settings;
    let expected = (frames as u64 * u64::from(settings.options.bitrate_kbps) * 125)
        / u64::from(settings.sample_rate);
    let mut bytes = Vec::with_capacity(expected as usize + 8192);
    let mut pos = job.feed_from;
    while pos < frames {
        let end = (pos + LAME_CALL_FRAMES).min(frames);
        let second = job.pcm.get(1).map_or(&[][..], |p| &p[pos..end]);
        let planes = [&job.pcm[0][pos..end], second];
        lame_encode(&mut encoder, &planes[..job.pcm.len()], &mut bytes)
            .map_err(|e| Error::stage(subject, Stage::Encode, e.to_string()))?;
        pos = end;
    }
    let (encoder, tag) = if job.flush {
        lame_flush(subject, &mut encoder, &mut bytes)?;
        let mut tag = Vec::new();
        lame_tag_frame(subject, &encoder, &mut tag)?;
        (None, Some(tag))
    } else {
        (Some(encoder), None)
    };
    let mut run = Run {
        first: job.first_frame,
        bytes,
        frames: Vec::new(),
    };
    let mut placeholder = Vec::new();
    if fresh {
        run.frames = scan(&run.bytes, 0).map_err(|e| lame_output(subject, &e))?;
        let len = run
            .frames
            .first()
            .filter(|f| f.end() <= run.bytes.len())
            .map(|f| f.header.len())
            .ok_or_else(|| lame_output(subject, "no Info tag placeholder frame"))?;
        placeholder = run.bytes[..len].to_vec();
        run.drop_front(1);
        run.first = job.first_frame;
    }
    Ok(Encoded {
        run,
        placeholder,
        encoder,
        tag,
        input_end: job.pcm_start + frames as u64,
        pcm: job.pcm,
        pcm_start: job.pcm_start,
    })
}

impl<W: Write + Seek> Output<W> {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.sink
            .write_all(bytes)
            .map_err(|e| Error::io(&*self.subject, "write", e))?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Writes the blank frame the Info tag will replace.
    fn write_info_placeholder(&mut self, frame: &[u8]) -> Result<()> {
        self.info_at = self.written;
        self.info_len = frame.len();
        self.write(frame)
    }

    /// Writes the first `n` frames of `run` and drops them from it.
    fn write_frames(&mut self, run: &mut Run, n: usize) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let end = run.frames[n - 1].end();
        for f in &run.frames[..n] {
            self.toc.record(self.audio_frames, self.audio_bytes);
            self.audio_frames += 1;
            self.audio_bytes += f.header.len() as u64;
        }
        self.crc.update(&run.bytes[..end]);
        self.write(&run.bytes[..end])?;
        run.drop_front(n);
        Ok(())
    }

    /// Writes `tag` over the placeholder and returns to the end.
    fn overwrite_info(&mut self, tag: &[u8]) -> Result<()> {
        let subject = &*self.subject;
        let seek = |sink: &mut W, to| {
            sink.seek(SeekFrom::Start(to))
                .map_err(|e| Error::io(subject, "seek", e))
        };
        seek(&mut self.sink, self.start + self.info_at)?;
        self.sink
            .write_all(tag)
            .map_err(|e| Error::io(subject, "write", e))?;
        seek(&mut self.sink, self.start + self.written)?;
        self.sink
            .flush()
            .map_err(|e| Error::io(subject, "flush", e))
    }
}

#[cfg(test)]
pub(crate) mod tests;
