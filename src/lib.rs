//! podstitch: a pure-Rust podcast stitching pipeline.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audio;
pub mod decode;
pub mod encode;
pub mod error;
pub mod limiter;
pub mod loudness;
pub mod mixer;
pub mod resample;
pub mod silence;

pub use error::{Error, Result, Stage};
