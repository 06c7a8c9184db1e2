//! The `podstitch` command: a thin layer over the library.
//!
//! Exit status: 0 on success; 1 on a configuration or input error (the
//! message is one line on stderr); 2 on a usage error; in job mode also 3
//! (download), 4 (decode/audio), 5 (upload), 6 (deadline), 7 (internal),
//! 128+N when stopped by signal N. Started under the name
//! `call-kent-audio-cli` it runs `job` with no arguments needed.

mod cli;
#[cfg(feature = "job")]
mod http;
mod interrupt;
#[cfg(feature = "job")]
mod job;
#[cfg(feature = "job")]
mod jobproc;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use clap::{CommandFactory, Parser};
use cli::{AnalyzeArgs, Cli, Command, StitchArgs};
use interrupt::{clean_up_on_signal, ENDING};
use podstitch::stages::TempDir;
use podstitch::{
    analyze, analyze_with_chart, stitch_to_dir, Analysis, Bumpers, Chart, FileSink, Input,
    Observer, Report, Settings, SilenceSettings,
};

/// The episode's file names in an output directory.
pub(crate) const OUTPUT_FILES: [&str; 3] = FileSink::OUTPUT_FILES;

/// The waveform file's name in the output directory (`--waveform`, and the
/// job's upload).
pub(crate) const WAVEFORM_FILE: &str = "episode.waveform.json";

/// Logs to stderr; draws one progress line there when it is a terminal
/// (never into a pipe or a file), covering every long stage with an ETA.
struct Stderr {
    bar: bool,
    drawn: AtomicBool,
    /// `-q`: nothing but errors.
    quiet: bool,
    /// The stages under way: name, fraction done (None: length unknown,
    /// then seconds of audio done), when it was first seen.
    stages: Mutex<Vec<(String, Progress, Instant)>>,
}

/// How far a stage is.
#[derive(Clone, Copy)]
enum Progress {
    Fraction(f64),
    Seconds(f64),
}

impl Stderr {
    fn new(bar: bool, quiet: bool) -> Self {
        Stderr {
            bar,
            drawn: AtomicBool::new(false),
            quiet,
            stages: Mutex::new(Vec::new()),
        }
    }

    /// Records a stage's progress (removing it once done) and redraws.
    fn update(&self, stage: &str, progress: Option<Progress>) {
        if !self.bar || self.quiet {
            return;
        }
        let Ok(mut stages) = self.stages.lock() else {
            return;
        };
        match (stages.iter().position(|(s, ..)| s == stage), progress) {
            (Some(i), None) => {
                stages.remove(i);
            }
            (Some(i), Some(p)) => stages[i].1 = p,
            (None, Some(p)) => stages.push((stage.to_string(), p, Instant::now())),
            (None, None) => {}
        }
        let line: Vec<String> = stages
            .iter()
            .map(|(name, p, since)| match *p {
                Progress::Fraction(f) => {
                    let elapsed = since.elapsed().as_secs_f64();
                    let eta = if f > 0.02 {
                        let left = elapsed * (1.0 - f) / f;
                        format!(", ETA {}:{:02}", (left / 60.0) as u64, (left % 60.0) as u64)
                    } else {
                        String::new()
                    };
                    format!("{name} {:3.0}%{eta}", f * 100.0)
                }
                Progress::Seconds(s) => format!(
                    "{name} {}:{:02} of audio",
                    (s / 60.0) as u64,
                    (s % 60.0) as u64
                ),
            })
            .collect();
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "\r\x1b[K{}", line.join(" · "));
        let _ = e.flush();
        self.drawn.store(!line.is_empty(), Ordering::Relaxed);
    }
}

impl Observer for Stderr {
    fn log(&self, line: &str) {
        if self.quiet {
            return;
        }
        let mut e = std::io::stderr().lock();
        if self.drawn.swap(false, Ordering::Relaxed) {
            let _ = write!(e, "\r\x1b[K");
        }
        let _ = writeln!(e, "{line}");
    }

    fn progress(&self, done: u64, total: u64) {
        let stage = "rendering and verifying the outputs";
        if total == 0 || done >= total {
            self.update(stage, None);
        } else {
            self.update(stage, Some(Progress::Fraction(done as f64 / total as f64)));
        }
    }

    fn stage_progress(&self, stage: &str, done_s: f64, total_s: Option<f64>) {
        let p = match total_s {
            Some(t) if done_s >= t => None,
            Some(t) if t > 0.0 => Some(Progress::Fraction((done_s / t).clamp(0.0, 1.0))),
            _ => Some(Progress::Seconds(done_s)),
        };
        self.update(stage, p);
    }
}

