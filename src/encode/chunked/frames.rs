//! The parts of an MPEG audio Layer III stream the splicer reads and writes:
//! frame headers, the side information that says where each frame's main
//! data starts (the bit reservoir) and which window each granule uses, the
//! Info/LAME tag, and CRC-16.
//!
//! Layouts are those of ISO/IEC 11172-3 (MPEG-1) §2.4.1.3 (header) and
//! §2.4.1.7 (Layer III side information), with the MPEG-2 low sampling
//! frequency changes of ISO/IEC 13818-3 §2.4.1.7 (one granule, 8-bit
//! `main_data_begin`, no `scfsi`), and the LAME tag as LAME 3.100 writes it.

/// Layer III bitrates in kb/s by header index, MPEG-1 (ISO/IEC 11172-3
/// §2.4.2.3, `bitrate_index`; 0 is free format, 15 forbidden).
const KBPS_MPEG1: [u32; 15] = [
    0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
];
/// Layer III bitrates for MPEG-2 and 2.5 (ISO/IEC 13818-3 §2.4.2.3).
const KBPS_MPEG2: [u32; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];

/// A Layer III frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// MPEG-1 (two granules per frame) rather than MPEG-2/2.5 (one).
    pub mpeg1: bool,
    /// A 16-bit CRC follows the header (`protection_bit` = 0).
    pub crc: bool,
    pub kbps: u32,
    pub rate: u32,
    pub padding: bool,
    pub channels: usize,
    /// Channel mode: 0 stereo, 1 joint stereo, 2 dual channel, 3 mono.
    pub mode: u8,
}

impl Header {
    /// Parses the 4 header bytes at the start of `b`; `None` when they are
    /// not a Layer III header this splicer handles (free format included).
    pub fn parse(b: &[u8]) -> Option<Header> {
        let b: [u8; 4] = b.get(..4)?.try_into().ok()?;
        if b[0] != 0xff || b[1] & 0xe0 != 0xe0 {
            return None;
        }
        let version = (b[1] >> 3) & 3; // 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5
        let layer = (b[1] >> 1) & 3; // 1 = Layer III
        if version == 1 || layer != 1 {
            return None;
        }
        let mpeg1 = version == 3;
        let table = if mpeg1 { &KBPS_MPEG1 } else { &KBPS_MPEG2 };
        let kbps = *table.get(usize::from(b[2] >> 4))?;
        let rate_index = usize::from((b[2] >> 2) & 3);
        let base = *crate::encode::MPEG1_RATES.get(rate_index)?;
        if kbps == 0 {
            return None;
        }
        Some(Header {
            mpeg1,
            crc: b[1] & 1 == 0,
            kbps,
            rate: match version {
                3 => base,
                2 => base / 2,
                _ => base / 4,
            },
            padding: (b[2] >> 1) & 1 == 1,
            channels: if b[3] >> 6 == 3 { 1 } else { 2 },
            mode: b[3] >> 6,
        })
    }

    /// Bytes in the whole frame: 144 (MPEG-1) or 72 (MPEG-2) × bitrate /
    /// rate, plus one for a padding slot (ISO/IEC 11172-3 §2.4.2.3,
    /// `padding_bit`; ISO/IEC 13818-3 §2.4.2.3).
    pub fn len(&self) -> usize {
        let per_kbps = if self.mpeg1 { 144_000 } else { 72_000 };
        (per_kbps * self.kbps / self.rate) as usize + usize::from(self.padding)
    }

    /// Bytes of side information.
    pub fn side_info_len(&self) -> usize {
        match (self.mpeg1, self.channels) {
            (true, 1) => 17,
            (true, _) => 32,
            (false, 1) => 9,
            (false, _) => 17,
        }
    }

    /// Offset of the main-data area from the start of the frame.
    pub fn main_data_offset(&self) -> usize {
        4 + if self.crc { 2 } else { 0 } + self.side_info_len()
    }

    /// Granules per frame.
    pub fn granules(&self) -> usize {
        if self.mpeg1 {
            2
        } else {
            1
        }
    }

    /// Samples per channel in a frame.
    pub fn samples(&self) -> usize {
        576 * self.granules()
    }

    /// True when `other` belongs to the same constant-bitrate stream (only
    /// padding and the joint-stereo mode extension may differ).
    pub fn same_stream(&self, other: &Header) -> bool {
        let key = |h: &Header| (h.mpeg1, h.crc, h.kbps, h.rate, h.mode);
        key(self) == key(other)
    }
}

