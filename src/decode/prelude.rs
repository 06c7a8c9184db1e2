//! What podstitch reads before symphonia's probe sees a byte, and why.
//!
//! * **ID3v2 tags of any size are skipped.** The probe looks for a container
//!   signature only within its search depth (about 1 MB), so an MP3 whose
//!   ID3v2 tag carries a large cover image was "not a recognised audio
//!   file". Every tag at the start (a file may carry more than one) is
//!   skipped here, by its own size field (ID3v2.4 §3.1: 10-byte header,
//!   28-bit sync-safe size, plus a 10-byte footer when flag bit 4 is set),
//!   seeking over it when the source can seek and reading past it when it
//!   cannot. The input size limit still bounds it: the bytes are counted by
//!   the reader underneath. Podstitch's own outputs are read back the same
//!   way, so a cover written into the episode's tag cannot break their
//!   verification.
//! * **A streamed WAV's zero sizes mean "to the end".** A recorder that
//!   writes while it records leaves the RIFF and `data` sizes at 0 until it
//!   finishes (and never fills them in if it is stopped hard). symphonia
//!   reads a `data` size of 0 as no audio (reported as "silent"), while it
//!   reads `u32::MAX` as "unknown, read to the end" (what FFmpeg writes to a
//!   pipe). When the `data` chunk says 0 and bytes follow it, both sizes are
//!   rewritten to `u32::MAX` in the head served to symphonia.
//! * **An MP3 without a Xing/Info/VBRI header has no length.** symphonia then
//!   estimates one from the first frames' bitrate and *trims the stream to
//!   it*, so a VBR file whose first seconds are loud ended early (27 s of a
//!   32.5 s file). It estimates only when the source can seek, so such a
//!   stream is offered as not seekable: it is decoded to the real end of its
//!   frames and no estimate feeds the duration limit. The LAME/Xing delay and
//!   padding, when present, are still honoured (a header is present then).
//! * **The format tag of a RIFF/WAVE file is read** so that a WAV holding MP3,
//!   ADPCM or another codec symphonia does not decode is named in the error,
//!   with the fix, instead of "no known container signature".

use std::io::{self, Read, Seek, SeekFrom};

use symphonia::core::io::MediaSource;

use crate::encode::chunked::frames::Header;

/// How many bytes after the tags are read ahead to recognise the layout.
/// Big enough for a WAV's chunks before `data` (a `bext` or `LIST` chunk
/// included) and a first MP3 frame.
const SNIFF_LEN: usize = 64 * 1024;

/// The ID3v2 header: "ID3", version (2), flags, sync-safe size (4).
const ID3_HEADER_LEN: usize = 10;

/// What the prelude found, for messages and the decoder's decisions.
#[derive(Debug, Clone, Default)]
pub(crate) struct Facts {
    /// Bytes of ID3v2 tags skipped before the audio file.
    pub id3_bytes: u64,
    /// The first bytes after the tags, as the file has them (unpatched).
    pub head: Vec<u8>,
    /// The RIFF/WAVE `fmt ` format tag (and, for WAVE_FORMAT_EXTENSIBLE,
    /// the sub-format's first two bytes) when the file is a WAV.
    pub wav_format: Option<u16>,
    /// The WAV's zero sizes were rewritten to "to the end of the file".
    pub wav_sizes_filled: bool,
    /// The file is an MP3 whose first frame carries no Xing/Info/VBRI header.
    pub mp3_without_header: bool,
}

/// The source symphonia reads: the inner source after the ID3v2 tags, with
/// its first bytes possibly patched (a streamed WAV's sizes).
pub(crate) struct Prelude {
    inner: Box<dyn MediaSource>,
    /// Absolute position of byte 0 of this view in `inner`.
    start: u64,
    /// The first bytes of this view, served in place of the inner ones.
    head: Vec<u8>,
    /// Position in this view.
    pos: u64,
    /// Absolute position of `inner`.
    inner_pos: u64,
    seekable: bool,
    len: Option<u64>,
}

