//! The job mode against real HTTP servers on 127.0.0.1, run exactly as the
//! worker runs it: the binary under the name `call-kent-audio-cli`, no
//! arguments, configuration only in the environment (plus short timeouts as
//! flags where a test needs them).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use podstitch::stages::Decoder;
use podstitch::stages::{Block, Source};

const SECRET: &str = "X-Amz-Signature=SECRETSECRET0123";

/// What the test server answers.
#[derive(Clone)]
enum Reply {
    /// Status and body.
    Data(u16, Vec<u8>),
    /// Hold the request this long without answering.
    Stall(Duration),
    /// 302 to this location.
    Redirect(String),
    /// 200 with this body (its full Content-Length announced), sent one
    /// byte per interval.
    Trickle(Vec<u8>, Duration),
}

/// A body that yields one byte per interval.
struct Slow {
    data: Vec<u8>,
    at: usize,
    every: Duration,
}

impl std::io::Read for Slow {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(&b) = self.data.get(self.at) else {
            return Ok(0);
        };
        if buf.is_empty() {
            return Ok(0);
        }
        thread::sleep(self.every);
        buf[0] = b;
        self.at += 1;
        Ok(1)
    }
}

/// One request the server saw.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    url: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

type Route = Arc<dyn Fn(&str, &str, usize) -> Reply + Send + Sync>;

struct TestServer {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestServer {
    /// `route(method, path, nth)` decides each answer; `nth` counts earlier
    /// requests to the same method and path.
    fn start(route: Route) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let counts: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let log = seen.clone();
        thread::spawn(move || loop {
            let Ok(mut req) = server.recv() else { return };
            let (log, route, counts) = (log.clone(), route.clone(), counts.clone());
            thread::spawn(move || {
                let method = req.method().as_str().to_string();
                let url = req.url().to_string();
                let path = url.split('?').next().unwrap_or("").to_string();
                let headers = req
                    .headers()
                    .iter()
                    .map(|h| {
                        (
                            h.field.as_str().as_str().to_ascii_lowercase(),
                            h.value.as_str().to_string(),
                        )
                    })
                    .collect();
                let mut body = Vec::new();
                let _ = req.as_reader().read_to_end(&mut body);
                let nth = {
                    let mut c = counts.lock().unwrap();
                    let n = c.entry(format!("{method} {path}")).or_insert(0);
                    *n += 1;
                    *n - 1
                };
                log.lock().unwrap().push(Seen {
                    method: method.clone(),
                    url,
                    headers,
                    body,
                });
                match route(&method, &path, nth) {
                    Reply::Data(status, data) => {
                        let _ = req
                            .respond(tiny_http::Response::from_data(data).with_status_code(status));
                    }
                    Reply::Stall(d) => {
                        thread::sleep(d);
                        drop(req);
                    }
                    Reply::Trickle(data, every) => {
                        let len = data.len();
                        let body = Slow { data, at: 0, every };
                        let _ = req.respond(tiny_http::Response::new(
                            tiny_http::StatusCode(200),
                            Vec::new(),
                            body,
                            Some(len),
                            None,
                        ));
                    }
                    Reply::Redirect(to) => {
                        let location =
                            tiny_http::Header::from_bytes(&b"Location"[..], to.as_bytes()).unwrap();
                        let _ = req.respond(
                            tiny_http::Response::from_data(Vec::new())
                                .with_status_code(302)
                                .with_header(location),
                        );
                    }
                }
            });
        });
        TestServer {
            base: format!("http://127.0.0.1:{port}"),
            seen,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}?{SECRET}&X-Amz-Expires=900", self.base)
    }

    fn puts(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.method == "PUT")
            .cloned()
            .collect()
    }

    fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// A server that serves the two fixture recordings and accepts the three PUTs.