/// One frame found in a byte buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame {
    /// Offset of the header in the buffer.
    pub offset: usize,
    pub header: Header,
    /// Bytes of main data this frame takes from before its header.
    pub main_data_begin: usize,
    /// Block type (0 normal long, 1 start, 2 short, 3 stop) of each
    /// granule and channel, two bits each, granule-major.
    pub blocks: u8,
}

impl Frame {
    /// Every granule of every channel uses a normal long window.
    pub fn all_long(&self) -> bool {
        self.blocks == 0
    }

    /// Offset just past the frame.
    pub fn end(&self) -> usize {
        self.offset + self.header.len()
    }

    /// Offset of the frame's main-data area.
    pub fn main_start(&self) -> usize {
        self.offset + self.header.main_data_offset()
    }

    /// Parses the header and side information at `offset`; `Ok(None)` when
    /// `buf` ends before the side information does.
    pub fn parse(buf: &[u8], offset: usize) -> Result<Option<Frame>, String> {
        let Some(head) = buf.get(offset..offset + 4) else {
            return Ok(None);
        };
        let header = Header::parse(head)
            .ok_or_else(|| format!("no Layer III frame header at byte {offset}"))?;
        let side_start = offset + header.main_data_offset() - header.side_info_len();
        let Some(side) = buf.get(side_start..side_start + header.side_info_len()) else {
            return Ok(None);
        };
        let mut bits = Bits { data: side, pos: 0 };
        let (main_data_begin, private) = match (header.mpeg1, header.channels) {
            (true, 1) => (bits.read(9), 5),
            (true, _) => (bits.read(9), 3),
            (false, 1) => (bits.read(8), 1),
            (false, _) => (bits.read(8), 2),
        };
        bits.skip(private);
        if header.mpeg1 {
            bits.skip(4 * header.channels); // scfsi
        }
        let mut blocks = 0u8;
        for _granule in 0..header.granules() {
            for _channel in 0..header.channels {
                bits.skip(12 + 9 + 8); // part2_3_length, big_values, global_gain
                bits.skip(if header.mpeg1 { 4 } else { 9 }); // scalefac_compress
                blocks <<= 2;
                if bits.read(1) == 1 {
                    // window_switching_flag: block type 1, 2 or 3 follows
                    blocks |= bits.read(2) as u8;
                    bits.skip(1 + 2 * 5 + 3 * 3);
                } else {
                    bits.skip(3 * 5 + 4 + 3);
                }
                // preflag (MPEG-1 only), scalefac_scale, count1table_select
                bits.skip(if header.mpeg1 { 3 } else { 2 });
            }
        }
        Ok(Some(Frame {
            offset,
            header,
            main_data_begin: main_data_begin as usize,
            blocks,
        }))
    }
}

/// Big-endian bit reader over side information (whose length is checked
/// before reading, so reads never run past it).
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: usize) -> u32 {
        let mut v = 0;
        for _ in 0..n {
            let byte = self.data.get(self.pos / 8).copied().unwrap_or(0);
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        v
    }

    fn skip(&mut self, n: usize) {
        self.pos += n;
    }
}

/// Finds the frames of one constant-bitrate stream laid end to end in `buf`
/// from `from`. The last frame may be cut short (an encoder that has not been
/// flushed hands out a frame before the main data that fills its end); a
/// frame cut inside its side information is left out.
pub(crate) fn scan(buf: &[u8], from: usize) -> Result<Vec<Frame>, String> {
    let mut frames: Vec<Frame> = Vec::new();
    let mut offset = from;
    while let Some(frame) = Frame::parse(buf, offset)? {
        if let Some(first) = frames.first() {
            if !first.header.same_stream(&frame.header) {
                return Err(format!(
                    "frame at byte {offset} changes the stream's format ({:?} after {:?})",
                    frame.header, first.header
                ));
            }
        }
        offset = frame.end();
        frames.push(frame);
    }
    Ok(frames)
}

/// The byte ranges holding the last `n` main-data bytes before the header of
/// `frames[index]`, earliest first, walking back through the main-data
/// areas of the frames before it. `None` when those frames hold fewer.
pub(crate) fn main_data_before(
    frames: &[Frame],
    index: usize,
    n: usize,
) -> Option<Vec<std::ops::Range<usize>>> {
    let mut ranges = Vec::new();
    let mut left = n;
    for frame in frames[..index].iter().rev() {
        if left == 0 {
            break;
        }
        let area = frame.main_start()..frame.end();
        let take = left.min(area.len());
        ranges.push(area.end - take..area.end);
        left -= take;
    }
    ranges.reverse();
    (left == 0).then_some(ranges)
}

