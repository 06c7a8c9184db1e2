//! SIGINT, SIGTERM and SIGHUP: whatever the process was doing, the files it
//! made that are not finished results are removed and it exits 128+N.
//!
//! Used by `stitch` (its private temporary directory, up to hundreds of MB
//! of spool, and the `.partial` outputs) and by the job (its working
//! directory). The handler runs on its own thread (signal-hook's iterator),
//! so the library stays free of `unsafe` and signal-safety concerns.

use std::path::PathBuf;
use std::sync::Mutex;
use std::thread;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Held by whoever ends the process (the work itself, the job's deadline
/// watchdog or the signal handler), so exactly one of them cleans up,
/// reports and sets the exit status.
pub static ENDING: Mutex<()> = Mutex::new(());

/// On SIGINT, SIGTERM or SIGHUP: removes `dirs` (recursively) and `files`,
/// says so on stderr and exits with 128 + the signal number.
pub fn clean_up_on_signal(dirs: Vec<PathBuf>, files: Vec<PathBuf>) -> Result<(), String> {
    let mut signals =
        Signals::new([SIGTERM, SIGINT, SIGHUP]).map_err(|e| format!("signal handler: {e}"))?;
    thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let _guard = ENDING.lock();
            for d in &dirs {
                let _ = std::fs::remove_dir_all(d);
            }
            for f in &files {
                let _ = std::fs::remove_file(f);
            }
            eprintln!("stopped by signal {sig}: temporary files removed");
            std::process::exit(128 + sig);
        }
    });
    Ok(())
}
