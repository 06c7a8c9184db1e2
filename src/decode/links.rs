//! Matroska/WebM files that hold more than one recording, one after the
//! other.
//!
//! An upload path that resumes a recording may append a second complete
//! WebM file (its own EBML header and Segment) to the first. symphonia's
//! reader stops at the end of the first Segment (or, when its size is
//! unknown as in Chrome's files, at the unexpected header), so everything
//! after it was lost while the job succeeded.
//!
//! [`Splitter`] follows the file's top-level structure as the bytes go by
//! and ends each *link* (one EBML header and what follows it) where the
//! next EBML header starts, so symphonia sees one ordinary file at a time
//! and the decoder opens the next link when one ends. Elements of known
//! size are passed whole; a Segment or Cluster of unknown size is entered
//! and its children walked, a Cluster of unknown size ending at the first
//! element that cannot be its child (Matroska's rule, RFC 9559 §6.2). Only
//! an EBML header found where an element starts ends a link, never bytes
//! inside a block, so the audio's contents cannot split a file by chance.
//! Bytes the walker cannot parse (a truncated or damaged header) are passed
//! through untouched to the end, which is what symphonia saw before.
//!
//! The source is read ahead in large pieces and served from memory, so the
//! walk costs a header parse per element (about 50 per second of Opus).

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex, MutexGuard};

use symphonia::core::io::MediaSource;

/// The EBML header element (RFC 8794 §11.2.1), the first of every link.
const EBML: u32 = 0x1A45_DFA3;
/// The Segment element (RFC 9559 §5.1).
const SEGMENT: u32 = 0x1853_8067;
/// The Cluster element (RFC 9559 §5.1.3).
const CLUSTER: u32 = 0x1F43_B675;
/// The elements a Cluster may contain (RFC 9559 §5.1.3.1–§5.1.3.8, with the
/// global Void and CRC-32 elements of RFC 8794 §11.3).
const CLUSTER_CHILDREN: [u32; 9] = [0xE7, 0x5854, 0xA7, 0xAB, 0xA3, 0xA0, 0xAF, 0xEC, 0xBF];
/// How much is read from the source at a time.
const READ_LEN: usize = 64 * 1024;
/// The longest element header: a 4-byte ID and an 8-byte size.
const MAX_HEADER: usize = 12;

/// True when `head` starts with an EBML header, i.e. the file is Matroska
/// or WebM.
pub(crate) fn is_ebml(head: &[u8]) -> bool {
    head.get(..4) == Some(&EBML.to_be_bytes()[..])
}

/// The walker over the whole file, shared by the link being read and the
/// decoder that opens the next one.
struct Splitter {
    inner: Box<dyn MediaSource>,
    buf: Vec<u8>,
    /// Start of the unserved bytes in `buf`.
    at: usize,
    eof: bool,
    /// Bytes from the next one served known to belong to the current link.
    passable: u64,
    /// Unknown-size elements (Segment, Cluster) the walk is inside.
    open: Vec<u32>,
    /// The current link's EBML header has been passed.
    started: bool,
    /// The next byte starts another link.
    boundary: bool,
    /// The structure could not be followed: pass everything.
    opaque: bool,
    /// Links started so far.
    links: u32,
}

impl Splitter {
    fn unserved(&self) -> &[u8] {
        self.buf.get(self.at..).unwrap_or(&[])
    }

