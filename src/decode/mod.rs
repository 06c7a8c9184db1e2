//! Streaming decoding of whatever the browser (or a text-to-speech service)
//! produced, to planar `f32`.
//!
//! The container is recognised from the bytes alone (symphonia's probe with an
//! empty hint; names and extensions lie: every upload is labelled `audio/mp3`).
//! Supported: WebM/Matroska, Ogg, MP4 (plain and fragmented), MP3, WAV, FLAC,
//! ADTS; codecs Opus (decoded with `opus-rs`), AAC-LC, MP3, Vorbis, FLAC, PCM.
//! Every channel is passed through; the rate is the file's own (8–96 kHz and
//! beyond; Opus always decodes at 48 kHz).
//!
//! Decisions worth knowing:
//!
//! * **End of stream on `UnexpectedEof`.** symphonia 0.6.1 ends Chrome's live
//!   WebM (clusters of unknown size, no duration) with
//!   `Err(IoError(UnexpectedEof))` instead of `Ok(None)`. A truncated upload
//!   ends the same way and the two cannot be told apart, so an unexpected end
//!   of the bytes while reading packets is treated as the end of the stream:
//!   a truncated recording yields what was decoded up to the cut. (A cut in
//!   the headers still fails at [`Decoder::open`].)
//! * **Opus pre-skip.** The OpusHead (the track's extra data in WebM, Ogg and
//!   MP4) gives the pre-skip, the encoder's look-ahead in 48 kHz samples
//!   (bytes 10–11, little-endian; usually 312). That many samples are dropped
//!   from the start. The Matroska `CodecDelay` is the same number and is not
//!   applied a second time. Ogg's end-granule trimming (the packet's
//!   `trim_end`) is honoured, so Ogg/Opus decodes to exactly the encoded
//!   length; WebM from Chrome carries no end trimming, so it decodes to the
//!   packet total minus the pre-skip. The OpusHead output gain is applied.
//! * **AAC priming is not trimmed.** symphonia 0.6.1 ignores MP4 edit lists
//!   and does not expose them (the `elst` atom is private to its demuxer), and
//!   fragmented MP4 from Safari usually has none. So the encoder's priming
//!   (1024 samples from FFmpeg, 2112 from Apple: 21–48 ms of near-silence)
//!   stays at the start. It is harmless here: the silence stage trims the lead
//!   in anyway, and re-parsing the MP4 box tree ourselves to find `elst` was
//!   judged not worth the risk.
//! * **MP3 gapless.** Decoding runs with symphonia's gapless mode on, which
//!   honours the LAME/Xing header's delay and padding.
//! * **Corrupt packets.** A packet the codec rejects is skipped (a short gap),
//!   but [`MAX_CONSECUTIVE_BAD_PACKETS`] failures in a row end decoding with an
//!   error. A container-level error is fatal.
//! * **Samples** are clamped to [-1, 1]; NaN and infinities (possible only in
//!   float WAV) become 0, and are counted ([`DecodeStats`]): more than
//!   [`MAX_NON_FINITE_FRACTION`] of them refuses the file, since it is then
//!   damaged rather than holding a few dropouts.
//! * **Before the probe** ([`prelude`]): ID3v2 tags of any size are skipped,
//!   a streamed WAV's zero sizes read as "to the end", an MP3 without a
//!   Xing/Info/VBRI header is read front to back so that symphonia's
//!   estimate of its length (from the first frames' bitrate) can neither
//!   end the decode nor trip the duration limit, and a WAV's format tag is
//!   read to name a codec that is not decoded.
//! * **Only real counts feed the early duration check**: the container's
//!   frame count is trusted from Ogg (end granule), FLAC (STREAMINFO), MP4
//!   (track duration) and MP3 with a Xing/VBRI header; a WAV's data size is
//!   often a placeholder and ADTS's count is an estimate.
//! * **Several recordings in one file** are decoded in order as one: Ogg
//!   links (chained streams, which symphonia announces with
//!   `ResetRequired`) and WebM files appended to each other ([`links`]).
//!   Each link gets a fresh codec (its own Opus pre-skip is dropped); they
//!   must share a rate and channel count, otherwise the file is refused with
//!   the fix.
//! * **No panics.** The decoders are third-party code fed untrusted bytes; a
//!   panic inside symphonia or opus-rs is caught and reported as a decode error
//!   (the default panic hook still prints it to stderr).

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

use opus_rs::multistream::{ChannelMappingTable, MultistreamDecoder};
use opus_rs::OpusDecoder;
use symphonia::core::codecs::audio::well_known as codec_ids;
use symphonia::core::codecs::audio::well_known::CODEC_ID_OPUS;
use symphonia::core::codecs::audio::AudioCodecId;
use symphonia::core::codecs::audio::CODEC_ID_NULL_AUDIO;
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::packet::Packet;

use std::sync::atomic::{AtomicU64, Ordering};

use crate::audio::units::frames_to_secs;
use crate::audio::{Block, Source};
use crate::error::{Error, Result, Stage};
use crate::settings::Limits;

mod links;
mod prelude;

use links::{LinkSource, Links};
use prelude::{Facts, Prelude};

/// After this many packets in a row fail to decode, decoding stops with an
/// error instead of skipping more.
pub const MAX_CONSECUTIVE_BAD_PACKETS: u32 = 5;

/// Longest Opus packet: 120 ms at 48 kHz.
const OPUS_MAX_FRAMES: usize = 5760;

/// How many leading bytes explain a failed format detection.
const HEAD_LEN: usize = 64;

/// A file with more non-finite samples (NaN, ±infinity) than this fraction
/// of all its samples is refused: one percent is a dropout every few
/// milliseconds, a damaged file rather than a few bad samples.
pub const MAX_NON_FINITE_FRACTION: f64 = 0.01;

/// What a decoder met on the way, readable while it runs (the decoder itself
/// usually sits on another thread).
#[derive(Debug, Default)]
pub struct DecodeStats {
    samples: AtomicU64,
    non_finite: AtomicU64,
    links: AtomicU64,
}

impl DecodeStats {
    /// Samples decoded (frames × channels).
    pub fn samples(&self) -> u64 {
        self.samples.load(Ordering::Relaxed)
    }

    /// NaN and infinite samples found (and replaced by 0).
    pub fn non_finite(&self) -> u64 {
        self.non_finite.load(Ordering::Relaxed)
    }

    /// Recordings found one after the other in the file (chained Ogg
    /// streams, appended WebM files); 1 for an ordinary file.
    pub fn links(&self) -> u64 {
        self.links.load(Ordering::Relaxed)
    }
}