impl Prelude {
    /// Skips the ID3v2 tags of `inner`, reads its first bytes and decides
    /// what symphonia is shown.
    pub(crate) fn open(mut inner: Box<dyn MediaSource>) -> io::Result<(Prelude, Facts)> {
        let total = inner.byte_len();
        let seekable = inner.is_seekable();
        let mut facts = Facts::default();
        let mut pos = 0u64;
        let mut head = Vec::new();
        loop {
            fill(&mut inner, &mut head, ID3_HEADER_LEN)?;
            let Some(tag_len) = id3v2_len(&head) else {
                break;
            };
            // The header is already read; skip the rest of the tag.
            let rest = tag_len - head.len() as u64;
            head.clear();
            let skipped = if seekable {
                let to = (pos + tag_len).min(total.unwrap_or(u64::MAX));
                inner.seek(SeekFrom::Start(to))?;
                to - pos - ID3_HEADER_LEN as u64
            } else {
                io::copy(&mut (&mut inner).take(rest), &mut io::sink())?
            };
            pos += ID3_HEADER_LEN as u64 + skipped;
            facts.id3_bytes = pos;
            if skipped < rest {
                break;
            }
        }
        fill(&mut inner, &mut head, SNIFF_LEN)?;
        let inner_pos = pos + head.len() as u64;
        facts.head = head.clone();
        let more_follows = total.map_or(head.len() == SNIFF_LEN, |t| t > inner_pos);
        if let Some(wav) = wav_layout(&head) {
            facts.wav_format = wav.format;
            if let Some(at) = wav.data_size_at {
                let data_start = at + 4;
                let empty = head.get(at..data_start) == Some(&[0, 0, 0, 0][..]);
                let follows = head.len() > data_start || more_follows;
                if empty && follows {
                    head[at..data_start].copy_from_slice(&u32::MAX.to_le_bytes());
                    head[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
                    facts.wav_sizes_filled = true;
                }
            }
        } else if mp3_without_header(&head) {
            facts.mp3_without_header = true;
        }
        let prelude = Prelude {
            inner,
            start: pos,
            head,
            pos: 0,
            inner_pos,
            seekable: seekable && !facts.mp3_without_header,
            len: total.map(|t| t.saturating_sub(pos)),
        };
        Ok((prelude, facts))
    }
}

/// Reads from `src` until `buf` holds `want` bytes or the source ends.
fn fill(src: &mut Box<dyn MediaSource>, buf: &mut Vec<u8>, want: usize) -> io::Result<()> {
    let mut chunk = [0u8; 8192];
    while buf.len() < want {
        let n = src.read(&mut chunk[..(want - buf.len()).min(8192)])?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// The whole length of the ID3v2 tag starting `b` (header, body, footer),
/// when `b` starts with a well-formed ID3v2 header.
fn id3v2_len(b: &[u8]) -> Option<u64> {
    let h: [u8; ID3_HEADER_LEN] = b.get(..ID3_HEADER_LEN)?.try_into().ok()?;
    // Major version 2..4, revision never 0xFF, sync-safe size bytes.
    let well_formed = &h[..3] == b"ID3"
        && (2..=4).contains(&h[3])
        && h[4] != 0xff
        && h[6..].iter().all(|&x| x < 0x80);
    if !well_formed {
        return None;
    }
    let size = h[6..]
        .iter()
        .fold(0u64, |acc, &x| (acc << 7) | u64::from(x));
    let footer = if h[3] == 4 && h[5] & 0x10 != 0 { 10 } else { 0 };
    Some(ID3_HEADER_LEN as u64 + size + footer)
}

/// Where a WAV's chunks put things, as far as `head` shows them.
struct WavLayout {
    format: Option<u16>,
    /// Offset of the `data` chunk's size field.
    data_size_at: Option<usize>,
}

/// The chunks of a RIFF/WAVE head up to `data` (RIFF: each chunk is a
/// four-byte id, a little-endian u32 size and the body, padded to even).
fn wav_layout(head: &[u8]) -> Option<WavLayout> {
    if head.get(..4) != Some(b"RIFF") || head.get(8..12) != Some(b"WAVE") {
        return None;
    }
    let mut layout = WavLayout {
        format: None,
        data_size_at: None,
    };
    let mut at = 12usize;
    while let Some(chunk) = head.get(at..at + 8) {
        let id = &chunk[..4];
        let size = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
        if id == b"data" {
            layout.data_size_at = Some(at + 4);
            break;
        }
        if id == b"fmt " {
            let tag = |o: usize| {
                head.get(at + 8 + o..at + 10 + o)
                    .map(|t| u16::from_le_bytes([t[0], t[1]]))
            };
            // WAVE_FORMAT_EXTENSIBLE: the real tag opens the sub-format GUID.
            layout.format = match tag(0) {
                Some(0xfffe) => tag(24).or(Some(0xfffe)),
                other => other,
            };
        }
        let body = usize::try_from(size).ok()?;
        at = at
            .checked_add(8)?
            .checked_add(body)?
            .checked_add(body & 1)?;
    }
    Some(layout)
}

/// A readable name for a WAV format tag podstitch does not decode, and how
/// to get a file it does; `None` for the tags symphonia decodes.
pub(crate) fn wav_codec(tag: u16) -> Option<(&'static str, &'static str)> {
    const AS_WAV: &str = "export it as PCM WAV (16/24-bit or float)";
    let known = [
        (0x0050, "MPEG audio (layer I/II)", AS_WAV),
        (
            0x0055,
            "MP3",
            "upload the MP3 itself (not wrapped in a WAV), or export it as PCM WAV",
        ),
        (0x0002, "MS ADPCM", AS_WAV),
        (0x0011, "IMA ADPCM", AS_WAV),
        (0x0031, "GSM 6.10", AS_WAV),
        (0x0022, "TrueSpeech", AS_WAV),
        (0x0160, "WMA", AS_WAV),
        (0x0161, "WMA", AS_WAV),
        (0x0162, "WMA Pro", AS_WAV),
        (
            0x00ff,
            "AAC",
            "upload it as MP4/AAC, or export it as PCM WAV",
        ),
        (
            0x1610,
            "AAC",
            "upload it as MP4/AAC, or export it as PCM WAV",
        ),
        (0x2000, "AC-3", AS_WAV),
        (0x2001, "DTS", AS_WAV),
    ];
    match tag {
        // PCM, IEEE float, A-law, mu-law: decoded.
        0x0001 | 0x0003 | 0x0006 | 0x0007 | 0xfffe => None,
        _ => Some(
            known
                .iter()
                .find(|(t, _, _)| *t == tag)
                .map_or(("an unknown codec", AS_WAV), |&(_, name, fix)| (name, fix)),
        ),
    }
}

/// True when `head` opens with two consecutive Layer III frames and the
/// first carries no Xing, Info or VBRI header (where LAME, Xing and
/// Fraunhofer put them: after the side information, or 32 bytes after the
/// header for VBRI).
fn mp3_without_header(head: &[u8]) -> bool {
    let Some(first) = Header::parse(head) else {
        return false;
    };
    let second_at = first.len();
    let Some(second) = head.get(second_at..).and_then(Header::parse) else {
        return false;
    };
    if second.rate != first.rate || second.mpeg1 != first.mpeg1 {
        return false;
    }
    let at = |o: usize, tag: &[u8]| head.get(o..o + 4) == Some(tag);
    let info = first.main_data_offset();
    !(at(info, b"Xing") || at(info, b"Info") || at(4 + 32, b"VBRI"))
}

impl Read for Prelude {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(from_head) = usize::try_from(self.pos)
            .ok()
            .and_then(|p| self.head.get(p..))
            .filter(|rest| !rest.is_empty())
        {
            let n = from_head.len().min(buf.len());
            buf[..n].copy_from_slice(&from_head[..n]);
            self.pos += n as u64;
            return Ok(n);
        }
        let want = self.start + self.pos;
        if self.inner_pos != want {
            self.inner_pos = self.inner.seek(SeekFrom::Start(want))?;
        }
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        self.inner_pos += n as u64;
        Ok(n)
    }
}

impl Seek for Prelude {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        if !self.seekable {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this source is read front to back",
            ));
        }
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.len.and_then(|l| l.checked_add_signed(d)),
        };
        self.pos = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start or from an unknown end",
            )
        })?;
        Ok(self.pos)
    }
}

