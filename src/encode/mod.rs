//! Streaming MP3 encoding with LAME (through `mp3lame-encoder`).
//!
//! [`Mp3Writer`] takes planar `f32` frames, encodes them as constant-bitrate
//! MP3 and writes the bytes to its sink as they come, so memory does not grow
//! with the length of the programme. Every file it writes is laid out as:
//!
//! 1. an ID3v2.4 tag ([`crate::encode::id3`]) whose first frame is a `TSSE`
//!    (encoder) naming podstitch and the LAME version, followed by whatever
//!    the caller adds (title, cover, chapters: [`Mp3Writer::with_tag`]). We write this tag ourselves: the `Id3Tag` of
//!    `mp3lame-encoder` has no encoder field, and LAME's own tag would name
//!    only LAME. LAME itself is configured to write no ID3 tag at all.
//! 2. the Info (Xing) frame with the LAME extension (encoder delay and
//!    padding, so players and decoders play it gaplessly with the right
//!    duration). LAME emits a blank placeholder frame first; [`Mp3Writer::finish`]
//!    flushes the encoder and then overwrites that placeholder in place with
//!    the real tag frame, which is why the sink must be `Seek`.
//! 3. the audio frames.
//!
//! LAME's CBR presets scale the input down to avoid clipping (by 0.95 up to
//! 160 kb/s, 0.97 at 192, 0.98 at 224; `presets.c`, `abr_switch_map`). The
//! writer undoes that scale after clamping, so the decoded level equals the
//! level written: loudness and true peak measured before encoding hold for
//! the MP3 (the pipeline's limiter must leave the headroom for the codec's
//! overshoot).

pub(crate) mod chunked;
pub(crate) mod id3;

use std::io::{Seek, SeekFrom, Write};

use mp3lame_encoder::{
    max_required_buffer_size, Bitrate, Builder, DualPcm, Encoder, FlushGap, Mode, MonoPcm, Quality,
};

use crate::audio::{Block, BlockSink};
use crate::encode::id3::{Tag, MAX_TAG_BYTES};
use crate::error::{Error, Result, Stage};

/// Frames handed to LAME per call; bounds the scratch buffers.
pub(crate) const LAME_CALL_FRAMES: usize = 4096;

/// MPEG-1 sample rates by frame-header index (ISO/IEC 11172-3 §2.4.2.3,
/// `sampling_frequency`); MPEG-2 halves them and MPEG-2.5 quarters them.
/// The one table of MP3 rates: the encoder's checks and the frame parser
/// both read it.
pub(crate) const MPEG1_RATES: [u32; 3] = [44_100, 48_000, 32_000];

/// The MPEG-2 and 2.5 rates (16, 22.05, 24 kHz and 8, 11.025, 12 kHz).
fn mpeg2_rates() -> impl Iterator<Item = u32> {
    [2, 4]
        .into_iter()
        .flat_map(|d| MPEG1_RATES.iter().map(move |r| r / d))
}

/// Samples per channel in one MP3 frame at `sample_rate`: 1152 for MPEG-1
/// (32 kHz and up), 576 for MPEG-2 and 2.5 (one granule).
pub(crate) fn frame_samples(sample_rate: u32) -> u64 {
    if sample_rate >= 32_000 {
        1152
    } else {
        576
    }
}

/// The MP3 options of one kind of output: what a user chooses.
#[derive(Debug, Clone, PartialEq)]
pub struct Mp3Options {
    /// Constant bitrate in kb/s (see [`Mp3Format::options`] for the rates
    /// each sample rate takes).
    pub bitrate_kbps: u32,
    /// LAME algorithm quality, 0 (best, slowest) to 9 (worst, fastest).
    pub quality: u8,
}

/// The format of one MP3 stream: the chosen [`Mp3Options`] (bitrate,
/// quality), and the channels and sample rate of the audio it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Mp3Format {
    /// Bitrate and quality. MPEG-1 rates (32, 44.1, 48 kHz) take 32, 40, 48,
    /// 64, 80, 96, 112, 128, 160, 192, 224, 256 or 320 kb/s; the lower sample
    /// rates take 8, 16, 24, 32, 40, 48, 64, 80, 96, 112, 128 or 160. A frame
    /// must also hold the gapless Info tag, which rules out the lowest of
    /// these (below 64 kb/s at 44.1 and 48 kHz, for example).
    pub options: Mp3Options,
    /// Channel count: 1 (mono) or 2 (joint stereo).
    pub channels: u8,
    /// Sample rate in Hz of both the input frames and the MP3 (no resampling).
    pub sample_rate: u32,
}