/// A streaming decoder: one [`Block`] per compressed packet.
pub struct Decoder {
    subject: String,
    format: Box<dyn FormatReader>,
    track_id: u32,
    codec: Codec,
    rate: u32,
    channels: usize,
    codec_name: String,
    container_name: String,
    bad_in_row: u32,
    /// Frames decoded while opening (to learn the rate and channel count),
    /// handed out by the first `read`.
    pending: Option<Block>,
    finished: bool,
    /// Frames the container says the track holds, when it says so.
    declared_frames: Option<u64>,
    /// Frames handed out so far.
    frames_out: u64,
    /// The duration limit being enforced: (most frames, the limit's
    /// description for the error).
    max_frames: Option<(u64, String)>,
    /// `declared_frames` is a real count, not a placeholder or an estimate.
    declared_exact: bool,
    /// The links of a Matroska/WebM file (`None` for other containers).
    links: Option<Links>,
    stats: Arc<DecodeStats>,
}

enum Codec {
    Symphonia(Box<dyn AudioDecoder>),
    Opus(Box<OpusState>),
}

struct OpusState {
    decoder: OpusKind,
    channels: usize,
    /// Pre-skip samples still to drop.
    skip: usize,
    /// Linear output gain from the OpusHead (1.0 when none).
    gain: f32,
    interleaved: Vec<f32>,
}

enum OpusKind {
    Single(Box<OpusDecoder>),
    Multi(Box<MultistreamDecoder>),
}

/// Outcome of decoding one packet.
enum Decoded {
    /// Frames were written to the block (possibly zero after trimming).
    Frames,
    /// The codec rejected the packet; the message says why.
    Bad(String),
}

impl Decoder {
    /// Opens `source`, recognises its container and codec from the bytes and
    /// prepares to decode its default audio track.
    ///
    /// `subject` is a human name used in every error (e.g. "caller recording
    /// (call.webm)").
    pub fn open(subject: &str, source: Box<dyn MediaSource>) -> Result<Decoder> {
        let (prelude, facts) = Prelude::open(source).map_err(|e| Error::io(subject, "read", e))?;
        let (links, first) = if links::is_ebml(&facts.head) {
            let (links, first) = Links::new(Box::new(prelude));
            (Some(links), Box::new(first) as Box<dyn MediaSource>)
        } else {
            (None, Box::new(prelude) as Box<dyn MediaSource>)
        };
        let format = probe(subject, first, &facts)?;
        let mut dec = Self::from_format(subject, format, links)?;
        dec.declared_exact &= !facts.mp3_without_header;
        Ok(dec)
    }

