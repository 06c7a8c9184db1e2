//! Where audio comes from and where the MP3s go: inputs as paths, bytes or
//! readers; outputs as files or in-memory buffers (or any [`Sink`]).

use std::fs::{self, File};
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use symphonia::core::io::{MediaSource, ReadOnlySource};

use crate::decode::Decoder;
use crate::error::{Error, Result, Stage};
use crate::settings::Limits;

/// An input recording or bumper.
pub enum Input {
    /// A file on disk.
    Path(PathBuf),
    /// Bytes in memory.
    Bytes(Vec<u8>),
    /// A one-shot reader (read once, front to back).
    Reader(Box<dyn Read + Send + Sync>),
}

impl Input {
    /// A short description for messages: the path, or what kind of input it is.
    pub fn describe(&self) -> String {
        match self {
            Input::Path(p) => p.display().to_string(),
            Input::Bytes(b) => format!("{} bytes in memory", b.len()),
            Input::Reader(_) => "stream".to_string(),
        }
    }

    /// Opens a decoder on this input; `subject` names it in errors.
    pub fn open(self, subject: &str) -> Result<Decoder> {
        match self {
            Input::Path(p) => Decoder::open_path(subject, &p),
            Input::Bytes(b) => Decoder::open_bytes(subject, b),
            Input::Reader(r) => Decoder::open(subject, Box::new(ReadOnlySource::new(r))),
        }
    }

    /// Opens a decoder on this input within `limits`: the size is checked
    /// before anything is decoded (a reader fails once it has delivered
    /// more), then channels, rate and declared duration, and the decoder
    /// stops with an error once more than the duration limit (the bumper
    /// limit when `bumper`) has been decoded.
    pub fn open_within(self, subject: &str, limits: &Limits, bumper: bool) -> Result<Decoder> {
        let cap = limits.max_input_bytes;
        let too_big = |n: u64| {
            Error::stage(
                subject,
                Stage::Read,
                format!(
                    "{n} bytes, more than the limit of {cap} bytes \
                     (Settings.limits.max_input_bytes / --max-input-bytes): \
                     upload a shorter or more compressed recording, or raise the limit"
                ),
            )
        };
        let mut dec = match self {
            Input::Path(p) => {
                let len = fs::metadata(&p)
                    .map_err(|e| Error::io(subject, "open", e))?
                    .len();
                if len > cap {
                    return Err(too_big(len));
                }
                Decoder::open_path(subject, &p)?
            }
            Input::Bytes(b) if b.len() as u64 > cap => return Err(too_big(b.len() as u64)),
            Input::Bytes(b) => Decoder::open_bytes(subject, b)?,
            Input::Reader(r) => {
                let capped = CappedReader {
                    inner: r,
                    left: cap,
                };
                Decoder::open(subject, Box::new(ReadOnlySource::new(capped)))?
            }
        };
        let (max_s, setting) = if bumper {
            (
                limits.max_bumper_duration_s,
                "Settings.limits.max_bumper_duration_s / --max-bumper-duration",
            )
        } else {
            (
                limits.max_duration_s,
                "Settings.limits.max_duration_s / --max-duration",
            )
        };
        dec.enforce(limits, max_s, setting)?;
        Ok(dec)
    }
}

/// A reader that fails once it has delivered more than its limit.
struct CappedReader {
    inner: Box<dyn Read + Send + Sync>,
    left: u64,
}

