//! The ID3v2.4 tag in front of every MP3: the encoder's name, and for the
//! episode its title, artist, album, year, comment, cover and chapters.
//!
//! Why our own writer rather than the `id3` crate: the tag is write-only
//! here, needs eight frame types (text, `COMM`, `APIC`, `CHAP`, `CTOC`), and
//! each is a few lines of the ID3v2.4 structure (id3.org, "ID3 tag version
//! 2.4.0 - Main Structure" §3–4, and "ID3v2 Chapter Frame Addendum" 1.0).
//! The crate would add itself plus bitflags, byteorder and flate2 to every
//! build for that. The tests read the tags back with symphonia's ID3v2
//! reader, a parser we did not write.
//!
//! Chapters are the reason the tag matters to a listener: Apple Podcasts and
//! other apps read `CHAP` frames (times in milliseconds from the first
//! decoded sample) and need the `CTOC` (top-level, ordered) to list them.

/// One chapter of the episode: title and its span in milliseconds from the
/// first decoded sample.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Chapter {
    /// Title shown by the player.
    pub title: String,
    /// Start, milliseconds from the first decoded sample.
    pub start_ms: u32,
    /// End, milliseconds from the first decoded sample.
    pub end_ms: u32,
}

/// A cover image, already checked to be JPEG or PNG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cover {
    /// `image/jpeg` or `image/png`.
    pub mime: &'static str,
    /// The file's bytes.
    pub data: Vec<u8>,
}

/// The frames of one ID3v2.4 tag, in the order they were added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tag {
    frames: Vec<u8>,
}

/// Largest tag body an ID3v2.4 size field (28 bits, synchsafe) can give.
pub const MAX_TAG_BYTES: usize = (1 << 28) - 1;

/// Text encoding byte for UTF-8 (ID3v2.4 §4).
const UTF8: u8 = 3;

impl Tag {
    /// An empty tag.
    pub fn new() -> Self {
        Tag::default()
    }

    /// Adds a text frame (`TIT2`, `TPE1`, `TALB`, `TDRC`, `TSSE`, …) in UTF-8.
    pub fn text(&mut self, id: &[u8; 4], value: &str) -> &mut Self {
        let mut body = Vec::with_capacity(1 + value.len());
        body.push(UTF8);
        body.extend_from_slice(value.as_bytes());
        self.frame(id, &body)
    }

    /// Adds a `COMM` (comment) frame: language `eng`, empty description.
    pub fn comment(&mut self, value: &str) -> &mut Self {
        let mut body = Vec::with_capacity(5 + value.len());
        body.push(UTF8);
        body.extend_from_slice(b"eng");
        body.push(0); // empty content description, terminated
        body.extend_from_slice(value.as_bytes());
        self.frame(b"COMM", &body)
    }

    /// Adds an `APIC` frame holding `cover` as the front cover (type 3).
    pub fn picture(&mut self, cover: &Cover) -> &mut Self {
        let mut body = Vec::with_capacity(cover.data.len() + 20);
        body.push(UTF8);
        body.extend_from_slice(cover.mime.as_bytes());
        body.push(0);
        body.push(3); // front cover
        body.push(0); // empty description, terminated
        body.extend_from_slice(&cover.data);
        self.frame(b"APIC", &body)
    }

    /// Adds one `CHAP` frame per chapter (element ids `chp0`, `chp1`, …,
    /// title in an embedded `TIT2`, byte offsets unused) and a top-level,
    /// ordered `CTOC` listing them.
    pub fn chapters(&mut self, chapters: &[Chapter]) -> &mut Self {
        let ids: Vec<String> = (0..chapters.len()).map(|i| format!("chp{i}")).collect();
        for (c, id) in chapters.iter().zip(&ids) {
            let mut title = Tag::new();
            title.text(b"TIT2", &c.title);
            let mut body = Vec::with_capacity(32 + title.frames.len());
            body.extend_from_slice(id.as_bytes());
            body.push(0);
            body.extend_from_slice(&c.start_ms.to_be_bytes());
            body.extend_from_slice(&c.end_ms.to_be_bytes());
            // Start and end byte offsets: 0xFFFFFFFF means "not given".
            body.extend_from_slice(&[0xff; 8]);
            body.extend_from_slice(&title.frames);
            self.frame(b"CHAP", &body);
        }
        if !chapters.is_empty() {
            let mut body = Vec::new();
            body.extend_from_slice(b"toc\0");
            body.push(0b11); // top level, ordered
            body.push(u8::try_from(ids.len()).unwrap_or(u8::MAX));
            for id in ids.iter().take(255) {
                body.extend_from_slice(id.as_bytes());
                body.push(0);
            }
            self.frame(b"CTOC", &body);
        }
        self
    }

    /// Appends the frames of `other`.
    pub fn append(&mut self, other: &Tag) -> &mut Self {
        self.frames.extend_from_slice(&other.frames);
        self
    }

    /// Adds a frame with `body` (no frame flags; size synchsafe, as in 2.4).
    fn frame(&mut self, id: &[u8; 4], body: &[u8]) -> &mut Self {
        self.frames.extend_from_slice(id);
        self.frames.extend_from_slice(&synchsafe(body.len()));
        self.frames.extend_from_slice(&[0, 0]);
        self.frames.extend_from_slice(body);
        self
    }

    /// Bytes of the frames (without the 10-byte header).
    pub fn body_len(&self) -> usize {
        self.frames.len()
    }

    /// The whole tag: header and frames. A body over [`MAX_TAG_BYTES`]
    /// cannot be written; callers bound the cover well under it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut tag = Vec::with_capacity(10 + self.frames.len());
        tag.extend_from_slice(b"ID3\x04\x00\x00");
        tag.extend_from_slice(&synchsafe(self.frames.len()));
        tag.extend_from_slice(&self.frames);
        tag
    }
}

/// A 28-bit synchsafe integer (7 bits per byte), as ID3v2.4 sizes are.
fn synchsafe(n: usize) -> [u8; 4] {
    debug_assert!(n <= MAX_TAG_BYTES);
    [
        (n >> 21) as u8 & 0x7f,
        (n >> 14) as u8 & 0x7f,
        (n >> 7) as u8 & 0x7f,
        n as u8 & 0x7f,
    ]
}

/// The image type of `data` from its signature: JPEG (`FF D8 FF`, ITU T.81
/// Annex B: SOI then a marker) or PNG (the 8-byte signature of RFC 2083
/// §3.1); `None` for anything else.
pub fn image_mime(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_synchsafe_sizes_and_the_header_counts_them() {
        let mut t = Tag::new();
        t.text(b"TIT2", "é");
        let b = t.to_bytes();
        assert_eq!(&b[..6], b"ID3\x04\x00\x00");
        assert_eq!(b[6..10], synchsafe(b.len() - 10));
        assert_eq!(&b[10..14], b"TIT2");
        assert_eq!(b[14..18], [0, 0, 0, 3]); // encoding byte + 2 UTF-8 bytes
        assert_eq!(&b[20..], &[3, 0xc3, 0xa9]);
        assert_eq!(synchsafe(200), [0, 0, 1, 72]);
    }

    #[test]
    fn images_are_recognised_by_their_signature() {
        assert_eq!(image_mime(&[0xff, 0xd8, 0xff, 0xe0]), Some("image/jpeg"));
        assert_eq!(image_mime(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(image_mime(b"GIF89a"), None);
        assert_eq!(image_mime(b""), None);
    }
}
