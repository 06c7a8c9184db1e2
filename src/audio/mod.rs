//! The one buffer type that carries audio between stages, and the pull
//! interface every source of audio implements.
//!
//! Samples are planar `f32` (one contiguous vector per channel) so that the
//! per-sample loops in the stages are plain slice loops the compiler can
//! vectorise. Blocks are allocated once per stage and reused.

pub(crate) mod ahead;
pub(crate) mod units;

use crate::error::Result;

/// Planar block of `f32` samples, nominally in [-1, 1].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Block {
    chans: Vec<Vec<f32>>,
}

impl Block {
    /// An empty block with `channels` channels and room for `capacity` frames.
    pub fn new(channels: usize, capacity: usize) -> Self {
        Block {
            chans: (0..channels)
                .map(|_| Vec::with_capacity(capacity))
                .collect(),
        }
    }

    /// A block holding copies of the given channel slices (all the same length).
    pub fn from_channels(chans: &[&[f32]]) -> Self {
        Block {
            chans: chans.iter().map(|c| c.to_vec()).collect(),
        }
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.chans.len()
    }

    /// Number of frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.chans.first().map_or(0, Vec::len)
    }

    /// True when the block holds no frames.
    pub fn is_empty(&self) -> bool {
        self.frames() == 0
    }

    /// The samples of channel `c`.
    pub fn channel(&self, c: usize) -> &[f32] {
        &self.chans[c]
    }

    /// The samples of channel `c`, mutable.
    pub fn channel_mut(&mut self, c: usize) -> &mut Vec<f32> {
        &mut self.chans[c]
    }

    /// All channels as vectors, mutable (for stages that append per channel).
    pub fn channels_mut(&mut self) -> &mut [Vec<f32>] {
        &mut self.chans
    }

    /// All channels as slices.
    pub fn planes(&self) -> Vec<&[f32]> {
        self.chans.iter().map(Vec::as_slice).collect()
    }

    /// Drops all frames, keeping the channel count and the allocations.
    pub fn clear(&mut self) {
        for c in &mut self.chans {
            c.clear();
        }
    }

    /// Changes the channel count (clearing the block).
    pub fn reset(&mut self, channels: usize) {
        self.clear();
        self.chans.resize_with(channels, Vec::new);
    }
}

/// A source of audio read block by block, in order.
///
/// `read` replaces the contents of `block` with the next frames (at least one)
/// and returns `Ok(true)`, or leaves it empty and returns `Ok(false)` at the
/// end of the stream.
pub trait Source {
    /// Sample rate in Hz of the frames this source yields.
    fn sample_rate(&self) -> u32;
    /// Channel count of the frames this source yields.
    fn channels(&self) -> usize;
    /// Reads the next frames into `block`; `Ok(false)` at end of stream.
    fn read(&mut self, block: &mut Block) -> Result<bool>;
}

/// Copies the next `chunk` frames of `data` from `pos` into `block`; false at the end.
/// The end of a chain: it takes blocks until the stream ends, then gives
/// back what it gathered (a measurement, a spool, an encoded file). A tuple
/// of sinks is a sink that writes each block to all of them (a fan-out), and
/// `None` is a sink that takes nothing.
pub trait BlockSink {
    /// What [`finish`](BlockSink::finish) gives back.
    type Output;

    /// Takes the next block of the stream.
    fn write(&mut self, block: &Block) -> Result<()>;

    /// Ends the stream.
    fn finish(self) -> Result<Self::Output>;
}

/// Takes nothing: the sink of a fan-out with nothing more to feed.
impl BlockSink for () {
    type Output = ();

    fn write(&mut self, _block: &Block) -> Result<()> {
        Ok(())
    }

    fn finish(self) -> Result<()> {
        Ok(())
    }
}

impl<A: BlockSink, B: BlockSink> BlockSink for (A, B) {
    type Output = (A::Output, B::Output);