impl MediaSource for Prelude {
    fn is_seekable(&self) -> bool {
        self.seekable
    }

    fn byte_len(&self) -> Option<u64> {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn open(bytes: Vec<u8>) -> (Vec<u8>, Facts, bool) {
        let (mut p, facts) = Prelude::open(Box::new(Cursor::new(bytes))).expect("opens");
        let seekable = p.is_seekable();
        let mut out = Vec::new();
        p.read_to_end(&mut out).expect("reads");
        (out, facts, seekable)
    }

    fn id3(body_len: usize, footer: bool) -> Vec<u8> {
        let mut t = b"ID3\x04\x00".to_vec();
        t.push(if footer { 0x10 } else { 0 });
        let n = body_len as u32;
        t.extend(
            [
                (n >> 21) & 0x7f,
                (n >> 14) & 0x7f,
                (n >> 7) & 0x7f,
                n & 0x7f,
            ]
            .map(|x| x as u8),
        );
        t.resize(10 + body_len, 0x55);
        if footer {
            t.extend_from_slice(b"3DI\x04\x00\x10");
            t.extend_from_slice(&[0, 0, 0, 0]);
        }
        t
    }

    #[test]
    fn id3_tags_of_any_size_are_skipped_seekable_or_not() {
        let audio: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for (len, footer) in [(0, false), (300, false), (3 << 20, false), (70_000, true)] {
            let mut bytes = id3(len, footer);
            bytes.extend(id3(1000, false)); // a second tag
            let tags = bytes.len() as u64;
            bytes.extend_from_slice(&audio);
            let (out, facts, _) = open(bytes.clone());
            assert_eq!(out, audio, "tag of {len}");
            assert_eq!(facts.id3_bytes, tags);
            assert_eq!(&facts.head[..16], &audio[..16]);
            // A one-shot reader: the same bytes.
            let src = symphonia::core::io::ReadOnlySource::new(Cursor::new(bytes));
            let (mut p, facts) = Prelude::open(Box::new(src)).expect("opens");
            let mut out = Vec::new();
            p.read_to_end(&mut out).expect("reads");
            assert_eq!(out, audio);
            assert_eq!(facts.id3_bytes, tags);
        }
        // A tag that claims more than the file holds: nothing is left.
        let mut cut = id3(5000, false);
        cut.truncate(2000);
        let (out, facts, _) = open(cut);
        assert!(out.is_empty());
        assert_eq!(facts.id3_bytes, 2000);
    }

    #[test]
    fn seeking_after_the_tag_is_relative_to_the_audio() {
        let mut bytes = id3(5000, false);
        bytes.extend((0..200_000u32).map(|i| (i % 253) as u8));
        let (mut p, _) = Prelude::open(Box::new(Cursor::new(bytes.clone()))).expect("opens");
        assert_eq!(p.byte_len(), Some(200_000));
        for at in [0u64, 17, 70_000, 199_999] {
            p.seek(SeekFrom::Start(at)).expect("seeks");
            let mut b = [0u8; 1];
            p.read_exact(&mut b).expect("reads");
            assert_eq!(b[0], bytes[5010 + at as usize], "at {at}");
        }
        assert_eq!(p.seek(SeekFrom::End(-1)).expect("seeks"), 199_999);
    }

    fn wav(data_size: u32, riff_size: u32, frames: usize) -> Vec<u8> {
        let mut w = b"RIFF".to_vec();
        w.extend(riff_size.to_le_bytes());
        w.extend_from_slice(b"WAVEfmt ");
        w.extend(16u32.to_le_bytes());
        w.extend([1u8, 0, 1, 0]); // PCM, mono
        w.extend(8000u32.to_le_bytes());
        w.extend(16000u32.to_le_bytes());
        w.extend([2u8, 0, 16, 0]);
        w.extend_from_slice(b"LIST");
        w.extend(5u32.to_le_bytes());
        w.extend_from_slice(b"INFOx\0"); // odd size, padded
        w.extend_from_slice(b"data");
        w.extend(data_size.to_le_bytes());
        w.extend((0..frames * 2).map(|i| i as u8));
        w
    }

    #[test]
    fn streamed_wav_sizes_become_to_the_end() {
        let (out, facts, _) = open(wav(0, 0, 100));
        assert!(facts.wav_sizes_filled);
        assert_eq!(facts.wav_format, Some(1));
        assert_eq!(&out[4..8], &[0xff; 4]);
        let at = out.windows(4).position(|w| w == b"data").expect("data") + 4;
        assert_eq!(&out[at..at + 4], &[0xff; 4]);
        assert_eq!(out.len(), wav(0, 0, 100).len());
        // Sizes that were filled in, and an empty WAV, are left alone.
        for bytes in [wav(200, 236, 100), wav(0, 36, 0)] {
            let (out, facts, _) = open(bytes.clone());
            assert!(!facts.wav_sizes_filled);
            assert_eq!(out, bytes);
        }
    }

    #[test]
    fn wav_format_tags_are_named() {
        let mut w = wav(4, 40, 2);
        w[20] = 0x55;
        let (_, facts, _) = open(w);
        assert_eq!(facts.wav_format, Some(0x55));
        assert_eq!(wav_codec(0x55).map(|c| c.0), Some("MP3"));
        assert_eq!(wav_codec(1), None);
        assert_eq!(wav_codec(0x1234).map(|c| c.0), Some("an unknown codec"));
    }

    /// A Layer III frame: MPEG-1, 128 kb/s, 44.1 kHz, mono (417 bytes),
    /// with `tag` right after the 17 bytes of side information.
    fn frame(tag: &[u8]) -> Vec<u8> {
        let mut f = vec![0xff, 0xfb, 0x90, 0xc0];
        f.resize(417, 0);
        f[21..21 + tag.len()].copy_from_slice(tag);
        f
    }

    #[test]
    fn mp3_without_a_header_is_not_seekable() {
        let plain = [frame(b""), frame(b""), frame(b"")].concat();
        let (_, facts, seekable) = open(plain);
        assert!(facts.mp3_without_header && !seekable);
        for tag in [&b"Xing"[..], b"Info"] {
            let tagged = [frame(tag), frame(b""), frame(b"")].concat();
            let (_, facts, seekable) = open(tagged);
            assert!(!facts.mp3_without_header && seekable, "{tag:?}");
        }
        // Not two frames in a row: not judged.
        let (_, facts, _) = open(frame(b"")[..300].to_vec());
        assert!(!facts.mp3_without_header);
    }
}