impl Read for CappedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(io::Error::other(
                "the input is larger than Settings.limits.max_input_bytes (--max-input-bytes)",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

impl From<&Path> for Input {
    fn from(p: &Path) -> Self {
        Input::Path(p.to_path_buf())
    }
}

impl From<PathBuf> for Input {
    fn from(p: PathBuf) -> Self {
        Input::Path(p)
    }
}

impl From<Vec<u8>> for Input {
    fn from(b: Vec<u8>) -> Self {
        Input::Bytes(b)
    }
}

/// The three bumper clips.
pub struct Bumpers {
    /// Plays before the caller; fades out under the caller's first second.
    pub intro: Input,
    /// Plays between caller and response, fading in and out.
    pub interstitial: Input,
    /// Plays after the response, fading in.
    pub outro: Input,
}

/// The file names of the bumpers in an assets directory.
pub const BUMPER_FILES: [&str; 3] = ["intro.mp3", "interstitial.mp3", "outro.mp3"];

impl Bumpers {
    /// The original bumpers built into podstitch (made by `examples/make_bumpers.rs`).
    pub fn embedded() -> Self {
        Bumpers {
            intro: Input::Bytes(include_bytes!("../assets/intro.mp3").to_vec()),
            interstitial: Input::Bytes(include_bytes!("../assets/interstitial.mp3").to_vec()),
            outro: Input::Bytes(include_bytes!("../assets/outro.mp3").to_vec()),
        }
    }

    /// `intro.mp3`, `interstitial.mp3` and `outro.mp3` from `dir`; each must exist.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let [a, b, c] = BUMPER_FILES.map(|f| dir.join(f));
        for p in [&a, &b, &c] {
            if !p.is_file() {
                return Err(Error::MissingFile(p.clone()));
            }
        }
        Ok(Bumpers {
            intro: Input::Path(a),
            interstitial: Input::Path(b),
            outro: Input::Path(c),
        })
    }
}

/// A destination for one MP3: written front to back, then patched at the
/// start (the Info/LAME frame), and read again to measure the result.
pub trait Sink: Write + Seek + Send {
    /// A fresh reader over everything written so far.
    fn reader(&mut self) -> io::Result<Box<dyn MediaSource>>;
    /// Discards everything written (for a re-render).
    fn reset(&mut self) -> io::Result<()>;
}

impl Sink for Cursor<Vec<u8>> {
    fn reader(&mut self) -> io::Result<Box<dyn MediaSource>> {
        Ok(Box::new(Cursor::new(self.get_ref().clone())))
    }

    fn reset(&mut self) -> io::Result<()> {
        self.get_mut().clear();
        self.set_position(0);
        Ok(())
    }
}

/// A [`Sink`] writing a file.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    file: File,
}

impl FileSink {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: &Path) -> Result<Self> {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| Error::io(path.display().to_string(), "create", e))?;
        Ok(FileSink {
            path: path.to_path_buf(),
            file,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Write for FileSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Seek for FileSink {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file.seek(pos)
    }
}

impl Sink for FileSink {
    fn reader(&mut self) -> io::Result<Box<dyn MediaSource>> {
        self.file.flush()?;
        Ok(Box::new(File::open(&self.path)?))
    }

    fn reset(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        Ok(())
    }
}

/// The three outputs.
pub struct Outputs<S: Sink> {
    /// The stitched episode (stereo).
    pub episode: S,
    /// The processed caller segment (mono).
    pub caller_segment: S,
    /// The processed response segment (mono).
    pub response_segment: S,
}

impl Outputs<Cursor<Vec<u8>>> {
    /// Three empty in-memory buffers.
    pub fn in_memory() -> Self {
        Outputs {
            episode: Cursor::new(Vec::new()),
            caller_segment: Cursor::new(Vec::new()),
            response_segment: Cursor::new(Vec::new()),
        }
    }
}

impl FileSink {
    /// The names [`crate::stitch_to_dir`] gives the episode, the caller
    /// segment and the response segment in its directory.
    pub const OUTPUT_FILES: [&'static str; 3] =
        ["episode.mp3", "caller-segment.mp3", "response-segment.mp3"];

    /// Where [`crate::stitch_to_dir`] (and the command, for its other
    /// files) writes `file` of `out_dir` until all of them are complete:
    /// `.FILE.partial` beside it, renamed into place at the end.
    pub fn partial_path(out_dir: &Path, file: &str) -> PathBuf {
        out_dir.join(format!(".{file}.partial"))
    }
}

/// Removes a file if it exists, ignoring errors (for cleanup paths).
pub(crate) fn remove_quietly(p: &Path) {
    let _ = fs::remove_file(p);
}
