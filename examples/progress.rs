//! Embedding podstitch: stitch two recordings in memory, with an
//! [`Observer`] of your own that receives the log lines and the render's
//! progress, then write the three MP3s wherever you like.
//!
//! Run with
//! `cargo run --release --example progress -- fixtures/caller.webm fixtures/response.ogg out/`.
//! (`cargo test` compiles it, so it keeps up with the library.)

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use podstitch::{stitch, Bumpers, Input, Observer, Outputs, Settings};

/// Prints log lines with the time since the start, and the render's
/// progress every 10 %.
struct Progress {
    started: std::time::Instant,
    /// The last tenth printed.
    tenth: AtomicU64,
}

impl Observer for Progress {
    fn log(&self, line: &str) {
        eprintln!("[{:6.2} s] {line}", self.started.elapsed().as_secs_f64());
    }

    fn progress(&self, done: u64, total: u64) {
        let tenth = (done * 10).checked_div(total).unwrap_or(0);
        if self.tenth.fetch_max(tenth, Ordering::Relaxed) < tenth {
            eprintln!(
                "[{:6.2} s] episode {}0 % rendered",
                self.started.elapsed().as_secs_f64(),
                tenth
            );
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(PathBuf::from);
    let (Some(call), Some(response)) = (args.next(), args.next()) else {
        return Err("usage: progress CALL RESPONSE [OUT_DIR]".into());
    };
    let out_dir = args.next().unwrap_or_else(|| PathBuf::from("."));

    let observer = Progress {
        started: std::time::Instant::now(),
        tenth: AtomicU64::new(0),
    };
    let mut outputs = Outputs::in_memory();
    let report = stitch(
        Input::Path(call),
        // Bytes work as well as paths (and so do one-shot readers).
        Input::Bytes(std::fs::read(&response)?),
        Bumpers::embedded(),
        &mut outputs,
        &Settings::default(),
        &observer,
    )?;

    std::fs::create_dir_all(&out_dir)?;
    for (name, bytes) in [
        ("episode.mp3", outputs.episode.get_ref()),
        ("caller-segment.mp3", outputs.caller_segment.get_ref()),
        ("response-segment.mp3", outputs.response_segment.get_ref()),
    ] {
        std::fs::write(out_dir.join(name), bytes)?;
    }
    println!(
        "episode: {:.1} s at {:.2} LUFS, true peak {:.2} dBTP",
        report.episode.duration_s,
        report.episode.integrated_lufs.unwrap_or(f64::NAN),
        report.episode.true_peak_dbtp.unwrap_or(f64::NAN),
    );
    Ok(())
}