fn happy_route() -> Route {
    let call = std::fs::read(repo("fixtures/caller.webm")).unwrap();
    let resp = std::fs::read(repo("fixtures/response.ogg")).unwrap();
    Arc::new(move |method, path, _| match (method, path) {
        ("GET", "/call.mp3") => Reply::Data(200, call.clone()),
        ("GET", "/response.mp3") => Reply::Data(200, resp.clone()),
        ("PUT", _) => Reply::Data(200, Vec::new()),
        _ => Reply::Data(404, b"no such key".to_vec()),
    })
}

/// The happy route, except that the requests `when` picks get `reply`.
fn happy_but(when: fn(&str, &str) -> bool, reply: Reply) -> Route {
    let base = happy_route();
    Arc::new(move |m, p, n| {
        if when(m, p) {
            reply.clone()
        } else {
            base(m, p, n)
        }
    })
}

static RUN: AtomicUsize = AtomicUsize::new(0);

/// A private scratch directory for one run (the job's temporary base).
fn scratch() -> Scratch {
    let n = RUN.fetch_add(1, Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("podstitch-jobtest-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Scratch(d)
}

/// A scratch directory, removed (with the worker link in it) when dropped.
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The binary under the worker's name, in `dir`.
fn worker_binary(dir: &Path) -> PathBuf {
    let link = dir.join("call-kent-audio-cli");
    if !link.exists() {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_podstitch"), &link).unwrap();
    }
    link
}

fn contract_env(s: &TestServer) -> Vec<(&'static str, String)> {
    vec![
        ("CALL_KENT_AUDIO_DRAFT_ID", "draft-42".to_string()),
        ("CALL_KENT_AUDIO_ATTEMPT", "2".to_string()),
        ("CALL_AUDIO_URL", s.url("/call.mp3")),
        ("RESPONSE_AUDIO_URL", s.url("/response.mp3")),
        ("EPISODE_UPLOAD_URL", s.url("/up/episode.mp3")),
        ("CALLER_SEGMENT_UPLOAD_URL", s.url("/up/caller.mp3")),
        ("RESPONSE_SEGMENT_UPLOAD_URL", s.url("/up/response.mp3")),
        (
            "CALL_KENT_AUDIO_ASSETS_DIR",
            repo("assets").display().to_string(),
        ),
    ]
}

/// Runs the worker binary with `env` (nothing else from the test's
/// environment) and extra flags; its temporary files go under `tmp`.
fn run_job(env: &[(&str, String)], flags: &[&str], tmp: &Path) -> Output {
    let mut cmd = Command::new(worker_binary(tmp));
    cmd.env_clear()
        .args(flags)
        .arg("--temp-dir")
        .arg(tmp.join("work"));
    std::fs::create_dir_all(tmp.join("work")).unwrap();
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null()).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Nothing left in the job's temporary base, and no secret anywhere.
fn assert_clean(o: &Output, tmp: &Path) {
    let left: Vec<_> = std::fs::read_dir(tmp.join("work")).unwrap().collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    for s in [text(&o.stdout), text(&o.stderr)] {
        assert!(!s.contains("SECRETSECRET"), "secret leaked: {s}");
    }
}

fn decoded_frames(bytes: &[u8]) -> u64 {
    let mut d = Decoder::open_bytes("upload", bytes.to_vec()).unwrap();
    let mut b = Block::default();
    let mut n = 0;
    while d.read(&mut b).unwrap() {
        n += b.frames() as u64;
    }
    n
}

#[test]
fn success_uploads_three_valid_mp3s_and_prints_their_sizes() {
    let s = TestServer::start(happy_route());
    let tmp = scratch();
    let o = run_job(&contract_env(&s), &[], &tmp);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    for line in [
        "Downloading Call Kent audio inputs for draft draft-42 (attempt 2)",
        "Running FFmpeg stitching pipeline",
        "Uploading stitched audio outputs",
    ] {
        assert!(
            err.lines().any(|l| l == line),
            "missing log line {line:?} in {err}"
        );
    }
    let out = text(&o.stdout);
    assert_eq!(out.lines().count(), 1, "stdout must be one line: {out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let puts = s.puts();
    assert_eq!(puts.len(), 3);
    for (key, path) in [
        ("episodeAudioSize", "/up/episode.mp3"),
        ("callerSegmentAudioSize", "/up/caller.mp3"),
        ("responseSegmentAudioSize", "/up/response.mp3"),
    ] {
        let p = puts.iter().find(|p| p.url.starts_with(path)).unwrap();
        assert!(
            p.url.contains(SECRET),
            "the presigned query is sent as given"
        );
        assert_eq!(
            p.headers.get("content-type").map(String::as_str),
            Some("audio/mpeg")
        );
        assert_eq!(
            p.headers.get("content-length"),
            Some(&p.body.len().to_string())
        );
        assert!(!p.headers.contains_key("expect"), "no Expect: 100-continue");
        assert!(!p.headers.contains_key("transfer-encoding"), "not chunked");
        assert_eq!(v[key].as_u64(), Some(p.body.len() as u64), "{key}");
        assert!(p.body.len() > 1000 && p.body.starts_with(b"ID3"));
        assert!(decoded_frames(&p.body) > 44100);
    }
    assert_clean(&o, &tmp);
}

#[test]
fn each_missing_or_empty_variable_is_named_before_any_request() {
    let s = TestServer::start(happy_route());
    let full = contract_env(&s);
    for (i, (name, _)) in full.iter().enumerate().take(7) {
        for empty in [false, true] {
            let tmp = scratch();
            let mut env = full.clone();
            if empty {
                env[i].1 = String::new();
            } else {
                env.remove(i);
            }
            let o = run_job(&env, &[], &tmp);
            assert_eq!(o.status.code(), Some(1), "{name}");
            assert_eq!(
                text(&o.stderr).trim(),
                format!("Missing required env var: {name}")
            );
            assert!(o.stdout.is_empty());
        }
    }
    assert_eq!(
        s.requests(),
        0,
        "no network access on a configuration error"
    );
}

#[test]
fn a_missing_asset_is_named_before_any_request() {
    let s = TestServer::start(happy_route());
    let tmp = scratch();
    let assets = tmp.join("assets");
    std::fs::create_dir_all(&assets).unwrap();
    for f in ["intro.mp3", "interstitial.mp3"] {
        std::fs::copy(repo("assets").join(f), assets.join(f)).unwrap();
    }
    let mut env = contract_env(&s);
    env[7].1 = assets.display().to_string();
    let o = run_job(&env, &[], &tmp);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr).trim(),
        format!(
            "Missing required file: {}",
            assets.join("outro.mp3").display()
        )
    );
    assert_eq!(s.requests(), 0);
}

/// The MP3 formats are checked by the encoder's own rules before anything
/// is downloaded: 32 kb/s mono at 44.1 kHz has no room for the gapless
/// Info tag, which used to surface only after the first pass (exit 4).
#[test]
fn a_segment_bitrate_too_low_for_the_info_tag_exits_1_before_any_request() {
    let s = TestServer::start(happy_route());
    let tmp = scratch();
    let o = run_job(&contract_env(&s), &["--segment-bitrate", "32"], &tmp);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.contains("segment MP3 (--segment-bitrate")
            && last.contains("32 kb/s")
            && last.contains("use a higher bitrate"),
        "{err}"
    );
    assert_eq!(s.requests(), 0, "nothing is downloaded");
    assert_clean(&o, &tmp);
}

