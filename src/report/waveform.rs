//! Waveform data for a web player, in the JSON data format of the BBC's
//! audiowaveform (format version 2): `version`, `channels`, `sample_rate`,
//! `samples_per_pixel`, `bits`, `length` (points) and `data`, the minimum
//! and maximum of each point's samples, interleaved (`[min0, max0, min1,
//! max1, …]`). Players such as peaks.js read it directly.
//!
//! Computed from the episode's samples as they go to the encoder (the
//! limited stereo mix, so what the MP3 holds, short of the codec's own
//! error), never by decoding the file again. Decisions:
//!
//! * **One channel**: the average of left and right (what audiowaveform
//!   does unless asked to split channels); the voices sit in the centre.
//! * **100 points per second** by default ([`Waveform::DEFAULT_PIXELS_PER_SECOND`]):
//!   441 samples per point at 44.1 kHz, 360,000 points for an hour. A
//!   player zooms out by merging points; 100 per second is detailed enough
//!   to see words.
//! * **8 bits** (−128..127): a waveform drawn a few hundred pixels high
//!   needs no more, and the file is about half the size of 16-bit data
//!   (about 2.5 MB of JSON for an hour).

use std::fmt::Write as _;

use crate::audio::{Block, BlockSink};
use crate::error::Result;

/// The format version written (audiowaveform's JSON with `channels`).
const VERSION: u32 = 2;

/// Accumulates the minimum and maximum of each point of a stream.
#[derive(Debug, Clone)]
pub(crate) struct WaveformBuilder {
    sample_rate: u32,
    samples_per_pixel: u32,
    /// Interleaved min/max per finished point, as 8-bit values.
    data: Vec<i8>,
    /// The point being filled: samples so far, min, max.
    filled: u32,
    min: f32,
    max: f32,
}

impl WaveformBuilder {
    /// An empty waveform of `pixels_per_second` points per second of audio
    /// at `sample_rate` (at least one sample per point).
    pub fn new(sample_rate: u32, pixels_per_second: u32) -> Self {
        let samples_per_pixel = (sample_rate / pixels_per_second.max(1)).max(1);
        WaveformBuilder {
            sample_rate,
            samples_per_pixel,
            data: Vec::new(),
            filled: 0,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
        }
    }

    /// Adds frames of the stream: one plane per channel (averaged into one).
    pub fn add(&mut self, planes: &[&[f32]]) {
        let frames = planes.iter().map(|p| p.len()).min().unwrap_or(0);
        let scale = 1.0 / planes.len().max(1) as f32;
        for i in 0..frames {
            let v = planes.iter().map(|p| p[i]).sum::<f32>() * scale;
            self.min = self.min.min(v);
            self.max = self.max.max(v);
            self.filled += 1;
            if self.filled == self.samples_per_pixel {
                self.close_point();
            }
        }
    }

    fn close_point(&mut self) {
        self.data.push(to_i8(self.min));
        self.data.push(to_i8(self.max));
        self.filled = 0;
        self.min = f32::INFINITY;
        self.max = f32::NEG_INFINITY;
    }

    /// Ends the stream (a last, shorter point is kept) and returns the
    /// finished waveform.
    pub fn finish(mut self) -> Waveform {
        if self.filled > 0 {
            self.close_point();
        }
        Waveform {
            sample_rate: self.sample_rate,
            samples_per_pixel: self.samples_per_pixel,
            data: self.data,
        }
    }
}

/// Takes every channel (averaged); `finish` gives back the waveform.
impl BlockSink for WaveformBuilder {
    type Output = Waveform;

    fn write(&mut self, block: &Block) -> Result<()> {
        self.add(&block.planes());
        Ok(())
    }

    fn finish(self) -> Result<Waveform> {
        Ok(WaveformBuilder::finish(self))
    }
}

/// A sample in [-1, 1] as an 8-bit value (−128..127), rounded.
fn to_i8(v: f32) -> i8 {
    (v * 128.0).round().clamp(-128.0, 127.0) as i8
}

/// A complete waveform, ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waveform {
    /// Sample rate of the audio it describes.
    pub sample_rate: u32,
    /// Samples per point.
    pub samples_per_pixel: u32,
    /// Interleaved minimum and maximum of each point.
    pub data: Vec<i8>,
}

impl Waveform {
    /// Points per second of audio unless configured otherwise.
    pub const DEFAULT_PIXELS_PER_SECOND: u32 = 100;

    /// Number of points.
    pub fn len(&self) -> usize {
        self.data.len() / 2
    }

    /// True when it has no point.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The audiowaveform JSON document (one line).
    pub fn to_json(&self) -> String {
        let mut s = format!(
            "{{\"version\":{VERSION},\"channels\":1,\"sample_rate\":{},\"samples_per_pixel\":{},\
             \"bits\":8,\"length\":{},\"data\":[",
            self.sample_rate,
            self.samples_per_pixel,
            self.len()
        );
        s.reserve(self.data.len() * 4);
        for (i, v) in self.data.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(s, "{v}");
        }
        s.push_str("]}");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_hold_the_min_and_max_of_the_channel_average() {
        let mut w = WaveformBuilder::new(1000, 100); // 10 samples per point
        assert_eq!(w.samples_per_pixel, 10);
        let left: Vec<f32> = (0..25).map(|i| i as f32 / 25.0).collect();
        let right: Vec<f32> = left.iter().map(|v| -v).collect();
        // Anti-phase averages to zero...
        w.add(&[&left, &right]);
        let f = w.finish();
        assert_eq!(f.len(), 3, "two full points and a last short one");
        assert!(f.data.iter().all(|&v| v == 0));
        // ...in-phase keeps the level; fed in uneven pieces.
        let mut w = WaveformBuilder::new(1000, 100);
        for piece in left.chunks(7) {
            w.add(&[piece, piece]);
        }
        let f = w.finish();
        assert_eq!(f.data, vec![0, 46, 51, 97, 102, 123]);
    }

    #[test]
    fn json_is_audiowaveform_version_2() {
        let mut w = WaveformBuilder::new(44_100, Waveform::DEFAULT_PIXELS_PER_SECOND);
        let tone: Vec<f32> = (0..44_100)
            .map(|i| (i as f32 * 0.05).sin() * if i < 22_050 { 1.0 } else { 0.25 })
            .collect();
        w.add(&[&tone]);
        let f = w.finish();
        let v: serde_json::Value = serde_json::from_str(&f.to_json()).expect("JSON");
        assert_eq!(v["version"], 2);
        assert_eq!(v["channels"], 1);
        assert_eq!(v["sample_rate"], 44_100);
        assert_eq!(v["samples_per_pixel"], 441);
        assert_eq!(v["bits"], 8);
        assert_eq!(v["length"], 100);
        let data = v["data"].as_array().expect("data");
        assert_eq!(data.len(), 200);
        // Full scale in the first half, a quarter in the second.
        assert_eq!(
            (data[0].as_i64(), data[1].as_i64()),
            (Some(-128), Some(127))
        );
        assert_eq!(
            (data[198].as_i64(), data[199].as_i64()),
            (Some(-32), Some(32))
        );
    }

    #[test]
    fn empty_stream_has_no_points() {
        let f = WaveformBuilder::new(44_100, 100).finish();
        assert!(f.is_empty());
        assert!(f.to_json().ends_with("\"length\":0,\"data\":[]}"));
    }
}