    fn write(&mut self, block: &Block) -> Result<()> {
        self.0.write(block)?;
        self.1.write(block)
    }

    fn finish(self) -> Result<Self::Output> {
        Ok((self.0.finish()?, self.1.finish()?))
    }
}

impl<A: BlockSink, B: BlockSink, C: BlockSink> BlockSink for (A, B, C) {
    type Output = (A::Output, B::Output, C::Output);

    fn write(&mut self, block: &Block) -> Result<()> {
        self.0.write(block)?;
        self.1.write(block)?;
        self.2.write(block)
    }

    fn finish(self) -> Result<Self::Output> {
        Ok((self.0.finish()?, self.1.finish()?, self.2.finish()?))
    }
}

impl<A: BlockSink> BlockSink for Option<A> {
    type Output = Option<A::Output>;

    fn write(&mut self, block: &Block) -> Result<()> {
        self.as_mut().map_or(Ok(()), |s| s.write(block))
    }

    fn finish(self) -> Result<Self::Output> {
        self.map(BlockSink::finish).transpose()
    }
}

/// Reads `source` to its end into `sink`, then finishes the sink: the one
/// loop of every pass.
pub fn drain<K: BlockSink>(source: &mut (impl Source + ?Sized), mut sink: K) -> Result<K::Output> {
    let mut block = Block::default();
    while source.read(&mut block)? {
        sink.write(&block)?;
    }
    sink.finish()
}

fn read_chunk(data: &Block, pos: &mut usize, chunk: usize, block: &mut Block) -> bool {
    block.reset(data.channels());
    let end = (*pos + chunk).min(data.frames());
    if end == *pos {
        return false;
    }
    for c in 0..data.channels() {
        block
            .channel_mut(c)
            .extend_from_slice(&data.channel(c)[*pos..end]);
    }
    *pos = end;
    true
}

/// A [`Source`] over audio already in memory, handed out in chunks.
#[derive(Debug, Clone)]
pub struct MemorySource {
    rate: u32,
    data: Block,
    pos: usize,
    chunk: usize,
}

impl MemorySource {
    /// Yields `data` at `rate` Hz, `chunk` frames per read (at least 1).
    pub fn new(rate: u32, data: Block, chunk: usize) -> Self {
        MemorySource {
            rate,
            data,
            pos: 0,
            chunk: chunk.max(1),
        }
    }
}

impl Source for MemorySource {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn channels(&self) -> usize {
        self.data.channels()
    }

    fn read(&mut self, block: &mut Block) -> Result<bool> {
        Ok(read_chunk(&self.data, &mut self.pos, self.chunk, block))
    }
}

/// A [`Source`] that averages all channels of another source into one.
///
/// Recordings are processed in mono: the caller and host speak into one
/// microphone, the segments are delivered mono, and the episode places the
/// voice in the centre. Averaging keeps a dual-mono stereo file unchanged.
pub struct Mono<S: Source> {
    inner: S,
    scratch: Block,
}

impl<S: Source> Mono<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Mono {
            inner,
            scratch: Block::default(),
        }
    }
}

impl<S: Source> Source for Mono<S> {
    fn sample_rate(&self) -> u32 {
        self.inner.sample_rate()
    }

    fn channels(&self) -> usize {
        1
    }

    fn read(&mut self, block: &mut Block) -> Result<bool> {
        if self.inner.channels() == 1 {
            return self.inner.read(block);
        }
        block.reset(1);
        if !self.inner.read(&mut self.scratch)? {
            return Ok(false);
        }
        let n = self.scratch.channels();
        let scale = 1.0 / n as f32;
        let out = block.channel_mut(0);
        out.extend_from_slice(self.scratch.channel(0));
        for c in 1..n {
            for (o, &x) in out.iter_mut().zip(self.scratch.channel(c)) {
                *o += x;
            }
        }
        for o in out.iter_mut() {
            *o *= scale;
        }
        Ok(true)
    }
}