    /// Reads more of the source; false at its end.
    fn refill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        self.buf.drain(..self.at);
        self.at = 0;
        let old = self.buf.len();
        self.buf.resize(old + READ_LEN, 0);
        let n = loop {
            match self.inner.read(&mut self.buf[old..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        self.buf.truncate(old + *n.as_ref().unwrap_or(&0));
        let n = n?;
        self.eof = n == 0;
        Ok(n > 0)
    }

    /// Decides what the element starting at the next unserved byte is.
    /// Needs its header in `buf` (or the source ended).
    fn walk(&mut self) {
        let Some((id, header_len, size)) = element_header(self.unserved()) else {
            self.opaque = true;
            return;
        };
        if id == EBML {
            if self.started {
                self.boundary = true;
                return;
            }
            self.started = true;
            self.links += 1;
        }
        while self
            .open
            .last()
            .is_some_and(|&top| top == CLUSTER && !CLUSTER_CHILDREN.contains(&id))
        {
            self.open.pop();
        }
        match size {
            Some(body) => self.passable = header_len as u64 + body,
            None if id == SEGMENT || id == CLUSTER => {
                self.open.push(id);
                self.passable = header_len as u64;
            }
            None => self.opaque = true,
        }
    }

    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut served = 0;
        while served < out.len() && !self.boundary {
            if self.passable == 0 && !self.opaque {
                if self.unserved().len() < MAX_HEADER && !self.eof {
                    if served > 0 {
                        break;
                    }
                    self.refill()?;
                    continue;
                }
                if self.unserved().is_empty() {
                    break;
                }
                self.walk();
                continue;
            }
            if self.unserved().is_empty() {
                if served > 0 || !self.refill()? {
                    break;
                }
                continue;
            }
            let limit = if self.opaque {
                usize::MAX
            } else {
                usize::try_from(self.passable).unwrap_or(usize::MAX)
            };
            let n = self.unserved().len().min(out.len() - served).min(limit);
            out[served..served + n].copy_from_slice(&self.unserved()[..n]);
            self.at += n;
            served += n;
            if !self.opaque {
                self.passable -= n as u64;
            }
        }
        Ok(served)
    }
}

/// Parses an EBML element header (RFC 8794 §4): the ID with its length
/// marker kept, the header's length, and the data size (`None`: unknown).
fn element_header(b: &[u8]) -> Option<(u32, usize, Option<u64>)> {
    let first = *b.first()?;
    let id_len = first.leading_zeros() as usize + 1;
    if id_len > 4 {
        return None;
    }
    let id = b
        .get(..id_len)?
        .iter()
        .fold(0u32, |acc, &x| (acc << 8) | u32::from(x));
    let size_first = *b.get(id_len)?;
    let size_len = size_first.leading_zeros() as usize + 1;
    if size_len > 8 {
        return None;
    }
    let bytes = b.get(id_len..id_len + size_len)?;
    let marker_mask = if size_len == 8 { 0 } else { 0xFFu8 >> size_len };
    let mut value = u64::from(bytes[0] & marker_mask);
    let mut all_ones = value == u64::from(marker_mask);
    for &x in &bytes[1..] {
        value = (value << 8) | u64::from(x);
        all_ones &= x == 0xFF;
    }
    Some((id, id_len + size_len, (!all_ones).then_some(value)))
}

/// The decoder's handle on a file's links.
pub(crate) struct Links {
    shared: Arc<Mutex<Splitter>>,
}

impl Links {
    /// Wraps `inner` (positioned at its EBML header); the first link's
    /// source comes with it.
    pub(crate) fn new(inner: Box<dyn MediaSource>) -> (Links, LinkSource) {
        let splitter = Splitter {
            inner,
            buf: Vec::with_capacity(READ_LEN + MAX_HEADER),
            at: 0,
            eof: false,
            passable: 0,
            open: Vec::new(),
            started: false,
            boundary: false,
            opaque: false,
            links: 0,
        };
        let shared = Arc::new(Mutex::new(splitter));
        let source = LinkSource {
            shared: Arc::clone(&shared),
        };
        (Links { shared }, source)
    }

    /// When the link read so far ended where another begins, the source of
    /// that next link.
    pub(crate) fn next(&self) -> Option<LinkSource> {
        let mut s = lock(&self.shared);
        if !s.boundary {
            return None;
        }
        s.boundary = false;
        s.started = false;
        s.open.clear();
        Some(LinkSource {
            shared: Arc::clone(&self.shared),
        })
    }

    /// Links started so far (1 for an ordinary file).
    #[cfg(test)]
    fn count(&self) -> u32 {
        lock(&self.shared).links
    }
}

fn lock(shared: &Mutex<Splitter>) -> MutexGuard<'_, Splitter> {
    // A panic while holding the lock leaves the walker's state as it was
    // between two reads, which is still consistent.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One link, read front to back.
pub(crate) struct LinkSource {
    shared: Arc<Mutex<Splitter>>,
}

impl Read for LinkSource {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        lock(&self.shared).read(buf)
    }
}