fn run_stitch(args: &StitchArgs, obs: &Stderr) -> Result<(), String> {
    let mut settings = args.settings.to_settings();
    if args.waveform.is_some() {
        settings.waveform_pixels_per_second = Some(args.settings.waveform_pps);
    }
    settings.validate().map_err(|e| e.to_string())?;
    // Refuse before any work, rather than after minutes of it.
    if !args.force {
        let wave = args.waveform.as_ref().map(|d| d.join(WAVEFORM_FILE));
        if let Some(existing) = OUTPUT_FILES
            .iter()
            .map(|f| args.out.join(f))
            .chain(wave)
            .find(|p| p.exists())
        {
            return Err(format!(
                "{}: already exists: pass --force to overwrite the outputs, or choose another --out",
                existing.display()
            ));
        }
    }
    let bumpers = match &args.assets {
        Some(dir) => Bumpers::from_dir(dir).map_err(|e| e.to_string())?,
        None => Bumpers::embedded(),
    };
    if args.verbose {
        obs.log(&format!("settings: {settings:?}"));
    }
    // Every temporary file of the run lives in this directory, so an
    // interrupt can remove them all, with the unfinished outputs.
    let work = TempDir::new(settings.temp_dir.as_deref())
        .map_err(|e| format!("temporary directory: {e}"))?;
    settings.temp_dir = Some(work.path().to_path_buf());
    let mut partials = OUTPUT_FILES
        .map(|f| FileSink::partial_path(&args.out, f))
        .to_vec();
    let waveform = args.waveform.as_ref().map(|dir| {
        (
            dir.join(WAVEFORM_FILE),
            FileSink::partial_path(dir, WAVEFORM_FILE),
        )
    });
    partials.extend(waveform.iter().map(|(_, partial)| partial.clone()));
    if let Some(dir) = &args.plot {
        partials.extend(PLOT_FILES.map(|f| FileSink::partial_path(dir, f)));
    }
    clean_up_on_signal(vec![work.path().to_path_buf()], partials)?;
    let result = stitch_to_dir(
        &args.call,
        &args.response,
        bumpers,
        &args.out,
        &settings,
        obs,
    );
    // From here a signal waits: the run is over either way.
    let _ending = ENDING.lock();
    drop(work);
    let report = result.map_err(|e| e.to_string())?;
    if let (Some((path, partial)), Some(w)) = (&waveform, &report.episode_waveform) {
        write_atomically(path, partial, w.to_json().as_bytes())?;
        obs.log(&format!(
            "wrote {} ({} points, {} samples each)",
            path.display(),
            w.len(),
            w.samples_per_pixel
        ));
    }
    if let Some(dir) = &args.plot {
        plot_run(args, &settings, &report, dir)?;
        obs.log(&format!(
            "drew episode.svg, caller.svg and response.svg in {}",
            dir.display()
        ));
    }
    if args.verbose {
        log_details(&report, obs);
    }
    obs.log(&format!(
        "wrote {} ({:.2} s), {} and {} to {}",
        OUTPUT_FILES[0],
        report.episode.duration_s,
        OUTPUT_FILES[1],
        OUTPUT_FILES[2],
        args.out.display()
    ));
    println!("{}", report.to_json_line());
    Ok(())
}

/// Writes `bytes` to `partial` (its directory created if missing), then
/// renames it to `path`, so a half-written file never has the final name.
fn write_atomically(path: &Path, partial: &Path, bytes: &[u8]) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("{}: write: {e}", path.display());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    std::fs::write(partial, bytes).map_err(fail)?;
    std::fs::rename(partial, path).map_err(|e| {
        let _ = std::fs::remove_file(partial);
        fail(e)
    })
}

/// The pictures `stitch --plot DIR` draws.
const PLOT_FILES: [&str; 3] = ["episode.svg", "caller.svg", "response.svg"];