    /// Opens the file at `path` (see [`Decoder::open`]).
    pub fn open_path(subject: &str, path: &Path) -> Result<Decoder> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(subject, "open", e))?;
        Self::open(subject, Box::new(file))
    }

    /// Decodes from bytes in memory (see [`Decoder::open`]).
    pub fn open_bytes(subject: &str, bytes: Vec<u8>) -> Result<Decoder> {
        Self::open(subject, Box::new(io::Cursor::new(bytes)))
    }

    /// Short name of the codec: "opus", "aac", "mp3", "vorbis", "flac",
    /// "pcm_s16le", ...
    pub fn codec_name(&self) -> &str {
        &self.codec_name
    }

    /// Short name of the container: "matroska" (also WebM), "ogg", "isomp4",
    /// "mp3", "wave", "flac", ...
    pub fn container_name(&self) -> &str {
        &self.container_name
    }

    fn from_format(
        subject: &str,
        format: Box<dyn FormatReader>,
        links: Option<Links>,
    ) -> Result<Decoder> {
        let container_name = format.format_info().short_name.to_string();
        let (track_id, params) = pick_audio_track(format.as_ref())
            .map(|(id, p)| (id, p.clone()))
            .map_err(|msg| Error::stage(subject, Stage::Detect, msg))?;
        let declared_frames = format
            .tracks()
            .iter()
            .find(|t| t.id == track_id)
            .and_then(|t| t.num_frames);
        let (codec, codec_name) = make_codec(subject, &container_name, &params)?;
        let declared_exact = !matches!(container_name.as_str(), "wave" | "aac");

        let mut dec = Decoder {
            subject: subject.to_string(),
            format,
            track_id,
            codec,
            rate: params.sample_rate.unwrap_or(0),
            channels: params.channels.as_ref().map_or(0, |c| c.count()),
            codec_name,
            container_name,
            bad_in_row: 0,
            pending: None,
            finished: false,
            declared_frames,
            frames_out: 0,
            max_frames: None,
            declared_exact,
            links,
            stats: Arc::new(DecodeStats::default()),
        };
        dec.stats.links.store(1, Ordering::Relaxed);
        if let Codec::Opus(state) = &dec.codec {
            dec.rate = 48_000;
            dec.channels = state.channels;
        }

        // Decode up to the first frames, so that the rate and channel count
        // reported are those of the decoded audio, not of the headers.
        let mut first = Block::default();
        let (rate, channels) = dec.next_frames(&mut first)?;
        if first.is_empty() {
            if dec.rate == 0 || dec.channels == 0 {
                return Err(dec.err(
                    Stage::Decode,
                    "the audio track holds no decodable audio; upload a recording with sound",
                ));
            }
        } else {
            dec.rate = rate;
            dec.channels = channels;
            dec.pending = Some(first);
        }
        // A header can say anything; a rate of 0 would divide by zero later.
        if dec.rate == 0 {
            return Err(dec.err(
                Stage::Detect,
                "the header gives a sample rate of 0 Hz; the file is damaged: upload it again",
            ));
        }
        Ok(dec)
    }

    /// Checks the channel count and sample rate against `limits`, and the
    /// duration the container declares (if it declares one, and is not WAV,
    /// whose size field is often a placeholder) against `max_duration_s`;
    /// from then on [`Source::read`] fails as soon as more than
    /// `max_duration_s` of audio has been decoded. `setting` names the
    /// duration limit for the message (e.g. `Settings.limits.max_duration_s
    /// / --max-duration`).
    pub fn enforce(&mut self, limits: &Limits, max_duration_s: f64, setting: &str) -> Result<()> {
        if self.channels > limits.max_channels {
            return Err(self.err(
                Stage::Decode,
                format!(
                    "{} channels; the limit is {} (Settings.limits.max_channels / \
                     --max-channels): export it as mono or stereo",
                    self.channels, limits.max_channels
                ),
            ));
        }
        if !(limits.min_sample_rate..=limits.max_sample_rate).contains(&self.rate) {
            return Err(self.err(
                Stage::Decode,
                format!(
                    "sample rate {} Hz is outside the accepted {}..{} Hz \
                     (Settings.limits.min_sample_rate/max_sample_rate / \
                     --min-sample-rate/--max-sample-rate): export it at 44.1 or 48 kHz",
                    self.rate, limits.min_sample_rate, limits.max_sample_rate
                ),
            ));
        }
        let rate = f64::from(self.rate);
        let limit = format!(
            "the limit is {} ({setting})",
            human_duration(max_duration_s)
        );
        if let Some(n) = self.declared_frames.filter(|_| self.declared_exact) {
            if n as f64 / rate > max_duration_s {
                return Err(self.err(
                    Stage::Decode,
                    format!(
                        "{} long; {limit}: shorten the recording or raise the limit",
                        human_duration(n as f64 / rate)
                    ),
                ));
            }
        }
        let limit = format!(
            "more than {} of audio; {limit}",
            human_duration(max_duration_s)
        );
        self.max_frames = Some(((max_duration_s * rate).ceil() as u64, limit));
        Ok(())
    }

    /// The track's length in seconds when the container gives a real count
    /// (not a placeholder or an estimate; see the module doc), before any
    /// trimming.
    pub fn declared_duration_s(&self) -> Option<f64> {
        self.declared_frames
            .filter(|_| self.declared_exact && self.rate > 0)
            .map(|n| frames_to_secs(n, self.rate))
    }

    /// What this decoder has met so far (NaN samples, links), as a handle
    /// that stays readable once the decoder has moved to another thread.
    pub fn stats(&self) -> Arc<DecodeStats> {
        Arc::clone(&self.stats)
    }

    /// At the end: refuses a file with more non-finite samples than
    /// [`MAX_NON_FINITE_FRACTION`] of all.
    fn check_non_finite(&self) -> Result<()> {
        let (bad, all) = (self.stats.non_finite(), self.stats.samples());
        if bad as f64 > MAX_NON_FINITE_FRACTION * all as f64 {
            return Err(self.err(
                Stage::Decode,
                format!(
                    "{bad} of its {all} samples are not numbers (NaN or infinite), more than {} %: \
                     the file is damaged; export it again (as 16- or 24-bit PCM if the float \
                     export is at fault)",
                    MAX_NON_FINITE_FRACTION * 100.0
                ),
            ));
        }
        Ok(())
    }

    /// Frames the container declares for the track (before any trimming),
    /// when it declares them.
    pub fn declared_frames(&self) -> Option<u64> {
        self.declared_frames
    }

    /// Frames the container says to drop at the start (encoder and decoder
    /// delay) and at the end (padding) of the track, when it says so: an MP3
    /// carries them in its LAME tag.
    pub fn declared_trim(&self) -> (Option<u32>, Option<u32>) {
        self.format
            .tracks()
            .iter()
            .find(|t| t.id == self.track_id)
            .map_or((None, None), |t| (t.delay, t.padding))
    }

    fn err(&self, stage: Stage, msg: impl Into<String>) -> Error {
        Error::stage(self.subject.clone(), stage, msg)
    }

    /// Decodes packets until one yields frames (returning the rate and
    /// channel count of that buffer) or the stream ends (block left empty).
    fn next_frames(&mut self, block: &mut Block) -> Result<(u32, usize)> {
        block.clear();
        while !self.finished {
            let packet = match guard(|| self.format.next_packet()) {
                Ok(Ok(Some(p))) => p,
                // The end of the link; see the module doc for the EOF error
                // (Chrome's WebM and truncated uploads).
                Ok(Ok(None)) => {
                    if self.next_link()? {
                        continue;
                    }
                    self.finished = true;
                    break;
                }
                Ok(Err(SymError::IoError(e))) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    if self.next_link()? {
                        continue;
                    }
                    self.finished = true;
                    break;
                }
                // A chained Ogg stream: the reader has started the next link.
                Ok(Err(SymError::ResetRequired)) => {
                    self.switch_track()?;
                    continue;
                }
                Ok(Err(e)) => {
                    self.finished = true;
                    return Err(self.err(
                        Stage::Read,
                        format!("container error: {e}; the file is damaged: upload it again"),
                    ));
                }
                Err(panic) => {
                    self.finished = true;
                    return Err(self.err(
                        Stage::Read,
                        format!("the container reader crashed on this input ({panic})"),
                    ));
                }
            };
            if packet.track_id != self.track_id {
                continue;
            }
            match self.decode_packet(&packet, block) {
                Ok(Decoded::Frames) => {
                    self.bad_in_row = 0;
                    if !block.is_empty() {
                        let rate = match self.codec {
                            Codec::Opus(_) => 48_000,
                            Codec::Symphonia(ref d) => d.last_decoded().spec().rate(),
                        };
                        return Ok((rate, block.channels()));
                    }
                }
                Ok(Decoded::Bad(why)) => {
                    self.bad_in_row += 1;
                    if self.bad_in_row >= MAX_CONSECUTIVE_BAD_PACKETS {
                        self.finished = true;
                        return Err(self.err(
                            Stage::Decode,
                            format!(
                                "{} consecutive {} packets failed to decode (last: {why}); \
                                 the recording is corrupt: upload or record it again",
                                self.bad_in_row, self.codec_name
                            ),
                        ));
                    }
                }
                Err(e) => {
                    self.finished = true;
                    return Err(e);
                }
            }
        }
        Ok((self.rate, self.channels))
    }

    /// At the end of a link of a Matroska/WebM file: opens the next one, if
    /// another EBML header follows; true when decoding goes on.
    fn next_link(&mut self) -> Result<bool> {
        let Some(source) = self.links.as_ref().and_then(Links::next) else {
            return Ok(false);
        };
        let n = self.stats.links() + 1;
        let source: LinkSource = source;
        self.format = probe(&self.subject, Box::new(source), &Facts::default()).map_err(|e| {
            let why = match e {
                Error::Stage { message, .. } => message,
                other => other.to_string(),
            };
            self.err(
                Stage::Detect,
                format!(
                    "recording {n} appended to this file cannot be read ({why}); upload the \
                     recording again, or only its first part"
                ),
            )
        })?;
        self.switch_track()?;
        Ok(true)
    }

    /// After the format reader moved on to another link: the audio track
    /// of that link, with a fresh codec (a new Opus pre-skip included).
    fn switch_track(&mut self) -> Result<()> {
        let n = self.stats.links() + 1;
        let (track_id, params) = pick_audio_track(self.format.as_ref())
            .map(|(id, p)| (id, p.clone()))
            .map_err(|msg| self.err(Stage::Detect, format!("recording {n} in this file: {msg}")))?;
        let (codec, _) = make_codec(&self.subject, &self.container_name, &params)?;
        self.track_id = track_id;
        self.codec = codec;
        self.bad_in_row = 0;
        self.stats.links.store(n, Ordering::Relaxed);
        Ok(())
    }

    /// Decodes one packet into `block` (replacing its contents).
    fn decode_packet(&mut self, packet: &Packet, block: &mut Block) -> Result<Decoded> {
        let outcome = match &mut self.codec {
            Codec::Opus(state) => guard(|| state.decode(packet, block)),
            Codec::Symphonia(decoder) => guard(|| match decoder.decode(packet) {
                Ok(buf) => {
                    let frames = buf.frames();
                    block.reset(buf.num_planes());
                    for chan in block.channels_mut() {
                        chan.resize(frames, 0.0);
                    }
                    buf.copy_to_slice_planar::<f32, _>(block.channels_mut());
                    Ok(Decoded::Frames)
                }
                Err(SymError::DecodeError(e)) => Ok(Decoded::Bad(e.to_string())),
                Err(SymError::IoError(e)) => Ok(Decoded::Bad(e.to_string())),
                Err(e) => Err(e.to_string()),
            }),
        };
        match outcome {
            Ok(Ok(Decoded::Frames)) => {
                let bad = sanitise(block);
                let samples = (block.frames() * block.channels()) as u64;
                self.stats.samples.fetch_add(samples, Ordering::Relaxed);
                self.stats.non_finite.fetch_add(bad, Ordering::Relaxed);
                Ok(Decoded::Frames)
            }
            Ok(Ok(bad)) => {
                block.clear();
                Ok(bad)
            }
            Ok(Err(msg)) => Err(self.err(Stage::Decode, msg)),
            Err(panic) => Err(self.err(
                Stage::Decode,
                format!(
                    "the {} decoder crashed on this input ({panic})",
                    self.codec_name
                ),
            )),
        }
    }
}

