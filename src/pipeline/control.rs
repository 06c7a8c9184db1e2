//! How the two recordings' threads work together: the first error stops
//! both ([`Halt`], [`first_error`]), a worker's panic becomes an error
//! ([`join`]), and long passes report their progress ([`StageProgress`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Instant;

use crate::audio::units::frames_to_secs;
use crate::audio::{Block, BlockSink};
use crate::error::{Error, Result, Stage};
use crate::report::Observer;

/// The observer and the halt of one attempt, which every pass takes.
pub(crate) type Watch<'a> = (&'a dyn Observer, &'a Halt);

/// Seconds of audio between two progress reports of a stage.
const PROGRESS_STEP_S: u32 = 10;

/// A sink that reports a long stage's progress to the observer every
/// [`PROGRESS_STEP_S`] seconds of audio and once at its end, and stops the
/// pass with an error once the other recording has failed.
pub(crate) struct StageProgress<'a> {
    obs: &'a dyn Observer,
    halt: &'a Halt,
    subject: &'a str,
    /// `None`: no reports, only the halt.
    stage: Option<String>,
    rate: u32,
    total_s: Option<f64>,
    done: u64,
    next: u64,
}

impl<'a> StageProgress<'a> {
    /// Reports "`verb` caller recording" for `subject` ("caller recording
    /// (call.webm)"), out of `total_s` seconds when known.
    pub(crate) fn new(
        (obs, halt): Watch<'a>,
        verb: &str,
        subject: &'a str,
        rate: u32,
        total_s: Option<f64>,
    ) -> Self {
        let what = subject.split(" (").next().unwrap_or(subject);
        StageProgress {
            stage: Some(format!("{verb} {what}")),
            rate,
            total_s,
            ..StageProgress::silent((obs, halt), subject)
        }
    }

    /// Only watches the halt (for a pass whose progress another reports).
    pub(crate) fn silent((obs, halt): Watch<'a>, subject: &'a str) -> Self {
        StageProgress {
            obs,
            halt,
            subject,
            stage: None,
            rate: 1,
            total_s: None,
            done: 0,
            next: 0,
        }
    }
}

impl BlockSink for StageProgress<'_> {
    type Output = ();

    fn write(&mut self, block: &Block) -> Result<()> {
        self.halt.check(self.subject)?;
        self.done += block.frames() as u64;
        if let Some(stage) = &self.stage {
            if self.done >= self.next {
                self.next = self.done + u64::from(PROGRESS_STEP_S * self.rate);
                let done = frames_to_secs(self.done, self.rate);
                self.obs.stage_progress(stage, done, self.total_s);
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        if let Some(stage) = &self.stage {
            let done = frames_to_secs(self.done, self.rate);
            self.obs.stage_progress(stage, done, Some(done));
        }
        Ok(())
    }
}

/// Stops the other recording's work once one has failed: whichever fails
/// first sets it (on an error or a panic), and the other's passes check it
/// at every block, so the first error is reported at once instead of after
/// the other recording's whole pass.
pub(crate) struct Halt(AtomicBool);

/// The message of the error a halted pass returns; [`first_error`] never
/// reports it when the error that caused it is at hand.
const HALTED: &str = "stopped: the other recording failed";

impl Halt {
    pub(crate) fn new() -> Self {
        Halt(AtomicBool::new(false))
    }

    fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// An error once set.
    pub(crate) fn check(&self, subject: &str) -> Result<()> {
        if self.0.load(Ordering::Relaxed) {
            Err(Error::stage(subject, Stage::Decode, HALTED))
        } else {
            Ok(())
        }
    }

    /// Runs `f`, setting the halt if it fails or panics.
    pub(crate) fn guard<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        /// Sets the halt when dropped during a panic.
        struct OnPanic<'a>(&'a Halt);
        impl Drop for OnPanic<'_> {
            fn drop(&mut self) {
                if thread::panicking() {
                    self.0.set();
                }
            }
        }
        let _on_panic = OnPanic(self);
        let r = f();
        if r.is_err() {
            self.set();
        }
        r
    }
}

/// Both results, or the error that came first: a halted pass's error only
/// when there is no other.
pub(crate) fn first_error<A, B>(a: Result<A>, b: Result<B>) -> Result<(A, B)> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(e), Err(f)) if halted(&e) => Err(f),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// Whether `e` is a pass stopped because the other recording failed.
pub(crate) fn halted(e: &Error) -> bool {
    matches!(e, Error::Stage { message, .. } if message == HALTED)
}

/// Runs `f`; its value and how long it took, in seconds.
pub(crate) fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let t = Instant::now();
    f().map(|v| (v, t.elapsed().as_secs_f64()))
}

/// The thread's result; a panic in it as an internal error.
pub(crate) fn join<T>(h: thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    h.join().unwrap_or_else(|_| {
        Err(Error::stage(
            "podstitch",
            Stage::Mix,
            "internal error: a worker thread panicked",
        ))
    })
}
