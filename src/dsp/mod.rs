//! The signal processing between decoding and loudness: the front end
//! (high-pass, downmix, threshold), resampling, silence trimming, the mixer
//! and the true-peak limiter. Each stage is a [`crate::audio::Source`] or a
//! [`crate::audio::Processor`] over planar blocks.

pub(crate) mod denoise;
pub(crate) mod front;
pub(crate) mod limiter;
pub(crate) mod mixer;
pub(crate) mod resample;
pub(crate) mod silence;
