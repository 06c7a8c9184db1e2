#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ahead;
pub mod analyze;
pub mod audio;
mod balance;
pub mod calibrate;
pub mod chunked;
pub mod decode;
pub mod denoise;
pub mod encode;
pub mod error;
pub mod front;
pub mod http;
pub mod id3;
pub mod io;
pub mod job;
pub mod limiter;
pub mod loudness;
pub mod mixer;
pub mod pipeline;
pub mod plot;
pub mod report;
pub mod resample;
pub mod settings;
pub mod silence;
pub mod spool;
mod verify;
pub mod waveform;

pub use error::{Error, Result, Stage};
pub use io::{Bumpers, FileSink, Input, Outputs, Sink};
pub use pipeline::{stitch, stitch_to_dir};
pub use report::{Observer, Quiet, Report};
pub use settings::{Limits, Settings};