/// A streaming stage: it consumes blocks and appends what it produces, which
/// may lag its input (look-ahead) or be shorter (cuts); `finish` emits what
/// it still holds at the end of the stream.
pub trait Processor {
    /// Processes `input`, appending output frames to `out` (same channel count).
    fn process(&mut self, input: &Block, out: &mut Block);
    /// Ends the stream, appending any frames still held.
    fn finish(&mut self, out: &mut Block);
}

/// A [`Source`] that passes another source through a [`Processor`].
pub struct Processed<S: Source, P: Processor> {
    inner: S,
    stage: P,
    scratch: Block,
    done: bool,
}

impl<S: Source, P: Processor> Processed<S, P> {
    /// Reads `inner` through `stage`.
    pub fn new(inner: S, stage: P) -> Self {
        Processed {
            inner,
            stage,
            scratch: Block::default(),
            done: false,
        }
    }

    /// The stage, for its statistics.
    pub fn stage(&self) -> &P {
        &self.stage
    }
}

impl<S: Source, P: Processor> Source for Processed<S, P> {
    fn sample_rate(&self) -> u32 {
        self.inner.sample_rate()
    }

    fn channels(&self) -> usize {
        self.inner.channels()
    }

    fn read(&mut self, block: &mut Block) -> Result<bool> {
        block.reset(self.inner.channels());
        while block.is_empty() && !self.done {
            if self.inner.read(&mut self.scratch)? {
                self.stage.process(&self.scratch, block);
            } else {
                self.stage.finish(block);
                self.done = true;
            }
        }
        Ok(!block.is_empty())
    }
}

impl<S: Source + ?Sized> Source for Box<S> {
    fn sample_rate(&self) -> u32 {
        (**self).sample_rate()
    }

    fn channels(&self) -> usize {
        (**self).channels()
    }

    fn read(&mut self, block: &mut Block) -> Result<bool> {
        (**self).read(block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, Stage};

    /// Gathers channel 0; fails at the `fail_at`-th block when given.
    #[derive(Default)]
    struct Gather {
        samples: Vec<f32>,
        blocks: usize,
        fail_at: Option<usize>,
    }

    impl BlockSink for Gather {
        type Output = (Vec<f32>, usize);

        fn write(&mut self, block: &Block) -> Result<()> {
            self.blocks += 1;
            if self.fail_at == Some(self.blocks) {
                return Err(Error::stage("gather", Stage::Mix, "full"));
            }
            self.samples.extend_from_slice(block.channel(0));
            Ok(())
        }

        fn finish(self) -> Result<Self::Output> {
            Ok((self.samples, self.blocks))
        }
    }

    fn ramp(n: usize) -> MemorySource {
        let v: Vec<f32> = (0..n).map(|i| i as f32).collect();
        MemorySource::new(1000, Block::from_channels(&[&v]), 7)
    }

    #[test]
    fn drain_feeds_every_sink_of_a_fan_out_every_block() {
        let expect: Vec<f32> = (0..50).map(|i| i as f32).collect();
        let sinks = (Gather::default(), Some(Gather::default()), None::<Gather>);
        let (a, b, c) = drain(&mut ramp(50), sinks).unwrap();
        assert_eq!(a, (expect.clone(), 8)); // 7 blocks of 7 and one of 1
        assert_eq!(b, Some((expect, 8)));
        assert_eq!(c, None);
        let ((), (d, ())) = drain(&mut ramp(0), ((), (Gather::default(), ()))).unwrap();
        assert_eq!(d, (vec![], 0));
    }

    #[test]
    fn a_sinks_error_stops_the_drain() {
        let failing = Gather {
            fail_at: Some(3),
            ..Gather::default()
        };
        let err = drain(&mut ramp(50), (Gather::default(), failing)).unwrap_err();
        assert!(err.to_string().contains("full"), "{err}");
    }
}