impl Source for Decoder {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn channels(&self) -> usize {
        self.channels
    }

    fn read(&mut self, block: &mut Block) -> Result<bool> {
        let more = self.read_unbounded(block)?;
        if !more {
            self.check_non_finite()?;
        }
        self.frames_out += block.frames() as u64;
        if let Some((max, limit)) = &self.max_frames {
            if self.frames_out > *max {
                self.finished = true;
                block.clear();
                return Err(self.err(
                    Stage::Decode,
                    format!("{limit}: shorten the recording or raise the limit"),
                ));
            }
        }
        Ok(more)
    }
}

impl Decoder {
    fn read_unbounded(&mut self, block: &mut Block) -> Result<bool> {
        if let Some(mut first) = self.pending.take() {
            std::mem::swap(block, &mut first);
            return Ok(true);
        }
        let (rate, channels) = self.next_frames(block)?;
        if block.is_empty() {
            block.reset(self.channels);
            return Ok(false);
        }
        if rate != self.rate || channels != self.channels {
            self.finished = true;
            block.clear();
            let links = self.stats.links();
            let msg = if links > 1 {
                format!(
                    "the file holds recordings one after the other, and recording {links} is \
                     {rate} Hz/{channels} channel(s) where the first is {} Hz/{}; podstitch \
                     joins them only when they match: export the file again as one recording, \
                     or upload only the first part",
                    self.rate, self.channels
                )
            } else {
                format!(
                    "the stream changes from {} Hz/{} channels to {rate} Hz/{channels} \
                     channels part-way; export it again as one recording",
                    self.rate, self.channels
                )
            };
            return Err(self.err(Stage::Decode, msg));
        }
        Ok(true)
    }
}

/// Decodes a whole input into memory: (sample rate, all frames). For short
/// inputs such as bumpers, and for tests.
#[cfg(any(test, feature = "internals"))]
pub fn decode_all(subject: &str, source: Box<dyn MediaSource>) -> Result<(u32, Block)> {
    let mut dec = Decoder::open(subject, source)?;
    let mut all = Block::new(dec.channels(), 0);
    let mut block = Block::default();
    while dec.read(&mut block)? {
        for (dst, src) in all.channels_mut().iter_mut().zip(block.planes()) {
            dst.extend_from_slice(src);
        }
    }
    Ok((dec.sample_rate(), all))
}

impl OpusState {
    /// Sets up from an OpusHead (RFC 7845 §5.1). `big_endian`: the MP4
    /// `dOps` layout (same fields, big-endian), which symphonia hands over
    /// behind an "OpusHead" magic.
    fn new(head: &[u8], big_endian: bool) -> Result<OpusState, String> {
        let bad = |what: &str| format!("invalid OpusHead: {what}");
        if head.len() < 19 || !head.starts_with(b"OpusHead") {
            return Err(bad("too short or no magic"));
        }
        let byte = |i: usize| head.get(i).copied().unwrap_or(0);
        let u16_at = |i: usize| {
            let pair = [byte(i), byte(i + 1)];
            if big_endian {
                u16::from_be_bytes(pair)
            } else {
                u16::from_le_bytes(pair)
            }
        };
        if byte(8) & 0xF0 != 0 {
            return Err(bad("unsupported version"));
        }
        let channels = usize::from(byte(9));
        let pre_skip = usize::from(u16_at(10));
        let gain_q8 = u16_at(16) as i16;
        let family = byte(18);
        let gain = 10f32.powf(f32::from(gain_q8) / (20.0 * 256.0));

        let decoder = match family {
            0 => {
                if !(1..=2).contains(&channels) {
                    return Err(bad("mapping family 0 needs 1 or 2 channels"));
                }
                OpusKind::Single(Box::new(OpusDecoder::new(48_000, channels).map_err(bad)?))
            }
            1 => {
                let table =
                    ChannelMappingTable::parse(family, byte(9), head.get(19..).unwrap_or(&[]))
                        .ok_or_else(|| bad("truncated channel mapping table"))?;
                let streams = usize::from(table.stream_count);
                let coupled = usize::from(table.coupled_count);
                if channels == 0 || streams == 0 || coupled > streams {
                    return Err(bad("inconsistent stream counts"));
                }
                let decoded = streams + coupled;
                if table
                    .mapping
                    .iter()
                    .any(|&m| m != 255 && usize::from(m) >= decoded)
                {
                    return Err(bad("channel mapping points past the streams"));
                }
                OpusKind::Multi(Box::new(
                    MultistreamDecoder::new(48_000, table).map_err(bad)?,
                ))
            }
            other => return Err(format!("unsupported Opus channel mapping family {other}")),
        };
        Ok(OpusState {
            decoder,
            channels,
            skip: pre_skip,
            gain,
            interleaved: vec![0.0; OPUS_MAX_FRAMES * channels],
        })
    }