/// CRC-16 with polynomial x¹⁶ + x¹⁵ + x² + 1, bits reflected, initial value
/// 0 (the "CRC-16/ARC" that the LAME tag uses for its music and tag CRCs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Crc16(pub u16);

/// Lookup table for [`Crc16`], one entry per byte value.
const CRC16_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u16;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xa001
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

impl Crc16 {
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 >> 8) ^ CRC16_TABLE[usize::from((self.0 ^ u16::from(b)) as u8)];
        }
    }
}

/// Keeps the byte offset of every `stride`-th audio frame, in bounded
/// memory (the stride doubles when the list fills), to build the Info tag's
/// table of contents at the end.
#[derive(Debug, Clone)]
pub(crate) struct TocSampler {
    stride: u64,
    points: Vec<(u64, u64)>,
}

/// Points the [`TocSampler`] keeps at most.
const TOC_POINTS: usize = 512;

impl Default for TocSampler {
    fn default() -> Self {
        TocSampler {
            stride: 1,
            points: Vec::with_capacity(TOC_POINTS),
        }
    }
}

impl TocSampler {
    /// Records that audio frame `frame` starts `offset` bytes after the
    /// first audio frame. Frames must come in order.
    pub fn record(&mut self, frame: u64, offset: u64) {
        if !frame.is_multiple_of(self.stride) {
            return;
        }
        self.points.push((frame, offset));
        if self.points.len() == TOC_POINTS {
            self.stride *= 2;
            let stride = self.stride;
            self.points.retain(|&(f, _)| f % stride == 0);
        }
    }

    /// The Xing table of contents for `frames` audio frames holding
    /// `audio_bytes` bytes: entry i is 256 × (audio bytes before the frame
    /// at i % of the duration) / `audio_bytes`, as LAME computes it (the
    /// Info frame itself not counted).
    pub fn toc(&self, frames: u64, audio_bytes: u64) -> [u8; 100] {
        let mut toc = [0u8; 100];
        if frames == 0 || audio_bytes == 0 || self.points.is_empty() {
            return toc;
        }
        let mean = audio_bytes as f64 / frames as f64;
        for (i, entry) in toc.iter_mut().enumerate() {
            let k = i as u64 * frames / 100;
            let at = self.points.partition_point(|&(f, _)| f <= k).max(1) - 1;
            let (f, offset) = self.points[at];
            let estimate = offset as f64 + (k - f) as f64 * mean;
            *entry = (256.0 * estimate / audio_bytes as f64).floor().min(255.0) as u8;
        }
        toc
    }
}

/// What the Info/LAME tag of the whole stream must say.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StreamFacts {
    /// Audio frames (the Info frame not counted).
    pub frames: u64,
    /// Bytes of the whole MPEG stream, the Info frame included.
    pub bytes: u64,
    pub toc: [u8; 100],
    /// Samples per channel the stream decodes to (gapless).
    pub samples: u64,
    /// CRC-16 of the audio frames.
    pub music_crc: u16,
}

