//! The second pass: each output encoded from its source and, unless
//! verification is off, decoded and measured while it is written (see
//! [`crate::pipeline::verify`]).

use std::io::{Seek, Write};
use std::thread;
use std::time::{Duration, Instant};

use crate::audio::units::frames_to_secs;
use crate::audio::{drain, Block, BlockSink, Source};
use crate::encode::chunked::{ChunkOptions, ChunkedMp3Writer, EncodePool};
use crate::encode::id3::Tag;
use crate::encode::{Mp3Format, Mp3Options, Mp3Writer};
use crate::error::{Error, Result};
use crate::io::Sink;
use crate::pipeline::calibrate::Calibrated;
use crate::pipeline::control::{first_error, join};
use crate::pipeline::verify::{check_tag, decode_stream, tee, WriteSeek};
use crate::report::waveform::{Waveform, WaveformBuilder};
use crate::report::{Observer, OutputReport};
use crate::settings::Settings;

/// Audio per chunk of a segment's encoding.
const SEGMENT_CHUNK: Duration = Duration::from_secs(20);

/// Chunks of each output in the encoder pool at once.
const IN_FLIGHT: usize = 2;

/// What every render of a run shares.
pub(crate) struct Renderer<'a> {
    pub(crate) settings: &'a Settings,
    /// The chunked encoders' threads; `None`: one encoder per output
    /// ([`EncoderPath::Single`](crate::EncoderPath::Single)).
    pub(crate) pool: Option<&'a EncodePool>,
    pub(crate) obs: &'a dyn Observer,
}

/// A rendered output: its report, and how long its verification went on
/// after its encoding had ended, seconds.
pub(crate) type Rendered = (OutputReport, f64);

impl Renderer<'_> {
    /// Renders the segment of `voice` into `sink`.
    pub(crate) fn segment<S: Sink>(
        &self,
        voice: &Calibrated,
        sink: &mut S,
        name: &str,
        tag: &Tag,
    ) -> Result<Rendered> {
        let chunking = ChunkOptions {
            chunk: SEGMENT_CHUNK,
            in_flight: Some(IN_FLIGHT),
            expected_samples: Some(voice.frames()),
        };
        let format = self.format(&self.settings.segment_mp3, 1);
        let src = voice.source()?;
        let (r, ()) = self.output(name, sink, (&format, &chunking, tag), src, None, ())?;
        Ok(r)
    }

    /// Renders the episode, `total` frames of `src`, into `sink`, with its
    /// waveform when the settings ask for one.
    pub(crate) fn episode<S: Sink>(
        &self,
        src: impl Source,
        total: u64,
        sink: &mut S,
        tag: &Tag,
    ) -> Result<(Rendered, Option<Waveform>)> {
        let chunking = ChunkOptions {
            in_flight: Some(IN_FLIGHT),
            expected_samples: Some(total),
            ..ChunkOptions::default()
        };
        let format = self.format(&self.settings.episode_mp3, 2);
        let rate = self.settings.sample_rate;
        let wave =
            (self.settings.waveform_pixels_per_second).map(|pps| WaveformBuilder::new(rate, pps));
        let progress = Some((self.obs, total));
        self.output(
            "episode",
            sink,
            (&format, &chunking, tag),
            src,
            progress,
            wave,
        )
    }

    /// Runs `a` and `b`: side by side on the chunked path (the pool keeps
    /// every CPU busy), one after the other on the single encoder's, where
    /// there is one CPU for both and two encoders would only take turns on
    /// it. The first error, whichever returns it.
    pub(crate) fn both<A: Send, B>(
        &self,
        a: impl FnOnce() -> Result<A> + Send,
        b: impl FnOnce() -> Result<B>,
    ) -> Result<(A, B)> {
        if self.pool.is_none() {
            let a = a()?;
            return Ok((a, b()?));
        }
        thread::scope(|s| {
            let a = s.spawn(a);
            let b = b();
            first_error(join(a), b)
        })
    }

    fn format(&self, options: &Mp3Options, channels: u8) -> Mp3Format {
        Mp3Format {
            options: options.clone(),
            channels,
            sample_rate: self.settings.sample_rate,
        }
    }

    /// Encodes `src` into `sink` and into `extra`, verifying the MP3 while
    /// it is written unless verification is off; reports progress out of
    /// `progress`'s total frames when given.
    fn output<S: Sink, K: BlockSink>(
        &self,
        name: &str,
        sink: &mut S,
        (format, chunking, tag): (&Mp3Format, &ChunkOptions, &Tag),
        mut src: impl Source,
        progress: Option<(&dyn Observer, u64)>,
        extra: K,
    ) -> Result<(Rendered, K::Output)> {
        let rate = self.settings.sample_rate;
        let channels = usize::from(format.channels);
        let encode = |out: &mut dyn WriteSeek| {
            let writer = match self.pool {
                Some(pool) => Writer::Chunked(ChunkedMp3Writer::with_tag(
                    name, out, format, pool, chunking, tag,
                )?),
                None => Writer::Single(Mp3Writer::with_tag(name, out, format, tag)?),
            };
            let frames = Frames::new(rate, progress);
            let ((_, bytes), frames, extra) = drain(&mut src, (writer, frames, extra))?;
            Ok::<_, Error>((bytes, frames, extra))
        };
        sink.reset().map_err(|e| Error::io(name, "reset", e))?;
        if !self.settings.verify {
            let (bytes, frames, extra) = encode(&mut *sink)?;
            return Ok(((unverified(bytes, frames, rate, channels), 0.0), extra));
        }
        let (streamed, (bytes, frames, extra), t) = thread::scope(|s| {
            let (mut tee, pipe) = tee(&mut *sink).map_err(|e| Error::io(name, "seek", e))?;
            let check = s.spawn(move || decode_stream(name, pipe, rate, channels));
            let encoded = encode(&mut tee);
            let t = Instant::now();
            tee.end(encoded.as_ref().ok().map(|&(_, frames, _)| frames));
            let streamed = join(check);
            let encoded = encoded?;
            Ok::<_, Error>((streamed?, encoded, t))
        })?;
        let file = sink.reader().map_err(|e| Error::io(name, "read back", e))?;
        check_tag(name, file, frames, &streamed)?;
        let m = &streamed.measurement;
        let report = OutputReport {
            integrated_lufs: Some(m.integrated_lufs),
            true_peak_dbtp: Some(m.true_peak_dbtp),
            ..unverified(bytes, frames, rate, channels)
        };
        Ok(((report, t.elapsed().as_secs_f64()), extra))
    }
}

