//! Running the front of a chain on another thread.
//!
//! The first pass is a chain of stages that each take part of the time
//! (decode, then resample, trim, measure, spool). [`read_ahead`] runs the
//! front of such a chain on its own thread a few blocks ahead of the rest,
//! so the two halves of one recording use two cores.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::Scope;

use crate::audio::{Block, Source};
use crate::error::{Error, Result, Stage};

enum Msg<H> {
    Header(u32, usize, H),
    Block(Block),
    End,
    Failed(Error),
}

/// A [`Source`] whose blocks are produced on another thread by
/// [`read_ahead`].
pub struct ReadAhead<H> {
    rx: Receiver<Msg<H>>,
    /// The consumer's used blocks, back to the producer to be filled again
    /// (so the steady state allocates nothing).
    spent: SyncSender<Block>,
    subject: String,
    rate: u32,
    channels: usize,
    done: bool,
}

/// Builds a source with `make` on a new thread of `scope` and reads it up to
/// `depth` blocks ahead of the consumer. Returns when the source is built,
/// with the reader and the header `make` returned alongside the source; the
/// error `make` returned, if any, is returned instead.
///
/// Errors of the source arrive in order, as from the source itself. If the
/// producing thread dies without finishing (a panic), the reader reports an
/// internal error naming `subject` instead of a short stream. Dropping the
/// reader early stops the producer at its next block.
pub fn read_ahead<'scope, S, H, F>(
    scope: &'scope Scope<'scope, '_>,
    subject: &str,
    depth: usize,
    make: F,
) -> Result<(ReadAhead<H>, H)>
where
    S: Source,
    H: Send + 'scope,
    F: FnOnce() -> Result<(S, H)> + Send + 'scope,
{
    let (tx, rx) = sync_channel(depth.max(1));
    // Room for every block in flight, so returning one never blocks.
    let (spent, recycled) = sync_channel::<Block>(depth.max(1) + 2);
    scope.spawn(move || {
        // A panic ends the thread without `End`: the reader reports it.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let (mut src, header) = match make() {
                Ok(v) => v,
                Err(e) => {
                    let _ = tx.send(Msg::Failed(e));
                    return;
                }
            };
            if tx
                .send(Msg::Header(src.sample_rate(), src.channels(), header))
                .is_err()
            {
                return;
            }
            loop {
                // Every source resets the block it is given.
                let mut block = recycled.try_recv().unwrap_or_default();
                let msg = match src.read(&mut block) {
                    Ok(true) => Msg::Block(block),
                    Ok(false) => Msg::End,
                    Err(e) => Msg::Failed(e),
                };
                let last = !matches!(msg, Msg::Block(_));
                if tx.send(msg).is_err() || last {
                    return;
                }
            }
        }));
    });
    let mut reader = ReadAhead {
        rx,
        spent,
        subject: subject.to_string(),
        rate: 0,
        channels: 0,
        done: false,
    };
    match reader.rx.recv() {
        Ok(Msg::Header(rate, channels, header)) => {
            reader.rate = rate;
            reader.channels = channels;
            Ok((reader, header))
        }
        Ok(Msg::Failed(e)) => Err(e),
        _ => Err(reader.stopped()),
    }
}

impl<H> ReadAhead<H> {
    fn stopped(&self) -> Error {
        Error::stage(
            &self.subject,
            Stage::Decode,
            "internal error: the decoding thread stopped unexpectedly",
        )
    }
}

impl<H> Source for ReadAhead<H> {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn channels(&self) -> usize {
        self.channels
    }

    fn read(&mut self, block: &mut Block) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        match self.rx.recv() {
            Ok(Msg::Block(b)) => {
                let used = std::mem::replace(block, b);
                // A full return channel or a finished producer only means
                // the block is dropped here instead of reused.
                let _ = self.spent.try_send(used);
                Ok(true)
            }
            Ok(Msg::End) => {
                self.done = true;
                Ok(false)
            }
            Ok(Msg::Failed(e)) => {
                self.done = true;
                Err(e)
            }
            Ok(Msg::Header(..)) | Err(_) => {
                self.done = true;
                Err(self.stopped())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::MemorySource;

    /// Yields its inner source's blocks, then an error or a panic.
    struct Failing {
        inner: MemorySource,
        panic: bool,
    }

    impl Source for Failing {
        fn sample_rate(&self) -> u32 {
            self.inner.sample_rate()
        }
        fn channels(&self) -> usize {
            1
        }
        fn read(&mut self, block: &mut Block) -> Result<bool> {
            if self.inner.read(block)? {
                return Ok(true);
            }
            if self.panic {
                panic!("decoder bug");
            }
            Err(Error::stage("x", Stage::Decode, "broken packet"))
        }
    }

    fn ramp(n: usize) -> Vec<f32> {
        (0..n).map(|i| i as f32).collect()
    }

    fn drain(src: &mut dyn Source) -> (Vec<f32>, Result<bool>) {
        let mut all = Vec::new();
        let mut b = Block::default();
        loop {
            match src.read(&mut b) {
                Ok(true) => all.extend_from_slice(b.channel(0)),
                other => return (all, other),
            }
        }
    }

    #[test]
    fn blocks_arrive_in_order_with_the_header() {
        std::thread::scope(|s| {
            let (mut r, h) = read_ahead(s, "test", 2, || {
                let data = Block::from_channels(&[&ramp(10_000)]);
                Ok((MemorySource::new(8000, data, 333), "header"))
            })
            .unwrap();
            assert_eq!((h, r.sample_rate(), r.channels()), ("header", 8000, 1));
            let (all, end) = drain(&mut r);
            assert_eq!(all, ramp(10_000));
            assert!(!end.unwrap());
        });
    }

    #[test]
    fn errors_and_panics_are_reported_not_truncation() {
        for panic in [false, true] {
            std::thread::scope(|s| {
                let (mut r, ()) = read_ahead(s, "caller recording", 2, move || {
                    let data = Block::from_channels(&[&ramp(1000)]);
                    let inner = MemorySource::new(8000, data, 100);
                    Ok((Failing { inner, panic }, ()))
                })
                .unwrap();
                let (all, end) = drain(&mut r);
                assert_eq!(all.len(), 1000);
                let msg = end.unwrap_err().to_string();
                let want = if panic {
                    "stopped unexpectedly"
                } else {
                    "broken packet"
                };
                assert!(msg.contains(want), "{msg}");
            });
        }
    }

    #[test]
    fn a_failure_to_open_is_returned() {
        std::thread::scope(|s| {
            let r = read_ahead(s, "x", 2, || {
                Err::<(MemorySource, ()), _>(Error::stage("x", Stage::Decode, "not audio"))
            });
            assert!(r.err().unwrap().to_string().contains("not audio"));
        });
    }
}
