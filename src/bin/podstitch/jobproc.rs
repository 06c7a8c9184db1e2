//! The process around the job: configuration from flags and environment,
//! the private temporary directory, SIGTERM, the overall deadline and the
//! exit status. The work itself is `podstitch::job`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Instant;

use podstitch::stages::TempDir;
use podstitch::Observer;

use crate::cli::JobArgs;
use crate::interrupt::{clean_up_on_signal, ENDING};
use crate::job::{self, FailureKind};

/// What reaching the deadline means, which depends on whether the uploads
/// had begun.
fn deadline_message(deadline: std::time::Duration, uploading: &AtomicBool) -> String {
    if uploading.load(Ordering::SeqCst) {
        format!(
            "the job deadline of {} s passed during the upload; the uploads were stopped, so \
             the outputs at the presigned URLs may be missing or incomplete: run the job again \
             (raise --deadline if the transfers are slow)",
            deadline.as_secs_f64()
        )
    } else {
        format!(
            "the job deadline of {} s passed; stopped before uploading to URLs that may have expired",
            deadline.as_secs_f64()
        )
    }
}

fn exit_with(kind: FailureKind, message: &str) -> ExitCode {
    eprintln!("{message}");
    ExitCode::from(kind.exit_code())
}

/// Runs the job as the sandbox does; returns the process exit status.
pub fn run(args: &JobArgs, obs: &dyn Observer) -> ExitCode {
    let started = Instant::now();
    let env = |name: &str| std::env::var(name).ok();
    let mut settings = args.settings.to_settings();
    // Kept only when the job has a waveform URL (job::configure decides).
    settings.waveform_pixels_per_second = Some(args.settings.waveform_pps);
    let (http, deadline) = match (args.http(), args.deadline()) {
        (Ok(h), Ok(d)) => (h, d),
        (Err(e), _) | (_, Err(e)) => return exit_with(FailureKind::Config, &e),
    };
    let cfg = match job::configure(&args.overrides(), &env, http, settings, deadline) {
        Ok(c) => c,
        Err(e) => return exit_with(e.kind, &e.message),
    };
    let tmp = match TempDir::new(cfg.settings.temp_dir.as_deref()) {
        Ok(t) => t,
        Err(e) => return exit_with(FailureKind::Internal, &format!("temporary directory: {e}")),
    };
    let path = tmp.path().to_path_buf();

    // A signal removes the temporary files and ends the process at once:
    // nothing more is downloaded or uploaded.
    if let Err(e) = clean_up_on_signal(vec![path.clone()], Vec::new()) {
        return exit_with(FailureKind::Internal, &e);
    }
    // The deadline: stop rather than upload to presigned URLs that expired.
    let (done, watch) = mpsc::channel::<()>();
    let watch_path: PathBuf = path.clone();
    let uploading = Arc::new(AtomicBool::new(false));
    let watch_uploading = Arc::clone(&uploading);
    thread::spawn(move || {
        let left = deadline.saturating_sub(started.elapsed());
        if let Err(mpsc::RecvTimeoutError::Timeout) = watch.recv_timeout(left) {
            let _guard = ENDING.lock();
            let _ = std::fs::remove_dir_all(&watch_path);
            eprintln!("{}", deadline_message(deadline, &watch_uploading));
            std::process::exit(i32::from(FailureKind::Deadline.exit_code()));
        }
    });

    let result = job::run(&cfg, &path, started, obs, &uploading);
    let _guard = ENDING.lock();
    let _ = done.send(());
    drop(tmp);
    match result {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        // A transfer cut short by the deadline is the deadline's failure.
        Err(_) if started.elapsed() >= deadline => exit_with(
            FailureKind::Deadline,
            &deadline_message(deadline, &uploading),
        ),
        Err(e) => exit_with(e.kind, &e.message),
    }
}