#[test]
fn download_404_fails_at_once_and_uploads_nothing() {
    let base = happy_route();
    let s = TestServer::start(Arc::new(move |m, p, n| {
        if p == "/response.mp3" {
            Reply::Data(404, b"<Error><Code>NoSuchKey</Code></Error>".to_vec())
        } else {
            base(m, p, n)
        }
    }));
    let tmp = scratch();
    let t = Instant::now();
    let o = run_job(&contract_env(&s), &[], &tmp);
    assert_eq!(o.status.code(), Some(3));
    let err = text(&o.stderr);
    assert!(
        err.contains("404") && err.contains("response recording download"),
        "{err}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "a 404 is not retried (retry delay is 5 s)"
    );
    assert!(s.puts().is_empty());
    assert_clean(&o, &tmp);
}

#[test]
fn two_503s_then_200_succeeds() {
    let base = happy_route();
    let s = TestServer::start(Arc::new(move |m, p, n| {
        if p == "/call.mp3" && n < 2 {
            Reply::Data(503, b"slow down".to_vec())
        } else {
            base(m, p, n)
        }
    }));
    let tmp = scratch();
    let o = run_job(&contract_env(&s), &["--retry-delay", "0.05"], &tmp);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let gets = s
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.url.starts_with("/call.mp3"))
        .count();
    assert_eq!(gets, 3);
    assert_eq!(s.puts().len(), 3);
    assert_clean(&o, &tmp);
}