/// `stitch --plot DIR`: the episode with its parts, and each recording
/// before (with what was cut) and after.
fn plot_run(
    args: &StitchArgs,
    settings: &Settings,
    report: &Report,
    dir: &Path,
) -> Result<(), String> {
    let silence = settings.silence.clone();
    let chart = |path: &Path, label: &str| -> Result<Chart, String> {
        let name = path.display().to_string();
        let (_, mut c) = analyze_with_chart(&name, Input::Path(path.to_path_buf()), &silence)
            .map_err(|e| e.to_string())?;
        c.title = format!("{label}: {}", c.title);
        c.target = Some((settings.loudness.integrated_lufs, 1.0));
        c.ceiling_dbtp = settings.loudness.true_peak_dbtp;
        Ok(c)
    };
    let write = |file: &str, svg: String| {
        let path = dir.join(file);
        write_atomically(&path, &FileSink::partial_path(dir, file), svg.as_bytes())
    };
    let mut episode = chart(&args.out.join(OUTPUT_FILES[0]), "episode")?;
    episode.parts = report.episode_parts.clone();
    write("episode.svg", episode.to_svg())?;
    for (name, input, segment, rec) in [
        ("caller.svg", &args.call, OUTPUT_FILES[1], &report.caller),
        (
            "response.svg",
            &args.response,
            OUTPUT_FILES[2],
            &report.response,
        ),
    ] {
        let mut before = chart(input, "before")?;
        before.removed = rec.removed.clone();
        let after = chart(&args.out.join(segment), "after")?;
        write(name, Chart::document(&[&before, &after]))?;
    }
    Ok(())
}

/// `-v`: each output's figures and each stage's time.
fn log_details(report: &Report, obs: &dyn Observer) {
    for (name, o) in [
        (OUTPUT_FILES[0], &report.episode),
        (OUTPUT_FILES[1], &report.caller_segment),
        (OUTPUT_FILES[2], &report.response_segment),
    ] {
        let measured = match (o.integrated_lufs, o.true_peak_dbtp) {
            (Some(i), Some(tp)) => format!("{i:.2} LUFS, {tp:.2} dBTP"),
            _ => "not verified".to_string(),
        };
        obs.log(&format!(
            "{name}: {} bytes, {} frames ({:.3} s), {} Hz, {} ch, {measured}",
            o.bytes, o.frames, o.duration_s, o.sample_rate, o.channels
        ));
    }
    let t = &report.timings;
    obs.log(&format!(
        "stages: analyse {:.2} s, calibrate {:.2} s, render {:.2} s, verification tail {:.2} s",
        t.analyse_s, t.calibrate_s, t.render_s, t.verify_s
    ));
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
    // One input: OUT is the picture; several: a directory of them.
    let plot_path = |f: &Path| -> Option<PathBuf> {
        let out = args.plot.as_ref()?;
        if args.files.len() == 1 {
            return Some(out.clone());
        }
        let name = f
            .file_name()
            .map_or_else(|| "input".into(), |n| n.to_string_lossy());
        Some(out.join(format!("{name}.svg")))
    };
    let mut failed = None;
    for f in &args.files {
        let name = f.display().to_string();
        let measured = match plot_path(f) {
            None => analyze(&name, Input::Path(f.clone()), &silence).map(|a| (a, None)),
            Some(p) => {
                analyze_with_chart(&name, Input::Path(f.clone()), &silence).map(|(a, mut c)| {
                    c.target = Some((args.target, args.tolerance));
                    c.ceiling_dbtp = args.ceiling;
                    (a, Some((p, c)))
                })
            }
        };
        let written = measured.map_err(|e| e.to_string()).and_then(|(a, chart)| {
            if let Some((p, c)) = chart {
                write_atomically(&p, &p.with_extension("svg.partial"), c.to_svg().as_bytes())?;
            }
            Ok(a)
        });
        match written {
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

/// Writes generated text to stdout; a reader that stops early (`| head`) is
/// not an error.
fn print_bytes(bytes: &[u8]) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("stdout: {e}")),
        _ => Ok(()),
    }
}

/// The name the sandbox image runs the binary under.
#[cfg(feature = "job")]
const JOB_NAME: &str = "call-kent-audio-cli";

/// Started as [`JOB_NAME`], the command runs `job`.
#[cfg(feature = "job")]
fn job_mode(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let invoked_as = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .is_some_and(|n| n == JOB_NAME);
    if invoked_as {
        args.insert(1, "job".into());
    }
    args
}

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    #[cfg(feature = "job")]
    let args = job_mode(args);
    let cli = Cli::parse_from(args);
    let obs = Stderr::new(
        std::io::stderr().is_terminal(),
        matches!(&cli.command, Command::Stitch(a) if a.quiet),
    );
    let result = match &cli.command {
        Command::Stitch(a) => run_stitch(a, &obs),
        Command::Analyze(a) => run_analyze(a),
        #[cfg(feature = "job")]
        Command::Job(a) => return jobproc::run(a, &obs),
        Command::Completions { shell } => {
            // Generated into memory: clap_complete panics on a write error.
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "podstitch", &mut script);
            print_bytes(&script)
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut page)
                .map_err(|e| format!("man page: {e}"))
                .and_then(|()| print_bytes(&page))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("podstitch: {msg}");
            ExitCode::from(1)
        }
    }
}