fn unverified(bytes: u64, frames: u64, rate: u32, channels: usize) -> OutputReport {
    OutputReport {
        bytes,
        frames,
        duration_s: frames_to_secs(frames, rate),
        sample_rate: rate,
        channels,
        integrated_lufs: None,
        true_peak_dbtp: None,
    }
}

/// A sink that counts the frames of an output and, when given an observer
/// and the output's length, reports the progress every second of audio and
/// at the end.
struct Frames<'a> {
    rate: u32,
    progress: Option<(&'a dyn Observer, u64)>,
    done: u64,
    reported: u64,
}

impl<'a> Frames<'a> {
    fn new(rate: u32, progress: Option<(&'a dyn Observer, u64)>) -> Self {
        Frames {
            rate,
            progress,
            done: 0,
            reported: 0,
        }
    }
}

impl BlockSink for Frames<'_> {
    type Output = u64;

    fn write(&mut self, block: &Block) -> Result<()> {
        self.done += block.frames() as u64;
        if let Some((obs, total)) = self.progress {
            if self.done - self.reported >= u64::from(self.rate) {
                self.reported = self.done;
                obs.progress(self.done, total);
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<u64> {
        if let Some((obs, total)) = self.progress {
            obs.progress(self.done, total);
        }
        Ok(self.done)
    }
}

/// The MP3 writer of one output, on the path the settings chose (one per
/// output, so the size difference of the variants does not matter).
#[allow(clippy::large_enum_variant)]
enum Writer<'p, W: Write + Seek> {
    Single(Mp3Writer<W>),
    Chunked(ChunkedMp3Writer<'p, W>),
}

impl<W: Write + Seek> BlockSink for Writer<'_, W> {
    type Output = (W, u64);

    fn write(&mut self, block: &Block) -> Result<()> {
        match self {
            Writer::Single(w) => BlockSink::write(w, block),
            Writer::Chunked(w) => BlockSink::write(w, block),
        }
    }

    fn finish(self) -> Result<(W, u64)> {
        match self {
            Writer::Single(w) => BlockSink::finish(w),
            Writer::Chunked(w) => BlockSink::finish(w),
        }
    }
}