/// Streaming MP3 writer: the layout of its files is described in
/// `src/encode/mod.rs`.
///
/// Call [`Mp3Writer::write`] as often as needed, then [`Mp3Writer::finish`]:
/// a writer dropped without `finish` leaves the encoder's tail unwritten and
/// the Info frame blank.
pub struct Mp3Writer<W: Write + Seek> {
    subject: String,
    sink: W,
    encoder: Encoder,
    channels: usize,
    /// Gain undoing LAME's preset input scale (see the module documentation).
    makeup: f32,
    /// Sink position when the writer was created.
    start: u64,
    /// Offset from `start` of the first MPEG frame (the placeholder).
    frame_offset: u64,
    /// Bytes written since `start`.
    written: u64,
    /// Clamped copies of the input, one per channel, `LAME_CALL_FRAMES` frames at most.
    scratch: [Vec<f32>; 2],
    /// Encoded bytes, reused for every call.
    out: Vec<u8>,
}

impl<W: Write + Seek> std::fmt::Debug for Mp3Writer<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mp3Writer")
            .field("subject", &self.subject)
            .field("channels", &self.channels)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl<W: Write + Seek> Mp3Writer<W> {
    /// Starts an MP3 at the sink's current position: checks the settings,
    /// sets up LAME and writes the ID3v2 tag.
    ///
    /// `subject` names the output in errors (e.g. "episode (episode.mp3)").
    pub fn new(subject: &str, sink: W, settings: &Mp3Format) -> Result<Self> {
        Self::with_tag(subject, sink, settings, &Tag::new())
    }

    /// As [`Mp3Writer::new`], with the frames of `tag` in the ID3v2 tag
    /// after the encoder's.
    pub(crate) fn with_tag(
        subject: &str,
        mut sink: W,
        settings: &Mp3Format,
        tag: &Tag,
    ) -> Result<Self> {
        let encoder = new_encoder(subject, settings)?;
        let (start, frame_offset) = begin_stream(subject, &mut sink, tag)?;

        Ok(Mp3Writer {
            subject: subject.to_owned(),
            sink,
            encoder,
            channels: usize::from(settings.channels),
            makeup: makeup_gain(settings),
            start,
            frame_offset,
            written: frame_offset,
            scratch: [
                Vec::with_capacity(LAME_CALL_FRAMES),
                Vec::with_capacity(LAME_CALL_FRAMES),
            ],
            out: Vec::with_capacity(max_required_buffer_size(LAME_CALL_FRAMES)),
        })
    }

    /// Encodes planar frames; `planes.len()` must equal the channel count and
    /// all planes must have the same length (any length, including zero).
    /// Samples are clamped to [-1, 1]; NaN becomes silence.
    pub fn write(&mut self, planes: &[&[f32]]) -> Result<()> {
        if planes.len() != self.channels {
            return Err(Error::stage(
                &self.subject,
                Stage::Encode,
                format!(
                    "got {} channels of audio for a {}-channel MP3",
                    planes.len(),
                    self.channels
                ),
            ));
        }
        let frames = planes[0].len();
        if planes.iter().any(|p| p.len() != frames) {
            return Err(Error::stage(
                &self.subject,
                Stage::Encode,
                "channels of one block differ in length",
            ));
        }
        let mut pos = 0;
        while pos < frames {
            let end = (pos + LAME_CALL_FRAMES).min(frames);
            let makeup = self.makeup;
            for (plane, scratch) in planes.iter().zip(self.scratch.iter_mut()) {
                scratch.clear();
                scratch.extend(plane[pos..end].iter().map(|&x| clamp(x) * makeup));
            }
            self.out.clear();
            let planes = [self.scratch[0].as_slice(), self.scratch[1].as_slice()];
            let result = lame_encode(&mut self.encoder, &planes[..self.channels], &mut self.out);
            result.map_err(|e| Error::stage(&self.subject, Stage::Encode, e.to_string()))?;
            self.emit()?;
            pos = end;
        }
        Ok(())
    }

    /// Flushes the encoder (padding the last frame, so nothing is lost),
    /// overwrites the placeholder first frame with the LAME Info tag frame,
    /// and returns the sink (positioned at the end of the MP3) and the total
    /// number of bytes written.
    pub fn finish(mut self) -> Result<(W, u64)> {
        self.out.clear();
        lame_flush(&self.subject, &mut self.encoder, &mut self.out)?;
        self.emit()?;

        self.out.clear();
        lame_tag_frame(&self.subject, &self.encoder, &mut self.out)?;
        let tag_size = self.out.len();
        if self.frame_offset + tag_size as u64 > self.written {
            return Err(Error::stage(
                &self.subject,
                Stage::Encode,
                "the Info tag frame is larger than the encoded stream",
            ));
        }
        let subject = &self.subject;
        let end = self.start + self.written;
        self.sink
            .seek(SeekFrom::Start(self.start + self.frame_offset))
            .map_err(|e| Error::io(subject, "seek", e))?;
        self.sink
            .write_all(&self.out)
            .map_err(|e| Error::io(subject, "write", e))?;
        self.sink
            .seek(SeekFrom::Start(end))
            .map_err(|e| Error::io(subject, "seek", e))?;
        self.sink
            .flush()
            .map_err(|e| Error::io(subject, "flush", e))?;
        Ok((self.sink, self.written))
    }

    /// Writes the encoded bytes in `out` to the sink.
    fn emit(&mut self) -> Result<()> {
        if !self.out.is_empty() {
            self.sink
                .write_all(&self.out)
                .map_err(|e| Error::io(&self.subject, "write", e))?;
            self.written += self.out.len() as u64;
        }
        Ok(())
    }
}