    fn decode(&mut self, packet: &Packet, block: &mut Block) -> Result<Decoded, String> {
        let result = match &mut self.decoder {
            OpusKind::Single(d) => d.decode(&packet.data, OPUS_MAX_FRAMES, &mut self.interleaved),
            OpusKind::Multi(d) => d.decode(&packet.data, OPUS_MAX_FRAMES, &mut self.interleaved),
        };
        let frames = match result {
            Ok(n) => n.min(OPUS_MAX_FRAMES),
            Err(why) => return Ok(Decoded::Bad(why.to_string())),
        };
        // Pre-skip from the start of the stream, end trimming (Ogg's final
        // granule position) from the end of this packet.
        let start = self.skip.min(frames);
        self.skip -= start;
        let trim_end = usize::try_from(packet.trim_end.get()).unwrap_or(usize::MAX);
        let end = frames.saturating_sub(trim_end).max(start);

        let chans = self.channels;
        block.reset(chans);
        let samples = self
            .interleaved
            .get(start * chans..end * chans)
            .unwrap_or(&[]);
        for (c, dst) in block.channels_mut().iter_mut().enumerate() {
            dst.extend(
                samples
                    .iter()
                    .skip(c)
                    .step_by(chans.max(1))
                    .map(|s| s * self.gain),
            );
        }
        Ok(Decoded::Frames)
    }
}

/// Runs symphonia's probe over `source` (what the [`Prelude`] left of the
/// input); a failure is explained from what the prelude saw.
fn probe(
    subject: &str,
    source: Box<dyn MediaSource>,
    facts: &Facts,
) -> Result<Box<dyn FormatReader>> {
    let mss = MediaSourceStream::new(source, MediaSourceStreamOptions::default());
    let probed = guard(|| {
        symphonia::default::get_probe().probe(
            &Hint::new(),
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
    });
    match probed {
        Ok(Ok(format)) => Ok(format),
        Ok(Err(err)) => Err(detect_error(subject, &err, facts)),
        Err(panic) => Err(Error::stage(
            subject,
            Stage::Detect,
            format!("the container reader crashed on this input ({panic})"),
        )),
    }
}

/// The decoder for a track: opus-rs for Opus, symphonia for the rest.
fn make_codec(
    subject: &str,
    container_name: &str,
    params: &AudioCodecParameters,
) -> Result<(Codec, String)> {
    let detect_err = |msg: String| Error::stage(subject, Stage::Detect, msg);
    if params.codec == CODEC_ID_OPUS {
        let head = params.extra_data.as_deref().ok_or_else(|| {
            detect_err("the Opus track has no OpusHead (codec private data)".into())
        })?;
        let big_endian = container_name == "isomp4";
        let state = OpusState::new(head, big_endian).map_err(detect_err)?;
        return Ok((Codec::Opus(Box::new(state)), "opus".to_string()));
    }
    let opts = AudioDecoderOptions::default().gapless(true);
    let made = guard(|| symphonia::default::get_codecs().make_audio_decoder(params, &opts));
    match made {
        Ok(Ok(d)) => {
            let name = d.codec_info().short_name.to_string();
            Ok((Codec::Symphonia(d), name))
        }
        Ok(Err(e)) => Err(detect_err(format!(
            "unsupported audio codec {} in {container_name} ({e}); \
             export it as Opus, AAC-LC, MP3, Vorbis, FLAC or PCM",
            codec_label(params.codec)
        ))),
        Err(p) => Err(detect_err(format!("the codec crashed on this input ({p})"))),
    }
}

/// Finds the audio track to decode: the container's default audio track, or
/// else the first audio track with a known codec.
fn pick_audio_track(format: &dyn FormatReader) -> Result<(u32, &AudioCodecParameters), String> {
    fn usable(t: &symphonia::core::formats::Track) -> Option<(u32, &AudioCodecParameters)> {
        t.codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .filter(|p| p.codec != CODEC_ID_NULL_AUDIO)
            .map(|p| (t.id, p))
    }
    if let Some(found) = format.default_track(TrackType::Audio).and_then(usable) {
        return Ok(found);
    }
    if let Some(found) = format.tracks().iter().find_map(usable) {
        return Ok(found);
    }
    let audio_tracks = format
        .tracks()
        .iter()
        .filter(|t| t.codec_params.as_ref().is_some_and(|p| p.is_audio()))
        .count();
    Err(if audio_tracks > 0 {
        "the audio track's codec is not supported; export it as Opus, AAC-LC, MP3, Vorbis, \
         FLAC or PCM"
            .to_string()
    } else {
        format!(
            "no audio track in this {} file ({} other track(s)); upload a recording with sound",
            format.format_info().short_name,
            format.tracks().len()
        )
    })
}

/// A readable name for codecs a user may meet but podstitch does not decode.
fn codec_label(id: AudioCodecId) -> String {
    use codec_ids::*;
    let known = [
        (CODEC_ID_AAC, "AAC"),
        (CODEC_ID_AC3, "AC-3"),
        (CODEC_ID_EAC3, "E-AC-3"),
        (CODEC_ID_AC4, "AC-4"),
        (CODEC_ID_ALAC, "ALAC"),
        (CODEC_ID_DCA, "DTS"),
        (CODEC_ID_MP1, "MPEG layer I"),
        (CODEC_ID_MP2, "MPEG layer II"),
        (CODEC_ID_SPEEX, "Speex"),
        (CODEC_ID_WMA, "WMA"),
        (CODEC_ID_WAVPACK, "WavPack"),
        (CODEC_ID_TRUEHD, "TrueHD"),
        (CODEC_ID_ADPCM_MS, "MS ADPCM"),
        (CODEC_ID_ADPCM_IMA_WAV, "IMA ADPCM"),
    ];
    known
        .iter()
        .find(|(k, _)| *k == id)
        .map_or_else(|| format!("(id {id})"), |(_, n)| (*n).to_string())
}

/// Explains a failed probe in one line, from what the prelude saw.
fn detect_error(subject: &str, err: &SymError, facts: &Facts) -> Error {
    let head = facts.head.get(..HEAD_LEN).unwrap_or(&facts.head);
    let msg = if head.is_empty() && facts.id3_bytes > 0 {
        format!(
            "the file holds only an ID3 tag ({} bytes) and no audio after it: the upload was cut \
             short or the export failed; upload the recording again",
            facts.id3_bytes
        )
    } else if head.is_empty() {
        "the input is empty (0 bytes): the upload failed or never happened; upload the recording again"
            .to_string()
    } else if let Some((name, fix)) = facts.wav_format.and_then(prelude::wav_codec) {
        format!(
            "unsupported audio codec {name} in a WAV (RIFF/WAVE) file (format tag 0x{:04X}); {fix}",
            facts.wav_format.unwrap_or(0)
        )
    } else {
        let text = head.iter().position(|b| !b.is_ascii_whitespace());
        match text.and_then(|i| head.get(i)) {
            Some(b'<') => "not audio: the bytes are an HTML/XML document (an error page?); \
                           check that the URL or path points at the recording"
                .into(),
            Some(b'{') | Some(b'[') => "not audio: the bytes are a JSON document (an API error?); \
                                        check that the URL or path points at the recording"
                .into(),
            _ => match err {
                SymError::Unsupported(_) => {
                    "not a recognised audio file (no known container signature); \
                     upload WebM, Ogg, MP4, MP3, WAV or FLAC"
                        .into()
                }
                SymError::IoError(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    "not a recognised audio file (it ends before a complete header): \
                     the upload was cut short; upload it again"
                        .into()
                }
                other => format!(
                    "not a readable audio file ({other}); upload WebM, Ogg, MP4, MP3, WAV or FLAC"
                ),
            },
        }
    };
    Error::stage(subject, Stage::Detect, msg)
}

/// A duration for messages: "3 h", "2.5 h", "12 min", "7.4 s".
pub fn human_duration(s: f64) -> String {
    let (v, unit) = if s >= 3600.0 {
        (s / 3600.0, "h")
    } else if s >= 60.0 {
        (s / 60.0, "min")
    } else {
        (s, "s")
    };
    let text = format!("{v:.1}");
    format!("{} {unit}", text.strip_suffix(".0").unwrap_or(&text))
}

/// Clamps to [-1, 1] and zeroes NaN and infinities; how many it zeroed.
fn sanitise(block: &mut Block) -> u64 {
    let mut bad = 0;
    for chan in block.channels_mut() {
        for s in chan.iter_mut() {
            *s = if s.is_finite() {
                s.clamp(-1.0, 1.0)
            } else {
                bad += 1;
                0.0
            };
        }
    }
    bad
}

/// Runs `f`, turning a panic into an `Err` with the panic message.
fn guard<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_string())
    })
}