/// Rewrites the stream-wide fields of a LAME Info tag frame (Xing frame
/// count, byte count and TOC; LAME padding, music length, music CRC and tag
/// CRC), keeping the encoder delay and settings it records. Returns
/// (delay, padding).
pub(crate) fn patch_info_tag(tag: &mut [u8], facts: &StreamFacts) -> Result<(u32, u32), String> {
    let header = Header::parse(tag).ok_or("the Info tag frame has no frame header")?;
    // LAME puts the Xing data right after the side information, at the same
    // offset whether or not a CRC is present (`lame_get_lametag_frame`).
    let xing = 4 + header.side_info_len();
    let lame = xing + 120; // "Info", flags, frames, bytes, TOC, quality
    if tag.len() < lame + 36 || tag.len() != header.len() {
        return Err(format!(
            "the Info tag frame is {} bytes, not a whole frame with a LAME tag",
            tag.len()
        ));
    }
    if &tag[xing..xing + 4] != b"Info" && &tag[xing..xing + 4] != b"Xing" {
        return Err("the first frame is not an Info tag frame".into());
    }
    if tag[xing + 4..xing + 8] != [0, 0, 0, 0x0f] {
        return Err("the Info tag lacks a frame count, byte count, TOC or quality".into());
    }
    if &tag[lame..lame + 4] != b"LAME" {
        return Err("the Info tag has no LAME extension".into());
    }
    let frames = u32::try_from(facts.frames).map_err(|_| "too many frames for the Info tag")?;
    let bytes = u32::try_from(facts.bytes).map_err(|_| "too many bytes for the Info tag")?;
    tag[xing + 8..xing + 12].copy_from_slice(&frames.to_be_bytes());
    tag[xing + 12..xing + 16].copy_from_slice(&bytes.to_be_bytes());
    tag[xing + 16..xing + 116].copy_from_slice(&facts.toc);

    // LAME extension: delay 12 bits and padding 12 bits at +21.
    let trim = lame + 21;
    let delay = (u32::from(tag[trim]) << 4) | u32::from(tag[trim + 1] >> 4);
    let span = facts.frames * header.samples() as u64;
    let padding = span
        .checked_sub(u64::from(delay) + facts.samples)
        .filter(|&p| p < 1 << 12)
        .ok_or_else(|| {
            format!(
                "{} frames with an encoder delay of {delay} cannot hold {} samples",
                facts.frames, facts.samples
            )
        })? as u32;
    tag[trim + 1] = (tag[trim + 1] & 0xf0) | (padding >> 8) as u8;
    tag[trim + 2] = padding as u8;
    tag[lame + 28..lame + 32].copy_from_slice(&bytes.to_be_bytes()); // music length
    tag[lame + 32..lame + 34].copy_from_slice(&facts.music_crc.to_be_bytes());
    let mut crc = Crc16::default();
    crc.update(&tag[..lame + 34]);
    tag[lame + 34..lame + 36].copy_from_slice(&crc.0.to_be_bytes());
    Ok((delay, padding))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_is_crc16_arc() {
        // The standard check value of CRC-16/ARC.
        let mut crc = Crc16::default();
        crc.update(b"123456789");
        assert_eq!(crc.0, 0xbb3d);
    }

    #[test]
    fn headers_parse() {
        // MPEG-1 Layer III, no CRC, 128 kb/s, 44.1 kHz, padded, joint stereo.
        let h = Header::parse(&[0xff, 0xfb, 0x92, 0x64]).unwrap();
        assert!(h.mpeg1 && !h.crc && h.padding);
        assert_eq!((h.kbps, h.rate, h.channels, h.len()), (128, 44_100, 2, 418));
        assert_eq!((h.side_info_len(), h.main_data_offset()), (32, 36));
        // MPEG-2, 64 kb/s, 22.05 kHz, mono, CRC.
        let h = Header::parse(&[0xff, 0xf2, 0x80, 0xc0]).unwrap();
        assert!(!h.mpeg1 && h.crc && !h.padding);
        assert_eq!((h.kbps, h.rate, h.channels, h.len()), (64, 22_050, 1, 208));
        assert_eq!((h.samples(), h.main_data_offset()), (576, 15));
        // Layer II, free format, bad rate index, no sync.
        for bad in [
            [0xff, 0xfd, 0x92, 0x64],
            [0xff, 0xfb, 0x02, 0x64],
            [0xff, 0xfb, 0x9e, 0x64],
            [0xfe, 0xfb, 0x92, 0x64],
        ] {
            assert_eq!(Header::parse(&bad), None, "{bad:x?}");
        }
    }

    #[test]
    fn main_data_walks_back_across_headers() {
        let header = Header::parse(&[0xff, 0xfb, 0x90, 0x64]).unwrap(); // 417 bytes
        let frame = |offset| Frame {
            offset,
            header,
            main_data_begin: 0,
            blocks: 0,
        };
        let frames = [frame(0), frame(417), frame(834)];
        // 381 main-data bytes per frame: 36..417 and 453..834.
        let tail_of_frame_1 = 824..834;
        assert_eq!(
            main_data_before(&frames, 2, 10),
            Some(vec![tail_of_frame_1])
        );
        assert_eq!(
            main_data_before(&frames, 2, 400),
            Some(vec![398..417, 453..834])
        );
        assert_eq!(main_data_before(&frames, 2, 763), None);
        assert_eq!(main_data_before(&frames, 1, 0), Some(vec![]));
    }

    #[test]
    fn toc_of_equal_frames_is_linear_and_bounded_in_memory() {
        let mut s = TocSampler::default();
        let frames = 100_000u64;
        for k in 0..frames {
            s.record(k, k * 400);
        }
        assert!(s.points.len() < TOC_POINTS);
        let toc = s.toc(frames, frames * 400);
        for (i, &t) in toc.iter().enumerate() {
            assert_eq!(usize::from(t), i * 256 / 100, "entry {i}");
        }
    }
}