/// `finish` gives back the sink and the bytes written (see
/// [`Mp3Writer::finish`]).
impl<W: Write + Seek> BlockSink for Mp3Writer<W> {
    type Output = (W, u64);

    fn write(&mut self, block: &Block) -> Result<()> {
        Mp3Writer::write(self, &block.planes())
    }

    fn finish(self) -> Result<(W, u64)> {
        Mp3Writer::finish(self)
    }
}

/// Sets up a LAME encoder for `settings` (checked first): CBR, no ID3 tag,
/// the Info tag placeholder as its first frame, no resampling.
pub(crate) fn new_encoder(subject: &str, settings: &Mp3Format) -> Result<Encoder> {
    let (bitrate, quality, mode) = check_settings(subject, settings)?;
    let lame = |what: &str, e: mp3lame_encoder::BuildError| {
        Error::stage(subject, Stage::Encode, format!("LAME rejected {what}: {e}"))
    };
    let mut builder = Builder::new().ok_or_else(|| {
        Error::stage(subject, Stage::Encode, "LAME could not allocate an encoder")
    })?;
    builder
        .set_num_channels(settings.channels)
        .map_err(|e| lame("the channel count", e))?;
    builder
        .set_sample_rate(settings.sample_rate)
        .map_err(|e| lame("the input sample rate", e))?;
    builder
        .set_output_sample_rate(std::num::NonZeroU32::new(settings.sample_rate))
        .map_err(|e| lame("the output sample rate", e))?;
    builder
        .set_vbr_mode(mp3lame_encoder::VbrMode::Off)
        .map_err(|e| lame("CBR mode", e))?;
    builder
        .set_brate(bitrate)
        .map_err(|e| lame("the bitrate", e))?;
    builder
        .set_mode(mode)
        .map_err(|e| lame("the channel mode", e))?;
    builder
        .set_quality(quality)
        .map_err(|e| lame("the quality", e))?;
    builder
        .set_to_write_vbr_tag(true)
        .map_err(|e| lame("the Info tag", e))?;
    let encoder = builder.build().map_err(|e| lame("the settings", e))?;
    if encoder.sample_rate() != settings.sample_rate {
        return Err(Error::stage(
            subject,
            Stage::Encode,
            format!(
                "LAME would resample {} Hz to {} Hz",
                settings.sample_rate,
                encoder.sample_rate()
            ),
        ));
    }
    Ok(encoder)
}

