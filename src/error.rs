//! One error type for the whole crate. Every message names what it is about
//! (an input, an output, a setting), the stage that failed and why, in the
//! `subject: stage: why` shape, so a one-line report is always enough.

use std::fmt;
use std::io;

/// The stage of the pipeline in which an error arose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Opening or reading an input's bytes.
    Read,
    /// Recognising the container and codec from the bytes.
    Detect,
    /// Decoding compressed audio to samples.
    Decode,
    /// Converting to the common sample rate.
    Resample,
    /// Silence trimming and pause shortening.
    Silence,
    /// Loudness measurement and levelling.
    Loudness,
    /// Crossfading the episode together.
    Mix,
    /// MP3 encoding.
    Encode,
    /// Writing an output.
    Write,
    /// Measuring a finished output.
    Verify,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Read => "read",
            Stage::Detect => "detect format",
            Stage::Decode => "decode",
            Stage::Resample => "resample",
            Stage::Silence => "silence",
            Stage::Loudness => "loudness",
            Stage::Mix => "mix",
            Stage::Encode => "encode",
            Stage::Write => "write",
            Stage::Verify => "verify",
        })
    }
}

/// Everything that can go wrong in podstitch.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A stage failed on one input or output; `subject` names it (for example
    /// `caller recording (call.webm)`).
    #[error("{subject}: {stage}: {message}")]
    Stage {
        /// What the error is about: an input or output, named for a person.
        subject: String,
        /// Where in the pipeline it failed.
        stage: Stage,
        /// What is wrong, and where possible what would fix it.
        message: String,
    },
    /// An operating-system I/O error on a named file or stream.
    #[error("{subject}: {action}: {source}")]
    Io {
        /// The file or stream concerned.
        subject: String,
        /// What was being attempted ("open", "write", ...).
        action: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A setting is out of its allowed range.
    #[error("settings: {0}")]
    Settings(String),
    /// A file that must exist does not (worded as the sandbox contract words it).
    #[error("Missing required file: {}", .0.display())]
    MissingFile(std::path::PathBuf),
}

impl Error {
    /// Builds a [`Error::Stage`] error.
    pub fn stage(subject: impl Into<String>, stage: Stage, message: impl Into<String>) -> Self {
        Error::Stage {
            subject: subject.into(),
            stage,
            message: message.into(),
        }
    }

    /// Builds an [`Error::Io`] error.
    pub fn io(subject: impl Into<String>, action: &'static str, source: io::Error) -> Self {
        Error::Io {
            subject: subject.into(),
            action,
            source,
        }
    }

    /// The stage this error arose in, when it is a stage error.
    pub fn stage_of(&self) -> Option<Stage> {
        match self {
            Error::Stage { stage, .. } => Some(*stage),
            _ => None,
        }
    }
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
