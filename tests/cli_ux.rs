//! Issue 16: what a user of `podstitch stitch` expects of a command line
//! tool: an interrupt leaves nothing behind, existing outputs are not
//! overwritten by accident, `-q`/`-v`, completions and a man page.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{decode_bytes, fixture, noise, wav_bytes};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_podstitch"))
}

/// A fresh directory of this test's own, removed by [`Scratch::drop`].
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("podstitch-ux-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("scratch");
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stitch(out: &Path, extra: &[&str]) -> Output {
    bin()
        .args(["stitch", "--call"])
        .arg(fixture("caller.webm"))
        .arg("--response")
        .arg(fixture("response.ogg"))
        .arg("-o")
        .arg(out)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn existing_outputs_are_refused_before_any_work_unless_forced() {
    let s = Scratch::new("force");
    let out = s.0.join("out");
    let first = stitch(&out, &["-q"]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let before = std::fs::read(out.join("episode.mp3")).expect("episode");
    // A caller file that does not exist: the refusal comes before it is read.
    let again = bin()
        .args(["stitch", "--call", "/nonexistent.webm", "--response"])
        .arg(fixture("response.ogg"))
        .arg("--out")
        .arg(&out)
        .output()
        .expect("runs");
    assert_eq!(again.status.code(), Some(1));
    let err = text(&again.stderr);
    assert!(
        err.contains("episode.mp3: already exists") && err.contains("--force"),
        "{err}"
    );
    assert!(
        !err.contains("nonexistent"),
        "refused before opening inputs: {err}"
    );
    assert_eq!(
        std::fs::read(out.join("episode.mp3")).expect("kept"),
        before
    );
    let forced = stitch(&out, &["--force", "-q"]);
    assert!(forced.status.success(), "{}", text(&forced.stderr));
}

#[test]
fn quiet_prints_only_the_json_line_and_verbose_adds_detail() {
    let s = Scratch::new("quiet");
    let quiet = stitch(&s.0.join("q"), &["--quiet"]);
    assert!(quiet.status.success());
    assert!(quiet.stderr.is_empty(), "{}", text(&quiet.stderr));
    assert_eq!(text(&quiet.stdout).lines().count(), 1);
    let normal = stitch(&s.0.join("n"), &[]);
    let verbose = stitch(&s.0.join("v"), &["-v"]);
    assert!(verbose.status.success());
    let (n, v) = (text(&normal.stderr), text(&verbose.stderr));
    assert!(v.lines().count() > n.lines().count(), "{n}\n---\n{v}");
    assert!(
        v.contains("stages: analyse") && v.contains("episode.mp3: "),
        "{v}"
    );
    assert!(!n.contains("stages: analyse"), "{n}");
    // Progress is drawn only on a terminal: nothing of it reaches a pipe.
    for err in [&n, &v] {
        assert!(!err.contains('\r') && !err.contains('\u{1b}'), "{err:?}");
        assert!(!err.contains("ETA") && !err.contains("analysing"), "{err}");
    }
    assert_eq!(text(&verbose.stdout).lines().count(), 1);
    let both = stitch(&s.0.join("b"), &["-q", "-v"]);
    assert_eq!(both.status.code(), Some(2), "-q and -v conflict");
}

#[test]
fn completions_and_man_page_are_generated_on_demand() {
    for shell in ["bash", "zsh", "fish"] {
        let o = bin().args(["completions", shell]).output().expect("runs");
        assert!(o.status.success(), "{shell}");
        let script = text(&o.stdout);
        assert!(
            script.contains("podstitch") && script.contains("response"),
            "{shell}"
        );
        assert!(
            script.contains("completions") && script.contains("analyze"),
            "{shell}"
        );
    }
    let man = bin().arg("man").output().expect("runs");
    assert!(man.status.success());
    let page = text(&man.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH podstitch"),
        "{page}"
    );
    assert!(
        page.contains("stitch") && page.contains("analyze"),
        "{page}"
    );
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            found.push(p);
        }
    }
    found
}

/// Starts `stitch` on a 6-minute response with its own TMPDIR.
fn start_long_stitch(s: &Scratch) -> (Child, PathBuf, PathBuf) {
    let rate = 16_000;
    let speechy: Vec<f32> = noise(rate * 360, 0.3, 11)
        .iter()
        .enumerate()
        .map(|(i, x)| x * (0.6 + 0.4 * ((i as f32) / 2000.0).sin()))
        .collect();
    let response = s.0.join("long.wav");
    std::fs::write(&response, wav_bytes(rate as u32, &[&speechy])).expect("wav");
    let (tmp, out) = (s.0.join("tmp"), s.0.join("out"));
    std::fs::create_dir_all(&tmp).expect("tmp");
    let child = bin()
        .args(["stitch", "-q", "--call"])
        .arg(fixture("caller.webm"))
        .arg("--response")
        .arg(&response)
        .arg("--out")
        .arg(&out)
        .env("TMPDIR", &tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    (child, tmp, out)
}

/// Waits (at most 60 s) until `ready` holds for the files under `tmp` and
/// the episode's partial file.
fn wait_for(tmp: &Path, out: &Path, ready: impl Fn(&[PathBuf], Option<u64>) -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(60) {
        let partial = std::fs::metadata(out.join(".episode.mp3.partial"))
            .ok()
            .map(|m| m.len());
        if ready(&files_under(tmp), partial) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

fn interrupt_and_check(sig: i32, in_first_pass: bool) {
    let s = Scratch::new(&format!("sig{sig}-{in_first_pass}"));
    let (child, tmp, out) = start_long_stitch(&s);
    let reached = if in_first_pass {
        // The response is being spooled; nothing of the episode is encoded.
        wait_for(&tmp, &out, |files, partial| {
            partial == Some(0) && files.iter().any(|f| f.ends_with("response.f32"))
        })
    } else {
        // The episode's MP3 has begun.
        wait_for(&tmp, &out, |_, partial| partial.is_some_and(|n| n > 0))
    };
    assert!(reached, "the stage was never reached");
    let killed = Command::new("kill")
        .args([format!("-{sig}"), child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let o = child.wait_with_output().expect("ends");
    assert_eq!(o.status.code(), Some(128 + sig), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("temporary files removed"));
    let left = files_under(&tmp);
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
    let outputs = files_under(&out);
    assert!(
        outputs.is_empty(),
        "left in the output directory: {outputs:?}"
    );
}

#[test]
fn sigint_in_the_first_pass_leaves_nothing() {
    interrupt_and_check(2, true);
}

#[test]
fn sigterm_while_encoding_leaves_nothing() {
    interrupt_and_check(15, false);
}

#[test]
fn sighup_while_encoding_leaves_nothing() {
    interrupt_and_check(1, false);
}

/// Issue 16, item 2: `--waveform DIR` writes audiowaveform JSON computed
/// while encoding; checked against the decoded episode (a decode the
/// waveform code never sees).
#[test]
fn waveform_json_matches_the_decoded_episode() {
    let s = Scratch::new("wave");
    let (out, wave_dir) = (s.0.join("out"), s.0.join("wave"));
    let o = stitch(
        &out,
        &["-q", "--waveform", wave_dir.to_str().expect("utf-8")],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let w: serde_json::Value = serde_json::from_slice(
        &std::fs::read(wave_dir.join("episode.waveform.json")).expect("file"),
    )
    .expect("JSON");
    assert_eq!(w["version"], 2);
    assert_eq!(w["channels"], 1);
    assert_eq!(w["sample_rate"], 44_100);
    assert_eq!(w["bits"], 8);
    let spp = w["samples_per_pixel"].as_u64().expect("spp") as usize;
    assert_eq!(spp, 441, "100 points per second by default");
    let (_, episode) = decode_bytes(
        "episode",
        std::fs::read(out.join("episode.mp3")).expect("mp3"),
    );
    let n = episode.frames();
    assert_eq!(w["length"].as_u64(), Some(n.div_ceil(spp) as u64));
    let data: Vec<i64> = w["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|v| v.as_i64().expect("int"))
        .collect();
    assert_eq!(data.len(), 2 * n.div_ceil(spp));
    // Each point against the decoded MP3's average of the channels.
    let mut diffs: Vec<i64> = Vec::new();
    for (p, pair) in data.chunks(2).enumerate() {
        let range = p * spp..((p + 1) * spp).min(n);
        let mono = range.map(|i| (episode.channel(0)[i] + episode.channel(1)[i]) / 2.0);
        let (lo, hi) = mono.fold((f32::MAX, f32::MIN), |(l, h), v| (l.min(v), h.max(v)));
        let q = |v: f32| (v * 128.0).round().clamp(-128.0, 127.0) as i64;
        diffs.push((pair[0] - q(lo)).abs().max((pair[1] - q(hi)).abs()));
    }
    diffs.sort_unstable();
    let (median, p99) = (diffs[diffs.len() / 2], diffs[diffs.len() * 99 / 100]);
    println!("waveform vs decoded episode: median {median}, 99th percentile {p99} (8-bit units)");
    assert!(
        median <= 1 && p99 <= 3,
        "median {median}, 99th percentile {p99}"
    );
    assert!(
        data.iter().any(|&v| v.abs() > 30),
        "the waveform shows the voices"
    );
}

/// Issue 16, item 1: `analyze --plot` draws an SVG whose marks sit where the
/// generated signal puts them (a 3 s pause after 2 s of tone).
#[test]
fn analyze_plot_is_svg_with_marks_where_the_signal_puts_them() {
    let s = Scratch::new("plot");
    let rate = 16_000usize;
    let tone = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|i| 0.3 * (i as f32 * 2.0 * std::f32::consts::PI * 440.0 / rate as f32).sin())
            .collect()
    };
    let signal = [tone(2 * rate), vec![0.0; 3 * rate], tone(2 * rate)].concat();
    let wav = s.0.join("pause.wav");
    std::fs::write(&wav, wav_bytes(rate as u32, &[&signal])).expect("wav");
    let svg_path = s.0.join("pause.svg");
    let o = bin()
        .arg("analyze")
        .arg(&wav)
        .arg("--plot")
        .arg(&svg_path)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let svg = std::fs::read_to_string(&svg_path).expect("svg");
    let doc = roxmltree::Document::parse(&svg).expect("well-formed XML");
    let attr =
        |n: &roxmltree::Node, a: &str| -> f64 { n.attribute(a).expect(a).parse().expect("number") };
    let class = |c: &str| {
        doc.descendants()
            .filter(|n| n.attribute("class") == Some(c))
            .collect::<Vec<_>>()
    };
    let pauses = class("pause");
    assert_eq!(pauses.len(), 1, "one pause over 1 s");
    let p = &pauses[0];
    assert!((attr(p, "data-start-s") - 2.0).abs() < 0.03, "{svg}");
    assert!((attr(p, "data-duration-s") - 3.0).abs() < 0.05);
    let duration = signal.len() as f64 / rate as f64;
    // Within the detector's resolution (its 20 ms window, 30 ms allowed).
    let x = podstitch::Chart::x_of(2.0, duration);
    let slack = podstitch::Chart::x_of(2.03, duration) - x;
    assert!(
        (attr(p, "x") - x).abs() < slack,
        "pause drawn at {} not {x}",
        attr(p, "x")
    );
    let target = &class("target")[0];
    assert_eq!(
        attr(target, "y1"),
        (podstitch::Chart::y_of(-16.0) * 100.0).round() / 100.0
    );
    // One point per 100 ms in each series.
    for series in ["short-term", "momentary"] {
        let pts = class(series)[0].attribute("points").expect("points");
        assert_eq!(pts.split_whitespace().count(), 70, "{series}");
    }
    // The tone's peaks (-10.5 dBTP) are far from the ceiling: no peak marks.
    assert!(class("peak").is_empty());

    // Several inputs: OUT is a directory of pictures.
    let dir = s.0.join("plots");
    let o = bin()
        .arg("analyze")
        .arg(&wav)
        .arg(fixture("caller.webm"))
        .arg("--plot")
        .arg(&dir)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", text(&o.stderr));
    for name in ["pause.wav.svg", "caller.webm.svg"] {
        let svg = std::fs::read_to_string(dir.join(name)).expect(name);
        roxmltree::Document::parse(&svg).expect("well-formed XML");
    }
}

/// Issue 16, item 4: on a terminal (a pseudo-terminal from util-linux's
/// `script`) the progress line covers the analysis, the calibration and the
/// render with its ETA.
#[test]
fn progress_on_a_terminal_covers_every_long_stage() {
    let s = Scratch::new("tty");
    let rate = 16_000usize;
    let long: Vec<f32> = noise(rate * 120, 0.3, 5)
        .iter()
        .enumerate()
        .map(|(i, x)| x * (0.6 + 0.4 * ((i as f32) / 3000.0).sin()))
        .collect();
    let response = s.0.join("long.wav");
    std::fs::write(&response, wav_bytes(rate as u32, &[&long])).expect("wav");
    let cmd = format!(
        "'{}' stitch --call '{}' --response '{}' -o '{}' > /dev/null",
        env!("CARGO_BIN_EXE_podstitch"),
        fixture("caller.webm").display(),
        response.display(),
        s.0.join("out").display()
    );
    let o = Command::new("script")
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let screen = text(&o.stdout);
    for needle in [
        "analysing caller recording",
        "analysing response recording",
        "calibrating",
        "rendering and verifying the outputs",
        "ETA",
    ] {
        assert!(screen.contains(needle), "{needle} missing from {screen:?}");
    }
}

/// Issue 16, item 1: `stitch --plot DIR` marks the episode's parts and
/// crossfades where the decoded lengths of the bumpers and of the delivered
/// segments, minus the 1 s fades, put them; each recording's picture shows
/// before (with what was cut) and after.
#[test]
fn stitch_plot_marks_parts_where_the_decoded_lengths_put_them() {
    let s = Scratch::new("stitchplot");
    let (out, plots) = (s.0.join("out"), s.0.join("plots"));
    let o = stitch(&out, &["-q", "--plot", plots.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON line");
    let secs = |bytes: Vec<u8>| {
        let (rate, b) = decode_bytes("part", bytes);
        b.frames() as f64 / f64::from(rate)
    };
    let asset = |f: &str| {
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets").join(f)).expect(f)
    };
    let lens = [
        secs(asset("intro.mp3")),
        secs(std::fs::read(out.join("caller-segment.mp3")).expect("segment")),
        secs(asset("interstitial.mp3")),
        secs(std::fs::read(out.join("response-segment.mp3")).expect("segment")),
        secs(asset("outro.mp3")),
    ];
    let svg = std::fs::read_to_string(plots.join("episode.svg")).expect("episode.svg");
    let doc = roxmltree::Document::parse(&svg).expect("well-formed XML");
    let num =
        |n: &roxmltree::Node, a: &str| -> f64 { n.attribute(a).expect(a).parse().expect("number") };
    let parts: Vec<_> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("part"))
        .collect();
    assert_eq!(parts.len(), 5);
    let mut start = 0.0;
    for (k, p) in parts.iter().enumerate() {
        assert!(
            (num(p, "data-start-s") - start).abs() < 0.001,
            "part {k} starts at {}, not {start}",
            num(p, "data-start-s")
        );
        assert!(
            (num(p, "data-end-s") - (start + lens[k])).abs() < 0.001,
            "part {k} ends"
        );
        start += lens[k] - 1.0;
    }
    let fades: Vec<_> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("crossfade"))
        .collect();
    assert_eq!(fades.len(), 4);
    for f in &fades {
        assert!((num(f, "data-end-s") - num(f, "data-start-s") - 1.0).abs() < 0.001);
    }
    for (file, who) in [("caller.svg", "caller"), ("response.svg", "response")] {
        let svg = std::fs::read_to_string(plots.join(file)).expect(file);
        let doc = roxmltree::Document::parse(&svg).expect("well-formed XML");
        let charts = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("chart"))
            .count();
        assert_eq!(charts, 2, "{file}: before and after");
        let removed: f64 = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("removed"))
            .map(|n| num(&n, "data-duration-s"))
            .sum();
        let r = &report[who];
        let expected = r["leadingTrimmedS"].as_f64().expect("lead")
            + r["pauseRemovedS"].as_f64().expect("pauses");
        assert!(
            (removed - expected).abs() < 0.01,
            "{file}: {removed} s drawn as cut, {expected} s reported"
        );
        assert!(removed > 0.0, "{file}: the fixtures have silence to cut");
    }
}