/// Encodes planar samples (one plane for mono, two for stereo; already
/// clamped and scaled, at most [`LAME_CALL_FRAMES`] frames) and appends the bytes LAME
/// hands out to `out`.
pub(crate) fn lame_encode(
    encoder: &mut Encoder,
    planes: &[&[f32]],
    out: &mut Vec<u8>,
) -> std::result::Result<usize, mp3lame_encoder::EncodeError> {
    debug_assert!(planes[0].len() <= LAME_CALL_FRAMES);
    out.reserve(max_required_buffer_size(planes[0].len()));
    match planes {
        [mono] => encoder.encode_to_vec(MonoPcm(mono), out),
        [left, right, ..] => encoder.encode_to_vec(DualPcm { left, right }, out),
        [] => Ok(0),
    }
}

/// Flushes the encoder with [`FlushGap`] (the tail is padded, not lost) and
/// appends the last bytes to `out`.
pub(crate) fn lame_flush(subject: &str, encoder: &mut Encoder, out: &mut Vec<u8>) -> Result<()> {
    // LAME's flush writes at most 7200 bytes (mp3lame-encoder's documentation).
    out.reserve(7200);
    encoder
        .flush_to_vec::<FlushGap>(out)
        .map_err(|e| Error::stage(subject, Stage::Encode, format!("flush: {e}")))?;
    Ok(())
}

/// Appends the LAME Info tag frame of a flushed encoder to `out`.
pub(crate) fn lame_tag_frame(subject: &str, encoder: &Encoder, out: &mut Vec<u8>) -> Result<()> {
    let tag_size = encoder.lame_tag_size();
    out.reserve(tag_size);
    let got = encoder.lame_tag_encode_to_vec(out);
    if tag_size == 0 || got.map(|n| n.get()) != Some(tag_size) {
        return Err(Error::stage(
            subject,
            Stage::Encode,
            "LAME produced no Info (gapless) tag frame",
        ));
    }
    Ok(())
}

/// The gain applied after clamping that undoes LAME's preset input scale.
pub(crate) fn makeup_gain(settings: &Mp3Format) -> f32 {
    1.0 / lame_preset_scale(settings.options.bitrate_kbps)
}

#[inline]
pub(crate) fn clamp(x: f32) -> f32 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(-1.0, 1.0)
    }
}

/// The input scale LAME 3.100's CBR presets apply at `kbps`
/// (`abr_switch_map` in `presets.c`, for the bitrates we accept).
fn lame_preset_scale(kbps: u32) -> f32 {
    match kbps {
        0..=160 => 0.95,
        161..=192 => 0.97,
        193..=224 => 0.98,
        _ => 1.0,
    }
}

/// The encoder name written in the ID3v2 `TSSE` frame.
fn encoder_name() -> String {
    format!(
        "podstitch {} (LAME {})",
        env!("CARGO_PKG_VERSION"),
        mp3lame_encoder::mp3lame_version()
    )
}