/// A download that stalls, or (issue 11, item 7) trickles in slower than
/// the transfer timeout allows, is reported as a time-out with how long and
/// which setting controls it (a trickle said "reading the body failed:
/// connection error").
#[test]
fn a_slow_download_fails_after_the_timeout_saying_so() {
    for reply in [
        Reply::Stall(Duration::from_secs(20)),
        Reply::Trickle(vec![0u8; 10_000], Duration::from_millis(50)),
    ] {
        let s = TestServer::start(happy_but(|_, p| p == "/call.mp3", reply));
        let tmp = scratch();
        let t = Instant::now();
        let flags = [
            "--transfer-timeout",
            "1",
            "--retries",
            "1",
            "--retry-delay",
            "0.1",
        ];
        let o = run_job(&contract_env(&s), &flags, &tmp);
        let elapsed = t.elapsed();
        assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
        let err = text(&o.stderr);
        assert!(err.contains("caller recording download"), "{err}");
        assert!(
            err.contains("timed out after 1 s") && err.contains("--transfer-timeout"),
            "{err}"
        );
        assert!(!err.contains("connection error"), "{err}");
        assert!(err.contains("after 2 attempts"), "{err}");
        assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
        assert!(s.puts().is_empty());
        assert_clean(&o, &tmp);
    }
}

/// Issue 11, item 7: a deadline reached while uploading says so (it said
/// "stopped before uploading"); the exit status stays 6.
#[test]
fn a_deadline_during_the_upload_does_not_claim_nothing_was_sent() {
    let s = TestServer::start(happy_but(
        |m, _| m == "PUT",
        Reply::Stall(Duration::from_secs(60)),
    ));
    let tmp = scratch();
    let t = Instant::now();
    let o = run_job(&contract_env(&s), &["--deadline", "20"], &tmp);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("Uploading stitched audio outputs"), "{err}");
    assert!(
        err.contains("deadline of 20 s passed during the upload"),
        "{err}"
    );
    assert!(!err.contains("before uploading"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(40));
    assert_clean(&o, &tmp);
}

