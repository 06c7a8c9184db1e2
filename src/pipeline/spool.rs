//! Temporary storage: a private temporary directory, and the spool that keeps
//! a processed recording between the passes.
//!
//! The first pass decodes and resamples each recording once and spools it
//! untrimmed (for the front end's whole-recording decisions, see
//! [`crate::dsp::front`]), then trims that and spools the result (32-bit
//! float, little-endian, interleaved) while it measures it; calibration reads
//! the trimmed spool through the limiter and spools the limited recording
//! the renders read. Both rewrites run in place ([`Spool::rewrite`]): each
//! writes into the file it reads, behind the reader, so a recording given as
//! a file has one spool on disk at a time (one given as bytes or a reader,
//! which cannot be read twice, keeps its trimmed spool beside the limited
//! one). So an input is decoded once (a second time only in the rare case
//! that needs the trimmed recording again, see `recording.rs`), and memory
//! stays bounded whatever its length.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::audio::{Block, BlockSink, Source};
use crate::error::{Error, Result};

/// A private (mode 0700) temporary directory, removed with everything in it
/// when dropped.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl TempDir {
    /// Creates a new directory under `base` (the system's temporary directory when `None`).
    pub fn new(base: Option<&Path>) -> io::Result<Self> {
        let base = base.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("podstitch-{}-{nanos:x}-{n}", std::process::id()));
            let mut builder = fs::DirBuilder::new();
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                builder.mode(0o700);
            }
            match builder.create(&path) {
                Ok(()) => return Ok(TempDir { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Writes blocks to a spool file.
pub struct SpoolWriter {
    path: PathBuf,
    out: BufWriter<File>,
    bytes: Vec<u8>,
    rate: u32,
    channels: usize,
    frames: u64,
    /// Bytes written so far.
    written: u64,
    /// When rewriting a spool in place: the bytes its reader has handed
    /// out, which the writer may never pass.
    behind: Option<Arc<AtomicU64>>,
}

/// A finished spool file: where it is and what it holds. It opens its own
/// readers, as many as the passes over it need.
#[derive(Debug, Clone, PartialEq)]
pub struct Spool {
    path: PathBuf,
    rate: u32,
    channels: usize,
    frames: u64,
}

impl Spool {
    /// A new reader from its first frame.
    pub fn open(&self) -> Result<SpoolReader> {
        SpoolReader::open(&self.path, self.rate, self.channels, self.frames)
    }

    /// Its length, in frames.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Its channel count.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Its file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rewrites the spool in place, so that the disk never holds it twice:
    /// the file is renamed to `to`, then a reader of what it holds and a
    /// writer of `channels` channels into the same file from its start are
    /// returned. What the writer is given must come from what the reader
    /// has handed out (a stage that keeps the signal's length or shortens
    /// it, with any number of channels up to the spool's): a write that
    /// would overtake the reader, and so overwrite what is not yet read,
    /// fails instead. The old contents are gone once writing starts; the
    /// file is cut to what was written when the writer finishes.
    pub fn rewrite(self, to: &Path, channels: usize) -> Result<(SpoolReader, SpoolWriter)> {
        let name = |p: &Path| p.display().to_string();
        fs::rename(&self.path, to).map_err(|e| Error::io(name(to), "rename spool", e))?;
        let mut reader = SpoolReader::open(to, self.rate, self.channels, self.frames)?;
        let handed = Arc::new(AtomicU64::new(0));
        reader.handed = Some(Arc::clone(&handed));
        let file = OpenOptions::new()
            .write(true)
            .open(to)
            .map_err(|e| Error::io(name(to), "open spool", e))?;
        let mut writer = SpoolWriter::over(to, file, self.rate, channels);
        writer.behind = Some(handed);
        Ok((reader, writer))
    }
}

impl SpoolWriter {
    /// Creates the spool file at `path` for `channels` channels at `rate` Hz.
    pub fn create(path: &Path, rate: u32, channels: usize) -> Result<Self> {
        let file = File::create(path)
            .map_err(|e| Error::io(path.display().to_string(), "create spool", e))?;
        Ok(SpoolWriter::over(path, file, rate, channels))
    }

    /// A writer into `file` (at `path`) from its start.
    fn over(path: &Path, file: File, rate: u32, channels: usize) -> Self {
        SpoolWriter {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 16, file),
            bytes: Vec::new(),
            rate,
            channels,
            frames: 0,
            written: 0,
            behind: None,
        }
    }

    /// Appends a block.
    fn append(&mut self, block: &Block) -> Result<()> {
        self.bytes.clear();
        let n = block.frames();
        if self.channels == 1 {
            self.bytes
                .extend(block.channel(0).iter().flat_map(|x| x.to_le_bytes()));
        } else {
            for i in 0..n {
                for c in 0..self.channels {
                    self.bytes
                        .extend_from_slice(&block.channel(c)[i].to_le_bytes());
                }
            }
        }
        let written = self.written + self.bytes.len() as u64;
        if let Some(read) = &self.behind {
            if written > read.load(Ordering::Acquire) {
                return Err(Error::io(
                    self.path.display().to_string(),
                    "rewrite spool",
                    io::Error::other("internal error: the writer overtook the reader"),
                ));
            }
        }
        self.out
            .write_all(&self.bytes)
            .map_err(|e| Error::io(self.path.display().to_string(), "write spool", e))?;
        self.frames += n as u64;
        self.written = written;
        Ok(())
    }
}

/// `finish` flushes and closes the file and gives back the [`Spool`].
impl BlockSink for SpoolWriter {
    type Output = Spool;

    fn write(&mut self, block: &Block) -> Result<()> {
        self.append(block)
    }

    fn finish(self) -> Result<Spool> {
        let failed = |e| Error::io(self.path.display().to_string(), "write spool", e);
        let file = self.out.into_inner().map_err(|e| failed(e.into_error()))?;
        if self.behind.is_some() {
            // Rewritten in place: what is left of the old contents goes.
            file.set_len(self.written).map_err(failed)?;
        }
        Ok(Spool {
            path: self.path,
            rate: self.rate,
            channels: self.channels,
            frames: self.frames,
        })
    }
}

/// Reads a spool file back as a [`Source`].
pub struct SpoolReader {
    path: PathBuf,
    input: BufReader<File>,
    rate: u32,
    channels: usize,
    remaining: u64,
    bytes: Vec<u8>,
    /// When the spool is being rewritten in place: the bytes handed out so
    /// far, shared with its writer.
    handed: Option<Arc<AtomicU64>>,
}

/// Frames per block read from a spool.
const READ_FRAMES: usize = 4096;

impl SpoolReader {
    /// Opens a spool of `frames` frames of `channels` channels at `rate` Hz.
    fn open(path: &Path, rate: u32, channels: usize, frames: u64) -> Result<Self> {
        let file =
            File::open(path).map_err(|e| Error::io(path.display().to_string(), "open spool", e))?;
        Ok(SpoolReader {
            path: path.to_path_buf(),
            input: BufReader::with_capacity(1 << 16, file),
            rate,
            channels,
            remaining: frames,
            bytes: vec![0; READ_FRAMES * channels * 4],
            handed: None,
        })
    }
}

impl Source for SpoolReader {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn channels(&self) -> usize {
        self.channels
    }

    fn read(&mut self, block: &mut Block) -> Result<bool> {
        block.reset(self.channels);
        let n = (READ_FRAMES as u64).min(self.remaining) as usize;
        if n == 0 {
            return Ok(false);
        }
        let bytes = &mut self.bytes[..n * self.channels * 4];
        self.input
            .read_exact(bytes)
            .map_err(|e| Error::io(self.path.display().to_string(), "read spool", e))?;
        let stride = 4 * self.channels;
        for c in 0..self.channels {
            block.channel_mut(c).extend(
                bytes[4 * c..]
                    .chunks(stride)
                    .map(|s| f32::from_le_bytes([s[0], s[1], s[2], s[3]])),
            );
        }
        self.remaining -= n as u64;
        if let Some(handed) = &self.handed {
            handed.fetch_add(bytes.len() as u64, Ordering::Release);
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spool_round_trip_and_cleanup() {
        let dir = TempDir::new(None).unwrap();
        let path = dir.path().join("s.f32");
        let a: Vec<f32> = (0..10000).map(|i| i as f32 * 0.25).collect();
        let b: Vec<f32> = (0..10000).map(|i| -(i as f32)).collect();
        let mut w = SpoolWriter::create(&path, 44100, 2).unwrap();
        for (ca, cb) in a.chunks(777).zip(b.chunks(777)) {
            w.write(&Block::from_channels(&[ca, cb])).unwrap();
        }
        let spool = w.finish().unwrap();
        assert_eq!((spool.frames(), spool.channels()), (10000, 2));
        let mut r = spool.open().unwrap();
        let (mut ra, mut rb) = (Vec::new(), Vec::new());
        let mut blk = Block::default();
        while r.read(&mut blk).unwrap() {
            ra.extend_from_slice(blk.channel(0));
            rb.extend_from_slice(blk.channel(1));
        }
        assert_eq!((ra, rb), (a, b));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        let kept = dir.path().to_path_buf();
        drop(dir);
        assert!(!kept.exists());
    }

    /// A spool of `frames` stereo frames (left `i`, right `-i`) in `dir`.
    fn stereo(dir: &TempDir, frames: usize) -> Spool {
        let mut w = SpoolWriter::create(&dir.path().join("in.f32"), 44100, 2).unwrap();
        let a: Vec<f32> = (0..frames).map(|i| i as f32).collect();
        let b: Vec<f32> = a.iter().map(|x| -x).collect();
        for (ca, cb) in a.chunks(1000).zip(b.chunks(1000)) {
            w.write(&Block::from_channels(&[ca, cb])).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn a_rewrite_in_place_keeps_what_was_written_and_cuts_the_rest() {
        let dir = TempDir::new(None).unwrap();
        let spool = stereo(&dir, 10000);
        let old = spool.path().to_path_buf();
        let to = dir.path().join("out.f32");
        let (mut r, mut w) = spool.rewrite(&to, 1).unwrap();
        // Keep the left channel of every other block: mono, shorter.
        let mut blk = Block::default();
        let mut keep = false;
        let mut expected = Vec::new();
        while r.read(&mut blk).unwrap() {
            keep = !keep;
            if keep {
                expected.extend_from_slice(blk.channel(0));
                w.write(&Block::from_channels(&[blk.channel(0)])).unwrap();
            }
        }
        let out = w.finish().unwrap();
        assert!(!old.exists());
        assert_eq!(out.path(), to);
        assert_eq!((out.frames(), out.channels()), (expected.len() as u64, 1));
        assert_eq!(fs::metadata(&to).unwrap().len(), expected.len() as u64 * 4);
        assert_eq!(read_all(&out), expected);
    }

    /// Every frame of a mono spool, in order.
    fn read_all(spool: &Spool) -> Vec<f32> {
        let (mut got, mut blk) = (Vec::new(), Block::default());
        let mut r = spool.open().unwrap();
        while r.read(&mut blk).unwrap() {
            got.extend_from_slice(blk.channel(0));
        }
        got
    }

    /// Megabytes rewritten at the same length, the writer right behind the
    /// reader: its buffer reaches the file many times while the reading
    /// goes on, and every sample read is still the original one.
    #[test]
    fn a_rewrite_at_the_same_length_reads_only_originals() {
        let dir = TempDir::new(None).unwrap();
        let n = 1 << 20; // 4 MiB of mono f32, 64 times the buffers
        let original: Vec<f32> = (0..n).map(|i| (i % 1000) as f32).collect();
        let mut w = SpoolWriter::create(&dir.path().join("in.f32"), 44100, 1).unwrap();
        for c in original.chunks(3000) {
            w.write(&Block::from_channels(&[c])).unwrap();
        }
        let spool = w.finish().unwrap();
        let (mut r, mut w) = spool.rewrite(&dir.path().join("out.f32"), 1).unwrap();
        let (mut blk, mut seen) = (Block::default(), Vec::with_capacity(n));
        while r.read(&mut blk).unwrap() {
            seen.extend_from_slice(blk.channel(0));
            let negated: Vec<f32> = blk.channel(0).iter().map(|x| -x - 1.0).collect();
            w.write(&Block::from_channels(&[&negated])).unwrap();
        }
        let out = w.finish().unwrap();
        assert!(
            seen == original,
            "a sample was overwritten before it was read"
        );
        let expected: Vec<f32> = original.iter().map(|x| -x - 1.0).collect();
        assert!(read_all(&out) == expected);
    }

    #[test]
    fn a_rewrite_refuses_to_overwrite_what_is_not_read() {
        let dir = TempDir::new(None).unwrap();
        let spool = stereo(&dir, 10000);
        let (mut r, mut w) = spool.rewrite(&dir.path().join("out.f32"), 2).unwrap();
        let mut blk = Block::default();
        assert!(r.read(&mut blk).unwrap());
        // As much as was read: allowed; one frame more: refused.
        w.write(&blk).unwrap();
        let one = Block::from_channels(&[&[0.5f32][..], &[0.5f32][..]]);
        let e = w.write(&one).unwrap_err().to_string();
        assert!(e.contains("overtook the reader"), "{e}");
    }
}