/// Checks the settings and maps them to LAME's types.
fn check_settings(subject: &str, s: &Mp3Format) -> Result<(Bitrate, Quality, Mode)> {
    let mode = match s.channels {
        1 => Mode::Mono,
        2 => Mode::JointStereo,
        n => {
            return Err(Error::Settings(format!(
                "{subject}: MP3 channels must be 1 or 2, not {n}"
            )))
        }
    };
    let mpeg1 = MPEG1_RATES.contains(&s.sample_rate);
    if !mpeg1 && !mpeg2_rates().any(|r| r == s.sample_rate) {
        return Err(Error::Settings(format!(
            "{subject}: MP3 cannot carry {} Hz; use 32000, 44100 or 48000 \
             (or 8000, 11025, 12000, 16000, 22050, 24000)",
            s.sample_rate
        )));
    }
    let bitrate = match s.options.bitrate_kbps {
        8 => Bitrate::Kbps8,
        16 => Bitrate::Kbps16,
        24 => Bitrate::Kbps24,
        32 => Bitrate::Kbps32,
        40 => Bitrate::Kbps40,
        48 => Bitrate::Kbps48,
        64 => Bitrate::Kbps64,
        80 => Bitrate::Kbps80,
        96 => Bitrate::Kbps96,
        112 => Bitrate::Kbps112,
        128 => Bitrate::Kbps128,
        160 => Bitrate::Kbps160,
        192 => Bitrate::Kbps192,
        224 => Bitrate::Kbps224,
        256 => Bitrate::Kbps256,
        320 => Bitrate::Kbps320,
        _ => return Err(bad_bitrate(subject, s, mpeg1)),
    };
    let fits = if mpeg1 {
        s.options.bitrate_kbps >= 32
    } else {
        s.options.bitrate_kbps <= 160
    };
    if !fits {
        return Err(bad_bitrate(subject, s, mpeg1));
    }
    // LAME silently drops the Info tag when its frame cannot hold it
    // (`InitVbrTag` in VbrTag.c): the first frame of a CBR stream is as long
    // as any other, so low bitrates cannot carry it.
    let frame_bytes = if mpeg1 { 144_000 } else { 72_000 } * s.options.bitrate_kbps / s.sample_rate;
    let side_info = match (mpeg1, s.channels) {
        (true, 1) => 17,
        (true, _) => 32,
        (false, 1) => 9,
        (false, _) => 17,
    };
    let tag_bytes = 4 + side_info + 156;
    if frame_bytes < tag_bytes {
        return Err(Error::Settings(format!(
            "{subject}: MP3 frames at {} kb/s, {} Hz, {} channel(s) are {frame_bytes} bytes, \
             too small for the {tag_bytes}-byte gapless Info tag; use a higher bitrate",
            s.options.bitrate_kbps, s.sample_rate, s.channels
        )));
    }
    let quality = match s.options.quality {
        0 => Quality::Best,
        1 => Quality::SecondBest,
        2 => Quality::NearBest,
        3 => Quality::VeryNice,
        4 => Quality::Nice,
        5 => Quality::Good,
        6 => Quality::Decent,
        7 => Quality::Ok,
        8 => Quality::SecondWorst,
        9 => Quality::Worst,
        q => {
            return Err(Error::Settings(format!(
                "{subject}: LAME quality must be 0 (best) to 9 (fastest), not {q}"
            )))
        }
    };
    Ok((bitrate, quality, mode))
}

/// Checks `format` by the encoder's rules (rate, bitrate, quality, room for
/// the gapless Info tag) without starting an encoder; `subject` names it.
pub(crate) fn check_format(subject: &str, format: &Mp3Format) -> Result<()> {
    check_settings(subject, format).map(|_| ())
}

fn bad_bitrate(subject: &str, s: &Mp3Format, mpeg1: bool) -> Error {
    let allowed = if mpeg1 {
        "32, 40, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256 or 320"
    } else {
        "8, 16, 24, 32, 40, 48, 64, 80, 96, 112, 128 or 160"
    };
    Error::Settings(format!(
        "{subject}: MP3 bitrate {} kb/s is not supported at {} Hz; use {allowed}",
        s.options.bitrate_kbps, s.sample_rate
    ))
}