/// Issue 16, item 2: with EPISODE_WAVEFORM_UPLOAD_URL the episode's
/// waveform data is uploaded as JSON with the MP3s and its size reported.
#[test]
fn the_waveform_is_uploaded_with_the_mp3s_when_asked() {
    let s = TestServer::start(happy_route());
    let mut env = contract_env(&s);
    env.push((
        "EPISODE_WAVEFORM_UPLOAD_URL",
        s.url(&format!("/up/wave.json?{SECRET}")),
    ));
    let tmp = scratch();
    let o = run_job(&env, &[], &tmp);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let puts = s.puts();
    assert_eq!(puts.len(), 4);
    let wave = puts
        .iter()
        .find(|p| p.url.starts_with("/up/wave.json"))
        .expect("waveform PUT");
    assert_eq!(wave.headers["content-type"], "application/json");
    assert_eq!(
        v["episodeWaveformSize"].as_u64(),
        Some(wave.body.len() as u64)
    );
    let w: serde_json::Value = serde_json::from_slice(&wave.body).unwrap();
    assert_eq!(
        (w["version"].as_u64(), w["channels"].as_u64()),
        (Some(2), Some(1))
    );
    let episode = puts
        .iter()
        .find(|p| p.url.starts_with("/up/episode"))
        .unwrap();
    let frames = decoded_frames(&episode.body);
    let spp = w["samples_per_pixel"].as_u64().unwrap();
    assert_eq!(w["length"].as_u64(), Some(frames.div_ceil(spp)));
    assert!(!text(&o.stderr).contains("SECRETSECRET"));
    assert_clean(&o, &tmp);
    // Without the variable: three uploads, no waveform key.
    let s = TestServer::start(happy_route());
    let o = run_job(&contract_env(&s), &[], &tmp);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v.get("episodeWaveformSize").is_none());
    assert_eq!(s.puts().len(), 3);
    assert_clean(&o, &tmp);
}

#[test]
fn a_failed_waveform_upload_fails_the_job() {
    let s = TestServer::start(happy_but(
        |_, p| p == "/up/wave.json",
        Reply::Data(403, b"denied".to_vec()),
    ));
    let mut env = contract_env(&s);
    env.push(("EPISODE_WAVEFORM_UPLOAD_URL", s.url("/up/wave.json")));
    let tmp = scratch();
    let o = run_job(&env, &[], &tmp);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("episode waveform upload") && err.contains("403"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
    assert_clean(&o, &tmp);
}

#[test]
fn an_upload_403_fails_with_the_status() {
    let base = happy_route();
    let s = TestServer::start(Arc::new(move |m, p, n| {
        if m == "PUT" && p == "/up/caller.mp3" {
            Reply::Data(
                403,
                b"<Error><Code>SignatureDoesNotMatch</Code></Error>".to_vec(),
            )
        } else {
            base(m, p, n)
        }
    }));
    let tmp = scratch();
    let o = run_job(&contract_env(&s), &[], &tmp);
    assert_eq!(o.status.code(), Some(5));
    let err = text(&o.stderr);
    assert!(
        err.contains("403") && err.contains("caller segment upload"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
    assert_clean(&o, &tmp);
}

#[test]
fn bad_audio_fails_with_the_recording_named_and_nothing_uploaded() {
    let base = happy_route();
    let s = TestServer::start(Arc::new(move |m, p, n| {
        if p == "/call.mp3" {
            Reply::Data(200, b"<html><body>Access denied</body></html>".to_vec())
        } else {
            base(m, p, n)
        }
    }));
    let tmp = scratch();
    let o = run_job(&contract_env(&s), &[], &tmp);
    assert_eq!(o.status.code(), Some(4));
    let err = text(&o.stderr);
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with("caller recording (http://127.0.0.1:"),
        "{err}"
    );
    assert!(last.contains("/call.mp3)"), "{err}");
    assert!(s.puts().is_empty());
    assert_clean(&o, &tmp);
}

#[test]
fn non_http_urls_are_refused() {
    let s = TestServer::start(happy_route());
    let mut env = contract_env(&s);
    env[2].1 = format!("file:///etc/passwd?{SECRET}");
    let tmp = scratch();
    let o = run_job(&env, &[], &tmp);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("CALL_AUDIO_URL: scheme file:"));
    assert_clean(&o, &tmp);
    assert_eq!(s.requests(), 0);
}

#[test]
fn sigterm_removes_the_temporary_directory() {
    let base = happy_route();
    let s = TestServer::start(Arc::new(move |m, p, n| {
        if p == "/call.mp3" {
            Reply::Stall(Duration::from_secs(30))
        } else {
            base(m, p, n)
        }
    }));
    let tmp = scratch();
    std::fs::create_dir_all(tmp.join("work")).unwrap();
    let mut cmd = Command::new(worker_binary(&tmp));
    cmd.env_clear().arg("--temp-dir").arg(tmp.join("work"));
    for (k, v) in contract_env(&s) {
        cmd.env(k, v);
    }
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the job has made its directory and the download is stalled.
    let t = Instant::now();
    while std::fs::read_dir(tmp.join("work")).unwrap().count() == 0 || s.requests() < 2 {
        assert!(t.elapsed() < Duration::from_secs(20), "job did not start");
        thread::sleep(Duration::from_millis(20));
    }
    // The job's directory is private.
    for d in std::fs::read_dir(tmp.join("work")).unwrap() {
        use std::os::unix::fs::PermissionsExt;
        let mode = d.unwrap().metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "temporary directory mode {mode:o}");
    }
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(128 + 15), "{}", text(&o.stderr));
    assert_clean(&o, &tmp);
    assert!(s.puts().is_empty());
}

