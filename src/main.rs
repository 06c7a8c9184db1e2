//! The `podstitch` command: a thin layer over the library.
//!
//! Exit status: 0 on success; 1 on a configuration or input error (the
//! message is one line on stderr); 2 on a usage error; in job mode also 3
//! (download), 4 (decode/audio), 5 (upload), 6 (deadline), 7 (internal),
//! 128+N when stopped by signal N. Started under the name
//! `call-kent-audio-cli` it runs `job` with no arguments needed.

mod cli;
mod jobproc;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;
use cli::{AnalyzeArgs, Cli, Command, StitchArgs};
use podstitch::analyze::{analyze, Analysis};
use podstitch::silence::SilenceSettings;
use podstitch::{stitch_to_dir, Bumpers, Input, Observer};

/// Logs to stderr; draws a progress bar there when it is a terminal.
struct Stderr {
    bar: bool,
    drawn: AtomicBool,
}

impl Observer for Stderr {
    fn log(&self, line: &str) {
        let mut e = std::io::stderr().lock();
        if self.drawn.swap(false, Ordering::Relaxed) {
            let _ = write!(e, "\r\x1b[K");
        }
        let _ = writeln!(e, "{line}");
    }

    fn progress(&self, done: u64, total: u64) {
        if !self.bar || total == 0 {
            return;
        }
        let frac = (done as f64 / total as f64).clamp(0.0, 1.0);
        let filled = (frac * 30.0).round() as usize;
        let mut e = std::io::stderr().lock();
        let _ = write!(
            e,
            "\rrendering [{}{}] {:3.0}%",
            "#".repeat(filled),
            " ".repeat(30 - filled),
            frac * 100.0
        );
        let _ = e.flush();
        self.drawn.store(true, Ordering::Relaxed);
    }
}

fn run_stitch(args: &StitchArgs, obs: &Stderr) -> Result<(), String> {
    let settings = args.settings.to_settings();
    let bumpers = match &args.assets {
        Some(dir) => Bumpers::from_dir(dir).map_err(|e| e.to_string())?,
        None => Bumpers::embedded(),
    };
    let report = stitch_to_dir(
        &args.call,
        &args.response,
        bumpers,
        &args.out,
        &settings,
        obs,
    )
    .map_err(|e| e.to_string())?;
    obs.log(&format!(
        "wrote {} ({:.2} s), {} and {} to {}",
        podstitch::io::OUTPUT_FILES[0],
        report.episode.duration_s,
        podstitch::io::OUTPUT_FILES[1],
        podstitch::io::OUTPUT_FILES[2],
        args.out.display()
    ));
    println!("{}", report.to_json_line());
    Ok(())
}

fn print_text(a: &Analysis) {
    println!("{}", a.file);
    println!("  format           {}", a.format);
    println!(
        "  duration         {:.3} s ({} frames)",
        a.duration_s, a.frames
    );
    println!(
        "  sample rate      {} Hz, {} channel(s)",
        a.sample_rate, a.channels
    );
    println!(
        "  loudness         {:.2} LUFS, LRA {:.2} LU",
        a.integrated_lufs, a.lra_lu
    );
    println!("  true peak        {:.2} dBTP", a.true_peak_dbtp);
    println!("  leading silence  {:.3} s", a.leading_silence_s);
    if a.long_pauses.is_empty() {
        println!("  long pauses      none");
    }
    for p in &a.long_pauses {
        println!(
            "  long pause       at {:.3} s, {:.3} s",
            p.start_s, p.duration_s
        );
    }
}

fn run_analyze(args: &AnalyzeArgs) -> Result<(), String> {
    let silence = SilenceSettings {
        threshold_db: args.silence_threshold,
        max_pause_s: args.max_pause,
        ..SilenceSettings::default()
    };
    let mut failed = None;
    for f in &args.files {
        let name = f.display().to_string();
        match analyze(&name, Input::Path(f.clone()), &silence) {
            Ok(a) if args.json => println!("{}", serde_json::to_string(&a).unwrap_or_default()),
            Ok(a) => print_text(&a),
            Err(e) => {
                eprintln!("{e}");
                failed = Some(format!("could not analyse {name} (see above)"));
            }
        }
    }
    failed.map_or(Ok(()), Err)
}

/// The name the sandbox image runs the binary under.
const JOB_NAME: &str = "call-kent-audio-cli";

fn main() -> ExitCode {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let invoked_as = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .is_some_and(|n| n == JOB_NAME);
    if invoked_as {
        args.insert(1, "job".into());
    }
    let cli = Cli::parse_from(args);
    let obs = Stderr {
        bar: std::io::stderr().is_terminal(),
        drawn: AtomicBool::new(false),
    };
    let result = match &cli.command {
        Command::Stitch(a) => run_stitch(a, &obs),
        Command::Analyze(a) => run_analyze(a),
        Command::Job(a) => return jobproc::run(a, &obs),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("podstitch: {msg}");
            ExitCode::from(1)
        }
    }
}