/// Starts an MP3 at the sink's current position by writing the ID3v2 tag
/// (the encoder's `TSSE` frame, then the frames of `extra`); returns that
/// position and the tag's length (where the first frame goes).
pub(crate) fn begin_stream<W: Write + Seek>(
    subject: &str,
    sink: &mut W,
    extra: &Tag,
) -> Result<(u64, u64)> {
    let start = sink
        .stream_position()
        .map_err(|e| Error::io(subject, "seek", e))?;
    let mut tag = Tag::new();
    tag.text(b"TSSE", &encoder_name()).append(extra);
    if tag.body_len() > MAX_TAG_BYTES {
        return Err(Error::stage(
            subject,
            Stage::Encode,
            format!(
                "the ID3v2 tag would be {} bytes, more than the {MAX_TAG_BYTES} an ID3v2.4 tag can hold; use a smaller cover",
                tag.body_len()
            ),
        ));
    }
    let tag = tag.to_bytes();
    sink.write_all(&tag)
        .map_err(|e| Error::io(subject, "write", e))?;
    Ok((start, tag.len() as u64))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::f32::consts::TAU;
    use std::io::Cursor;

    use symphonia::core::codecs::audio::AudioDecoderOptions;
    use symphonia::core::formats::probe::Hint;
    use symphonia::core::formats::{FormatOptions, TrackType};
    use symphonia::core::io::MediaSourceStream;
    use symphonia::core::meta::MetadataOptions;

    const RATE: u32 = 44_100;

    fn sine(frames: usize, freq: f32, amp: f32) -> Vec<f32> {
        (0..frames)
            .map(|i| amp * (TAU * freq * i as f32 / RATE as f32).sin())
            .collect()
    }

    fn settings(channels: u8, bitrate_kbps: u32) -> Mp3Format {
        Mp3Format {
            options: Mp3Options {
                bitrate_kbps,
                quality: 3,
            },
            channels,
            sample_rate: RATE,
        }
    }

    /// Encodes the planes in uneven blocks (to exercise streaming).
    fn encode(planes: &[Vec<f32>], s: &Mp3Format) -> Vec<u8> {
        let mut w = Mp3Writer::new("test (test.mp3)", Cursor::new(Vec::new()), s).unwrap();
        let n = planes[0].len();
        let mut pos = 0;
        for step in [1, 0, 999, 5000, 12345].iter().cycle() {
            let end = (pos + step).min(n);
            let block: Vec<&[f32]> = planes.iter().map(|p| &p[pos..end]).collect();
            w.write(&block).unwrap();
            pos = end;
            if pos == n {
                break;
            }
        }
        let (cursor, bytes) = w.finish().unwrap();
        let data = cursor.into_inner();
        assert_eq!(bytes, data.len() as u64, "returned byte count");
        data
    }

    /// Decodes an MP3 with symphonia (gapless), planar.
    pub(crate) fn decode(data: Vec<u8>) -> (u32, Vec<Vec<f32>>) {
        let mss = MediaSourceStream::new(Box::new(Cursor::new(data)), Default::default());
        let mut hint = Hint::new();
        hint.with_extension("mp3");
        let mut format = symphonia::default::get_probe()
            .probe(
                &hint,
                mss,
                FormatOptions::default(),
                MetadataOptions::default(),
            )
            .unwrap();
        let track = format.default_track(TrackType::Audio).unwrap();
        let id = track.id;
        let mut dec = symphonia::default::get_codecs()
            .make_audio_decoder(
                track.codec_params.as_ref().unwrap().audio().unwrap(),
                &AudioDecoderOptions::default(),
            )
            .unwrap();
        let mut out: Vec<Vec<f32>> = Vec::new();
        let mut tmp: Vec<Vec<f32>> = Vec::new();
        let mut rate = 0;
        while let Some(packet) = format.next_packet().unwrap() {
            if packet.track_id != id {
                continue;
            }
            let buf = dec.decode(&packet).unwrap();
            rate = buf.spec().rate();
            buf.copy_to_vecs_planar(&mut tmp);
            out.resize(tmp.len(), Vec::new());
            for (o, t) in out.iter_mut().zip(&tmp) {
                o.extend_from_slice(t);
            }
        }
        (rate, out)
    }

    /// Fields of the Info frame following the ID3v2 tag.
    struct InfoFrame {
        tag: [u8; 4],
        mpeg_frames: u32,
        encoder: [u8; 4],
        delay: u32,
        padding: u32,
        frame_samples: u32,
    }

    fn info_frame(data: &[u8]) -> InfoFrame {
        assert_eq!(&data[..3], b"ID3", "starts with an ID3v2 tag");
        assert_eq!(data[3], 4, "ID3v2.4");
        let size = data[6..10]
            .iter()
            .fold(0usize, |a, &b| (a << 7) | usize::from(b));
        let text = String::from_utf8_lossy(&data[10..10 + size]);
        assert!(
            text.contains("TSSE") && text.contains("podstitch"),
            "{text}"
        );
        let f = 10 + size;
        assert_eq!(data[f], 0xff, "MPEG frame sync after the tag");
        assert_eq!(data[f + 1] & 0xe0, 0xe0, "MPEG frame sync after the tag");
        let mpeg1 = (data[f + 1] >> 3) & 3 == 3;
        let mono = data[f + 3] >> 6 == 3;
        let side = match (mpeg1, mono) {
            (true, true) => 17,
            (true, false) => 32,
            (false, true) => 9,
            (false, false) => 17,
        };
        let x = f + 4 + side;
        let be32 = |i: usize| u32::from_be_bytes(data[i..i + 4].try_into().unwrap());
        let flags = be32(x + 4);
        let mut p = x + 8;
        let mut mpeg_frames = 0;
        if flags & 1 != 0 {
            mpeg_frames = be32(p);
            p += 4;
        }
        if flags & 2 != 0 {
            p += 4;
        }
        if flags & 4 != 0 {
            p += 100;
        }
        if flags & 8 != 0 {
            p += 4;
        }
        let trim = &data[p + 21..p + 24];
        InfoFrame {
            tag: data[x..x + 4].try_into().unwrap(),
            mpeg_frames,
            encoder: data[p..p + 4].try_into().unwrap(),
            delay: (u32::from(trim[0]) << 4) | (u32::from(trim[1]) >> 4),
            padding: (u32::from(trim[1] & 0x0f) << 8) | u32::from(trim[2]),
            frame_samples: if mpeg1 { 1152 } else { 576 },
        }
    }

    /// Least-squares gain of `got` relative to `want`.
    fn gain(want: &[f32], got: &[f32]) -> f64 {
        let dot: f64 = want
            .iter()
            .zip(got)
            .map(|(w, g)| f64::from(*w) * f64::from(*g))
            .sum();
        let ww: f64 = want.iter().map(|w| f64::from(*w).powi(2)).sum();
        dot / ww
    }

    /// SNR in dB of `got` against `want`, over the middle (skipping 0.1 s at
    /// each end, where the sine starts and stops abruptly).
    fn snr_db(want: &[f32], got: &[f32]) -> f64 {
        let skip = RATE as usize / 10;
        let (mut sig, mut err) = (0f64, 0f64);
        for (w, g) in want[skip..want.len() - skip]
            .iter()
            .zip(&got[skip..got.len() - skip])
        {
            sig += f64::from(*w).powi(2);
            err += f64::from(w - g).powi(2);
        }
        10.0 * (sig / err.max(1e-30)).log10()
    }

    fn round_trip(planes: Vec<Vec<f32>>, s: &Mp3Format) {
        let frames = planes[0].len();
        let data = encode(&planes, s);

        let info = info_frame(&data);
        assert_eq!(&info.tag, b"Info", "CBR Info tag in the first frame");
        assert_eq!(&info.encoder, b"LAME", "LAME extension");
        assert!(info.delay > 0, "encoder delay recorded");
        assert!(info.padding > 0, "padding recorded");
        let by_header = info.mpeg_frames * info.frame_samples - info.delay - info.padding;
        assert_eq!(by_header as usize, frames, "duration from the Info frame");

        let (rate, decoded) = decode(data);
        assert_eq!(rate, s.sample_rate);
        assert_eq!(decoded.len(), planes.len());
        for (want, got) in planes.iter().zip(&decoded) {
            assert_eq!(got.len(), frames, "gapless decoded length");
            let snr = snr_db(want, got);
            assert!(snr >= 30.0, "SNR {snr:.1} dB");
            let g = gain(want, got);
            assert!((g - 1.0).abs() < 0.01, "level changed: gain {g:.4}");
        }
    }

    #[test]
    fn mono_64k_round_trip_is_gapless() {
        let n = 3 * RATE as usize;
        round_trip(vec![sine(n, 440.0, 0.5)], &settings(1, 64));
    }

    #[test]
    fn stereo_128k_round_trip_is_gapless() {
        let n = 3 * RATE as usize;
        let planes = vec![sine(n, 440.0, 0.5), sine(n, 440.0, 0.3)];
        round_trip(planes, &settings(2, 128));
    }

    #[test]
    fn level_is_kept_at_every_bitrate() {
        let n = RATE as usize;
        let want = sine(n, 1000.0, 0.5);
        for kbps in [64, 80, 128, 160, 192, 224, 256, 320] {
            let (_, got) = decode(encode(std::slice::from_ref(&want), &settings(1, kbps)));
            assert_eq!(got[0].len(), n);
            let g = gain(&want, &got[0]);
            assert!((g - 1.0).abs() < 0.01, "{kbps} kb/s: gain {g:.4}");
        }
    }

    #[test]
    fn out_of_range_samples_are_clamped() {
        let n = RATE as usize;
        let mut loud = sine(n, 440.0, 4.0);
        loud[100] = f32::NAN;
        loud[200] = f32::INFINITY;
        let (_, decoded) = decode(encode(&[loud], &settings(1, 128)));
        assert_eq!(decoded[0].len(), n);
        let peak = decoded[0].iter().fold(0f32, |a, x| a.max(x.abs()));
        assert!(peak <= 1.3, "peak {peak}");
    }

    #[test]
    fn bytes_follow_an_existing_prefix() {
        let mut cursor = Cursor::new(b"prefix".to_vec());
        cursor.seek(SeekFrom::End(0)).unwrap();
        let mut w = Mp3Writer::new("test", cursor, &settings(1, 64)).unwrap();
        w.write(&[&sine(10_000, 440.0, 0.5)]).unwrap();
        let (cursor, bytes) = w.finish().unwrap();
        let data = cursor.into_inner();
        assert_eq!(&data[..6], b"prefix");
        assert_eq!(bytes as usize, data.len() - 6);
        assert_eq!(&info_frame(&data[6..]).tag, b"Info");
    }

    #[test]
    fn bad_settings_are_rejected() {
        let sink = || Cursor::new(Vec::new());
        for s in [
            settings(1, 100),
            settings(2, 56),
            settings(2, 16), // too low for MPEG-1
            settings(1, 48), // frames too small for the Info tag
            settings(0, 128),
            settings(3, 128),
            Mp3Format {
                sample_rate: 44_000,
                ..settings(2, 128)
            },
            Mp3Format {
                sample_rate: 22_050,
                ..settings(2, 192) // too high for MPEG-2
            },
            {
                let mut s = settings(2, 128);
                s.options.quality = 10;
                s
            },
        ] {
            let err = Mp3Writer::new("bad (bad.mp3)", sink(), &s).unwrap_err();
            assert!(matches!(err, Error::Settings(_)), "{s:?}: {err}");
            assert!(err.to_string().contains("bad (bad.mp3)"), "{err}");
        }
        assert!(Mp3Writer::new("ok", sink(), &settings(2, 128)).is_ok());
    }

    /// The settings check accepts exactly what LAME can give an Info tag.
    #[test]
    fn every_accepted_setting_gets_an_info_tag() {
        let kbps = [
            8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 192, 224, 256, 320,
        ];
        let rates: Vec<u32> = MPEG1_RATES.into_iter().chain(mpeg2_rates()).collect();
        assert_eq!(rates.len(), 9);
        let rates = rates.iter();
        let mut accepted = 0;
        for (&rate, &kbps, channels) in rates
            .flat_map(|r| kbps.iter().map(move |k| (r, k)))
            .flat_map(|(r, k)| [1u8, 2].map(move |c| (r, k, c)))
        {
            let s = Mp3Format {
                options: Mp3Options {
                    bitrate_kbps: kbps,
                    quality: 7,
                },
                channels,
                sample_rate: rate,
            };
            let Ok(mut w) = Mp3Writer::new("t", Cursor::new(Vec::new()), &s) else {
                continue;
            };
            let x = vec![0.1f32; 3000];
            let planes: Vec<&[f32]> = (0..channels).map(|_| x.as_slice()).collect();
            w.write(&planes).unwrap();
            let (c, _) = w.finish().unwrap_or_else(|e| panic!("{s:?}: {e}"));
            assert_eq!(&info_frame(&c.into_inner()).tag, b"Info", "{s:?}");
            accepted += 1;
        }
        assert!(accepted > 150, "{accepted}");
    }

    #[test]
    fn wrong_channel_count_in_write_errors() {
        let mut w = Mp3Writer::new("stereo", Cursor::new(Vec::new()), &settings(2, 128)).unwrap();
        let a = [0.0f32; 10];
        let b = [0.0f32; 9];
        let err = w.write(&[&a]).unwrap_err();
        assert_eq!(err.stage_of(), Some(Stage::Encode));
        let err = w.write(&[&a, &b]).unwrap_err();
        assert_eq!(err.stage_of(), Some(Stage::Encode));
        w.write(&[&a, &a]).unwrap();
    }
}