#[test]
fn the_deadline_stops_the_job() {
    let s = TestServer::start(happy_but(
        |_, p| p == "/response.mp3",
        Reply::Stall(Duration::from_secs(30)),
    ));
    let tmp = scratch();
    let t = Instant::now();
    let o = run_job(&contract_env(&s), &["--deadline", "1.5"], &tmp);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("deadline"));
    assert!(t.elapsed() < Duration::from_secs(8));
    assert!(s.puts().is_empty());
    assert_clean(&o, &tmp);
}

#[test]
fn flags_win_over_the_environment() {
    let s = TestServer::start(happy_route());
    let mut env = contract_env(&s);
    env[2].1 = s.url("/missing.mp3");
    let good = s.url("/call.mp3");
    let tmp = scratch();
    let o = run_job(&env, &["--call-url", &good], &tmp);
    assert!(o.status.success(), "{}", text(&o.stderr));
}

#[test]
fn redirects_are_followed_to_http_only() {
    let base = happy_route();
    let s = TestServer::start(Arc::new(move |m, p, n| match p {
        "/call.mp3" => Reply::Redirect(format!("/moved/call.mp3?{SECRET}")),
        "/moved/call.mp3" => base(m, "/call.mp3", n),
        "/response.mp3" if n == 0 => {
            Reply::Redirect(format!("ftp://127.0.0.1/response.mp3?{SECRET}"))
        }
        _ => base(m, p, n),
    }));
    let tmp = scratch();
    let o = run_job(&contract_env(&s), &[], &tmp);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("neither http nor https"), "{err}");
    assert!(err.contains("response recording download"), "{err}");
    // The http redirect of the caller's recording was followed.
    assert!(s
        .seen
        .lock()
        .unwrap()
        .iter()
        .any(|r| r.url.starts_with("/moved/call.mp3")));
    assert!(s.puts().is_empty());
    assert_clean(&o, &tmp);
}

/// A route that serves `call` as the caller's recording.
fn serving_call(call: Reply) -> Route {
    let base = happy_route();
    Arc::new(move |m, p, n| {
        if p == "/call.mp3" {
            call.clone()
        } else {
            base(m, p, n)
        }
    })
}

/// The failure every test below checks: the exit status, a last stderr line
/// naming what failed, no upload, no temporary file, no secret.
fn assert_failed(o: &Output, tmp: &Path, s: &TestServer, code: i32, needles: &[&str]) {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{err}");
    let last = err.lines().last().unwrap_or("");
    for n in needles {
        assert!(last.contains(n), "{n:?} not in the last line of: {err}");
    }
    assert!(
        o.stdout.is_empty(),
        "stdout on failure: {}",
        text(&o.stdout)
    );
    assert!(s.puts().is_empty(), "uploaded on failure");
    assert_clean(o, tmp);
}