#[cfg(test)]
mod tests {
    //! Reference numbers come from `fixtures/expected.txt`, written by
    //! `fixtures/make-fixtures.sh` from FFmpeg's decode of the same files.
    use super::*;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name)
    }

    fn fixture_bytes(name: &str) -> Vec<u8> {
        std::fs::read(fixture(name)).expect("fixture present")
    }

    fn decode_file(name: &str) -> (Decoder, Block) {
        let mut dec = Decoder::open_path(name, &fixture(name)).expect("opens");
        let mut all = Block::new(dec.channels(), 0);
        let mut block = Block::default();
        while dec.read(&mut block).expect("decodes") {
            assert!(!block.is_empty(), "read returned true with an empty block");
            assert_eq!(block.channels(), dec.channels());
            for (dst, src) in all.channels_mut().iter_mut().zip(block.planes()) {
                dst.extend_from_slice(src);
            }
        }
        (dec, all)
    }

    /// (file, container, codec, rate, channels, exact frames)
    ///
    /// The frame counts are exact, not approximate:
    /// * Opus: WebM = packets × 960 − pre-skip 312 (400 × 960 − 312; Chrome-
    ///   style WebM has no end trimming); Ogg = FFmpeg's count (final granule
    ///   − pre-skip).
    /// * AAC: packets × 1024 (345 and 376 packets): the priming is not
    ///   trimmed (FFmpeg trims 1024 from `caller.m4a` via the edit list:
    ///   352256 + 1024), and the end padding neither.
    /// * MP3: FFmpeg's gapless count, equal to the 22.05 kHz WAV LAME encoded.
    /// * PCM, FLAC, Vorbis: FFmpeg's count.
    const EXPECTED: &[(&str, &str, &str, u32, usize, usize)] = &[
        (
            "caller.webm",
            "matroska",
            "opus",
            48_000,
            1,
            400 * 960 - 312,
        ),
        ("response.ogg", "ogg", "opus", 48_000, 1, 353_748),
        ("caller.m4a", "isomp4", "aac", 44_100, 1, 345 * 1024),
        ("caller-frag.mp4", "isomp4", "aac", 48_000, 1, 376 * 1024),
        ("response.mp3", "mp3", "mp3", 22_050, 1, 162_503),
        ("speech-s16.wav", "wave", "pcm_s16le", 16_000, 1, 47_840),
        ("speech-s24.wav", "wave", "pcm_s24le", 16_000, 1, 47_840),
        ("speech-f32.wav", "wave", "pcm_f32le", 16_000, 1, 47_840),
        ("speech-8k.wav", "wave", "pcm_s16le", 8_000, 1, 58_958),
        ("response.flac", "flac", "flac", 96_000, 1, 707_496),
        ("caller.ogg", "ogg", "vorbis", 44_100, 2, 351_918),
    ];

    #[test]
    fn every_fixture_decodes_with_exact_length() {
        for &(name, container, codec, rate, channels, frames) in EXPECTED {
            let (dec, all) = decode_file(name);
            assert_eq!(dec.container_name(), container, "{name}");
            assert_eq!(dec.codec_name(), codec, "{name}");
            assert_eq!(dec.sample_rate(), rate, "{name}");
            assert_eq!(dec.channels(), channels, "{name}");
            assert_eq!(all.channels(), channels, "{name}");
            assert_eq!(all.frames(), frames, "{name}");
            let peak = all
                .planes()
                .iter()
                .flat_map(|c| c.iter())
                .fold(0f32, |m, s| m.max(s.abs()));
            // Masters are normalised to -3 dBFS peak (0.708); lossy codecs overshoot a little.
            assert!((0.5..=1.0).contains(&peak), "{name}: peak {peak}");
        }
    }

    #[test]
    fn open_bytes_and_decode_all_match_open_path() {
        let (rate, all) = decode_all(
            "bytes",
            Box::new(io::Cursor::new(fixture_bytes("response.ogg"))),
        )
        .expect("decodes");
        assert_eq!((rate, all.channels(), all.frames()), (48_000, 1, 353_748));
        let dec = Decoder::open_bytes("bytes", fixture_bytes("caller.m4a")).expect("opens");
        assert_eq!((dec.sample_rate(), dec.channels()), (44_100, 1));
    }

    #[test]
    fn one_block_per_packet() {
        // Opus packets are 20 ms (960 frames); the first loses the 312-frame pre-skip.
        let mut dec = Decoder::open_path("caller", &fixture("caller.webm")).expect("opens");
        let mut block = Block::default();
        let mut sizes = Vec::new();
        while dec.read(&mut block).expect("decodes") {
            sizes.push(block.frames());
        }
        assert_eq!(sizes.len(), 400);
        assert_eq!(sizes.first(), Some(&(960 - 312)));
        assert!(sizes.iter().skip(1).all(|&n| n == 960));
        // After the end, read keeps returning false with an empty block.
        assert!(!dec.read(&mut block).expect("still fine"));
        assert!(block.is_empty());
    }

    /// Signal-to-noise ratio (dB) of `ours` against a 16-bit reference WAV.
    fn snr_against(reference: &str, ours: &[f32], offset: usize) -> f64 {
        let (_, r) = decode_all(
            reference,
            Box::new(std::fs::File::open(fixture(reference)).expect("ref")),
        )
        .expect("reference decodes");
        let r = r.channel(0);
        let o = &ours[offset..offset + r.len()];
        let signal: f64 = r.iter().map(|&x| f64::from(x).powi(2)).sum();
        let noise: f64 = r
            .iter()
            .zip(o)
            .map(|(&a, &b)| f64::from(a - b).powi(2))
            .sum();
        10.0 * (signal / noise.max(1e-20)).log10()
    }

    /// The decoded samples match libopus / FFmpeg's mp3 decoder sample for
    /// sample at the same position: this checks the codec output *and* that
    /// exactly the pre-skip (Opus) or LAME delay (MP3) was trimmed. A shift
    /// of even a few samples drops the SNR far below the bound. The bound
    /// (30 dB) leaves room for opus-rs vs libopus float differences and the
    /// 16-bit references; measured values are printed with `--nocapture`.
    #[test]
    fn matches_reference_decoders_sample_for_sample() {
        for (name, reference, offset) in [
            ("caller.webm", "ref-caller-webm.wav", 48_000),
            ("response.ogg", "ref-response-ogg.wav", 48_000),
            ("response.mp3", "ref-response-mp3.wav", 22_050),
        ] {
            let (_, all) = decode_file(name);
            let snr = snr_against(reference, all.channel(0), offset);
            println!("{name}: SNR vs {reference} = {snr:.1} dB");
            assert!(snr > 30.0, "{name}: SNR {snr:.1} dB against {reference}");
            // A one-packet-ish misalignment must fail the same check.
            let shifted = snr_against(reference, all.channel(0), offset + 312);
            assert!(shifted < 10.0, "{name}: shifted SNR {shifted:.1} dB");
        }
    }

    fn rms_db(x: &[f32]) -> f64 {
        let e: f64 = x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len().max(1) as f64;
        10.0 * e.max(1e-20).log10()
    }

    #[test]
    fn caller_has_noise_floor_and_long_pause() {
        // Pause from 3.0 s to 4.69 s (first sentence is 2.99 s, then 1.7 s).
        let (_, all) = decode_file("caller.webm");
        let pause = &all.channel(0)[3 * 48_000 + 2_400..4 * 48_000 + 28_800];
        let level = rms_db(pause);
        assert!(
            (-66.0..=-50.0).contains(&level),
            "pause level {level:.1} dBFS"
        );
        let speech = rms_db(&all.channel(0)[..3 * 48_000]);
        assert!(speech > -35.0, "speech level {speech:.1} dBFS");
    }

    #[test]
    fn stereo_channels_are_kept_apart() {
        // caller.ogg: right = left delayed 5 ms at -6 dB.
        let (_, all) = decode_file("caller.ogg");
        let diff = rms_db(all.channel(0)) - rms_db(all.channel(1));
        assert!(
            (5.0..=7.0).contains(&diff),
            "left-right level difference {diff:.2} dB"
        );
    }

    fn open_err(subject: &str, bytes: Vec<u8>) -> String {
        match Decoder::open_bytes(subject, bytes) {
            Ok(_) => panic!("{subject}: opened"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn empty_and_non_audio_inputs_are_clear_errors() {
        let msg = open_err("caller recording (x)", Vec::new());
        assert_eq!(
            msg,
            "caller recording (x): detect format: the input is empty (0 bytes): the upload \
             failed or never happened; upload the recording again"
        );

        let html = b"<!DOCTYPE html><html><body>403 Forbidden</body></html>".to_vec();
        let msg = open_err("caller recording (x)", html);
        assert!(
            msg.starts_with("caller recording (x): detect format: not audio"),
            "{msg}"
        );
        assert!(msg.contains("HTML"), "{msg}");

        let xml = b"\n<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code></Error>".to_vec();
        assert!(open_err("resp", xml).contains("HTML/XML"));

        let json = b"{\"error\":\"not found\"}".to_vec();
        assert!(open_err("resp", json).contains("JSON"));

        let text = b"hello, this is plain text and certainly not audio\n".repeat(50);
        let msg = open_err("response recording (y)", text);
        assert_eq!(
            msg,
            "response recording (y): detect format: not a recognised audio file \
             (no known container signature); upload WebM, Ogg, MP4, MP3, WAV or FLAC"
        );
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn random_bytes_fail_without_panic() {
        // xorshift: deterministic noise; may hit an MP3 sync word, in which
        // case the error comes from decoding, but it must be an error.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for len in [1usize, 3, 100, 4096, 200_000] {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 24) as u8
                })
                .collect();
            let result = decode_all("noise upload", Box::new(io::Cursor::new(bytes)));
            match result {
                Err(e) => assert!(e.to_string().starts_with("noise upload: "), "{e}"),
                Ok((_, b)) => panic!("random bytes ({len}) decoded to {} frames", b.frames()),
            }
        }
    }

    #[test]
    fn no_audio_track_is_an_error() {
        let msg = Decoder::open_path("video", &fixture("video-only.webm"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            msg,
            "video: detect format: no audio track in this matroska file (1 other track(s)); \
             upload a recording with sound"
        );
    }

    #[test]
    fn truncated_webm_yields_what_was_decoded() {
        let bytes = fixture_bytes("caller.webm");
        let cut = bytes[..bytes.len() * 6 / 10].to_vec();
        let (rate, all) =
            decode_all("truncated", Box::new(io::Cursor::new(cut))).expect("partial decode");
        assert_eq!(rate, 48_000);
        let full = 400 * 960 - 312;
        assert!(
            all.frames() > full / 2 && all.frames() < full * 7 / 10,
            "{} frames from 60% of the bytes",
            all.frames()
        );
    }

    /// Every prefix of every compressed fixture (cut every ~1.5 kB, and
    /// byte by byte through the headers) opens-and-decodes or fails with an
    /// error; nothing panics and a successful decode is never longer than
    /// the whole file's.
    #[test]
    fn truncation_anywhere_never_panics() {
        for &(name, .., frames) in EXPECTED.iter().filter(|e| !e.0.ends_with(".wav")) {
            let bytes = fixture_bytes(name);
            let cuts = (0..bytes.len().min(300)).chain((300..bytes.len()).step_by(1499));
            for cut in cuts {
                let prefix = bytes[..cut].to_vec();
                if let Ok((_, all)) = decode_all("cut", Box::new(io::Cursor::new(prefix))) {
                    assert!(all.frames() <= frames, "{name} cut at {cut}");
                }
            }
        }
    }

    #[test]
    fn corrupted_payload_never_panics() {
        let mut x: u32 = 12345;
        for &(name, ..) in EXPECTED {
            let clean = fixture_bytes(name);
            for round in 0..8 {
                let mut bytes = clean.clone();
                // Leave the first 2 kB (headers) alone in half the rounds.
                let start = if round % 2 == 0 {
                    2048.min(bytes.len())
                } else {
                    0
                };
                for _ in 0..(20 * (round + 1)) {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    let span = bytes.len() - start;
                    if span > 0 {
                        let i = start + (x as usize >> 4) % span;
                        bytes[i] ^= (x >> 8) as u8 | 1;
                    }
                }
                if let Ok(mut dec) = Decoder::open_bytes("corrupt", bytes) {
                    let mut block = Block::default();
                    while let Ok(true) = dec.read(&mut block) {
                        assert!(block
                            .planes()
                            .iter()
                            .all(|c| c.iter().all(|s| s.abs() <= 1.0)));
                    }
                }
            }
        }
    }

    /// Offsets of the Opus packets (SimpleBlock payloads) in a WebM whose
    /// clusters have unknown sizes, as `caller.webm`.
    fn webm_packet_offsets(b: &[u8]) -> Vec<usize> {
        fn vint(b: &[u8], at: usize, keep_marker: bool) -> (u64, usize) {
            let first = b[at];
            let len = first.leading_zeros() as usize + 1;
            let mut v = if keep_marker {
                u64::from(first)
            } else {
                u64::from(first) & (0xFF >> len)
            };
            for k in 1..len {
                v = (v << 8) | u64::from(b[at + k]);
            }
            (v, len)
        }
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < b.len() {
            let (id, idn) = vint(b, pos, true);
            let (size, szn) = vint(b, pos + idn, false);
            let data = pos + idn + szn;
            match id {
                0x1853_8067 | 0x1F43_B675 => pos = data, // Segment, Cluster: descend
                0xA3 => {
                    out.push(data + 4); // track number (1 byte), timecode (2), flags (1)
                    pos = data + size as usize;
                }
                _ => pos = data + size as usize,
            }
        }
        out
    }

    #[test]
    fn corrupt_packets_are_skipped_then_fail() {
        let clean = fixture_bytes("caller.webm");
        let packets = webm_packet_offsets(&clean);
        assert_eq!(packets.len(), 399); // + the last one, in a BlockGroup
                                        // An Opus packet with TOC code 3 and a frame count of 0 is invalid.
        let corrupt = |n: usize| {
            let mut b = clean.clone();
            for &at in &packets[100..100 + n] {
                b[at] = 0x0B; // config 1, mono, code 3
                b[at + 1] = 0x00; // 0 frames
            }
            b
        };
        let ok = MAX_CONSECUTIVE_BAD_PACKETS as usize - 1;
        let (_, all) =
            decode_all("skips", Box::new(io::Cursor::new(corrupt(ok)))).expect("skips a few");
        assert_eq!(all.frames(), 400 * 960 - 312 - ok * 960);

        let err = decode_all("caller", Box::new(io::Cursor::new(corrupt(ok + 1))))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with("caller: decode: 5 consecutive opus packets failed"),
            "{err}"
        );
    }

    #[test]
    fn decoder_is_send() {
        // Inputs may be decoded on separate threads.
        fn send<T: Send>() {}
        send::<Decoder>();
    }

    #[test]
    fn opus_head_parsing() {
        let mut head = b"OpusHead".to_vec();
        head.extend_from_slice(&[1, 2, 0x38, 0x01, 0x80, 0xBB, 0, 0, 0x00, 0x01, 0]);
        let st = OpusState::new(&head, false).expect("valid head");
        assert_eq!((st.channels, st.skip), (2, 312));
        // Output gain 0x0100 = 1 dB (Q7.8).
        assert!((st.gain - 10f32.powf(1.0 / 20.0)).abs() < 1e-6);
        // MP4 dOps is big-endian.
        let mut be = head.clone();
        be[10..12].copy_from_slice(&312u16.to_be_bytes());
        assert_eq!(OpusState::new(&be, true).expect("valid").skip, 312);
        // Broken heads are errors, not panics.
        assert!(OpusState::new(b"OpusHead", false).is_err());
        let mut bad = head.clone();
        bad[9] = 3; // family 0 with 3 channels
        assert!(OpusState::new(&bad, false).is_err());
        bad[18] = 1; // family 1 without a mapping table
        assert!(OpusState::new(&bad, false).is_err());
        let mut surround = head.clone();
        surround[9] = 3;
        surround[18] = 1;
        surround.extend_from_slice(&[2, 1, 0, 1, 2]);
        assert_eq!(
            OpusState::new(&surround, false)
                .expect("valid 3ch")
                .channels,
            3
        );
        surround[21 + 2] = 7; // mapping past the 3 decoded channels
        assert!(OpusState::new(&surround, false).is_err());
    }
}