impl Seek for LinkSource {
    fn seek(&mut self, _: SeekFrom) -> io::Result<u64> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "a link is read front to back",
        ))
    }
}

impl MediaSource for LinkSource {
    fn is_seekable(&self) -> bool {
        false
    }

    fn byte_len(&self) -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// An element with a known size.
    fn elem(id: u32, body: &[u8]) -> Vec<u8> {
        let id_bytes = id.to_be_bytes();
        let skip = id_bytes.iter().position(|&b| b != 0).unwrap_or(3);
        let mut e = id_bytes[skip..].to_vec();
        e.push(0x01); // an 8-byte size
        e.extend_from_slice(&(body.len() as u64).to_be_bytes()[1..]);
        e.extend_from_slice(body);
        e
    }

    /// An element of unknown size (children follow).
    fn open_elem(id: u32) -> Vec<u8> {
        let mut e = id.to_be_bytes().to_vec();
        e.extend_from_slice(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        e
    }

    /// A Chrome-like file: EBML header, unknown-size segment, `clusters`
    /// unknown-size clusters of blocks whose payload contains an EBML ID.
    fn chrome_like(clusters: usize, fill: u8) -> Vec<u8> {
        let mut f = elem(EBML, b"webm-ish");
        f.extend(open_elem(SEGMENT));
        f.extend(elem(0x1654_AE6B, b"tracks"));
        for c in 0..clusters {
            f.extend(open_elem(CLUSTER));
            f.extend(elem(0xE7, &[c as u8]));
            for _ in 0..40 {
                let mut payload = vec![fill; 300];
                payload[100..104].copy_from_slice(&EBML.to_be_bytes());
                f.extend(elem(0xA3, &payload));
            }
        }
        f
    }

    fn links(bytes: Vec<u8>) -> Vec<Vec<u8>> {
        let (links, mut src) = Links::new(Box::new(Cursor::new(bytes)));
        let mut out = Vec::new();
        loop {
            let mut part = Vec::new();
            // Small reads, as a reader asking for a few bytes at a time would.
            let mut buf = [0u8; 777];
            loop {
                let n = src.read(&mut buf).expect("reads");
                if n == 0 {
                    break;
                }
                part.extend_from_slice(&buf[..n]);
            }
            out.push(part);
            match links.next() {
                Some(next) => src = next,
                None => break,
            }
        }
        assert_eq!(links.count() as usize, out.len());
        out
    }

    #[test]
    fn one_file_is_one_link_even_with_ebml_ids_in_its_blocks() {
        let file = chrome_like(5, 1);
        assert_eq!(links(file.clone()), vec![file]);
    }

    #[test]
    fn appended_files_are_split_where_each_starts() {
        let a = chrome_like(3, 1);
        let mut b = elem(EBML, b"second");
        b.extend(elem(SEGMENT, &[7u8; 5000])); // known size this time
        let c = chrome_like(2, 3);
        let all = [a.clone(), b.clone(), c.clone()].concat();
        assert_eq!(links(all), vec![a, b, c]);
    }

    #[test]
    fn unparseable_bytes_pass_through() {
        let mut a = chrome_like(2, 1);
        a.extend_from_slice(&[0u8; 100]); // not an element
        a.extend(chrome_like(1, 2)); // hidden behind the junk
        assert_eq!(links(a.clone()), vec![a]);
        // Cut inside an element header.
        let mut cut = chrome_like(1, 1);
        cut.extend_from_slice(&[0x1F, 0x43]);
        assert_eq!(links(cut.clone()), vec![cut]);
    }

    #[test]
    fn element_headers() {
        assert_eq!(element_header(&[0xA3, 0x81]), Some((0xA3, 2, Some(1))));
        assert_eq!(element_header(&[0xA3, 0xFF]), Some((0xA3, 2, None)));
        assert_eq!(
            element_header(&[
                0x1F, 0x43, 0xB6, 0x75, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF
            ]),
            Some((CLUSTER, 12, None))
        );
        assert_eq!(
            element_header(&[0x42, 0x86, 0x40, 0x02]),
            Some((0x4286, 4, Some(2)))
        );
        assert_eq!(element_header(&[0x00, 0x81]), None);
        assert_eq!(element_header(&[0xA3]), None);
    }
}