#[test]
fn a_download_over_the_size_cap_fails_without_upload() {
    let s = TestServer::start(happy_route());
    let tmp = scratch();
    let o = run_job(&contract_env(&s), &["--max-input-bytes", "10000"], &tmp);
    assert_failed(
        &o,
        &tmp,
        &s,
        3,
        &[
            "caller recording download",
            "/call.mp3",
            "limit of 10000 bytes",
        ],
    );
}

#[test]
fn a_redirect_to_another_scheme_is_refused() {
    let s = TestServer::start(serving_call(Reply::Redirect(format!(
        "file:///etc/passwd?{SECRET}"
    ))));
    let tmp = scratch();
    let o = run_job(&contract_env(&s), &["--retry-delay", "0.05"], &tmp);
    assert_failed(&o, &tmp, &s, 3, &["caller recording download", "/call.mp3"]);
    // reqwest does not follow a redirect to another scheme: it hands back the 302.
    let err = text(&o.stderr);
    assert!(
        err.contains("302 Found: a redirect that was not followed")
            || err.contains("neither http nor https"),
        "{err}"
    );
}

#[test]
fn an_empty_or_json_download_is_an_audio_error_naming_the_recording() {
    for body in [Vec::new(), br#"{"error":"NoSuchKey"}"#.to_vec()] {
        let s = TestServer::start(serving_call(Reply::Data(200, body)));
        let tmp = scratch();
        let o = run_job(&contract_env(&s), &[], &tmp);
        assert_failed(
            &o,
            &tmp,
            &s,
            4,
            &["caller recording (http://127.0.0.1:", "/call.mp3)"],
        );
    }
}

#[test]
fn a_truncated_recording_still_makes_an_episode() {
    let call = std::fs::read(repo("fixtures/caller.webm")).unwrap();
    let half = call[..call.len() / 2].to_vec();
    let s = TestServer::start(serving_call(Reply::Data(200, half)));
    let tmp = scratch();
    let o = run_job(&contract_env(&s), &[], &tmp);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(s.puts().len(), 3);
    assert_clean(&o, &tmp);
}

#[test]
fn a_bumper_that_is_empty_or_not_audio_fails_without_upload() {
    for (name, bytes) in [
        ("intro.mp3", Vec::new()),
        ("outro.mp3", b"<html>oops</html>".to_vec()),
    ] {
        let s = TestServer::start(happy_route());
        let tmp = scratch();
        let assets = tmp.join("assets");
        std::fs::create_dir_all(&assets).unwrap();
        for f in ["intro.mp3", "interstitial.mp3", "outro.mp3"] {
            std::fs::copy(repo("assets").join(f), assets.join(f)).unwrap();
        }
        std::fs::write(assets.join(name), bytes).unwrap();
        let mut env = contract_env(&s);
        env[7].1 = assets.display().to_string();
        let o = run_job(&env, &[], &tmp);
        let which = name.trim_end_matches(".mp3");
        assert_failed(&o, &tmp, &s, 4, &[&format!("{which} bumper ("), name]);
    }
}

#[test]
fn too_long_a_recording_fails_before_upload() {
    let s = TestServer::start(happy_route());
    let tmp = scratch();
    let o = run_job(&contract_env(&s), &["--max-duration", "2"], &tmp);
    assert_failed(
        &o,
        &tmp,
        &s,
        4,
        &["recording (http://127.0.0.1:", "--max-duration"],
    );
}

/// No shell-outs and no FFmpeg: nothing in the sources starts a process.
#[test]
fn the_sources_start_no_processes() {
    let mut dirs = vec![repo("src")];
    let mut files = 0;
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            files += 1;
            let code = std::fs::read_to_string(&p).unwrap();
            for bad in [
                "process::Command",
                "Command::new",
                "libc::exec",
                "libc::system",
            ] {
                assert!(!code.contains(bad), "{}: {bad}", p.display());
            }
        }
    }
    assert!(files > 20, "{files} source files checked");
}
