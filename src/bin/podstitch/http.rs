//! Moving bytes: presigned GETs to files and files to presigned PUTs, with
//! the timeouts and retries of the sandbox contract.
//!
//! A presigned URL is a credential: nothing here ever prints more of it than
//! scheme, host and path ([`redact`]); reqwest's own errors are stripped of
//! their URL before they are shown. Only http and https are accepted, on
//! redirects too.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, Response};
use reqwest::{redirect, StatusCode, Url};

/// Timeouts, retries and limits of the transfers.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    /// Time allowed to connect (default 10 s).
    pub connect_timeout: Duration,
    /// Time allowed for one whole transfer (default 300 s).
    pub transfer_timeout: Duration,
    /// Retries after a transient failure (default 3).
    pub retries: u32,
    /// Pause before the first retry, doubled for each further one (default 5 s).
    pub retry_delay: Duration,
    /// Largest download accepted, in bytes (default 2 GiB).
    pub max_download_bytes: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            connect_timeout: Duration::from_secs(10),
            transfer_timeout: Duration::from_secs(300),
            retries: 3,
            retry_delay: Duration::from_secs(5),
            max_download_bytes: 2 << 30,
        }
    }
}

/// A failed transfer, with a message that names what was transferred and
/// never contains a query string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(pub String);

/// The URL as scheme, host, port and path: safe to print.
pub fn redact(url: &Url) -> String {
    let mut s = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(p) = url.port() {
        s.push_str(&format!(":{p}"));
    }
    s.push_str(url.path());
    s
}

/// Parses an http or https URL; `name` says where it came from. The error
/// message never repeats the URL's query.
pub fn parse_url(name: &str, value: &str) -> Result<Url, HttpError> {
    let url = Url::parse(value).map_err(|e| HttpError(format!("{name}: not a valid URL ({e})")))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(HttpError(format!(
            "{name}: scheme {other}: is not allowed; only http and https"
        ))),
    }
}

/// Whether a failure is worth another try.
enum Failure {
    Transient(String),
    Fatal(String),
}

/// Why a transfer that ran out of time stopped: the transfer timeout, or the
/// job's deadline when less than that was left. `limit` is the time the
/// transfer was given.
fn timed_out(limit: Duration, settings: &HttpSettings) -> String {
    if limit < settings.transfer_timeout {
        format!(
            "the transfer timed out after {} s, all that was left before the job deadline \
             (--deadline)",
            secs(limit)
        )
    } else {
        format!(
            "the transfer timed out after {} s (the per-transfer limit, --transfer-timeout); \
             the server sends or accepts the data too slowly: raise --transfer-timeout or \
             check the storage service",
            secs(limit)
        )
    }
}

/// Seconds for messages: "300", "1.5".
fn secs(d: Duration) -> String {
    let text = format!("{:.1}", d.as_secs_f64());
    text.strip_suffix(".0").unwrap_or(&text).to_string()
}

/// Whether `e` (or an error it wraps) is reqwest's time-out.
fn is_timeout(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::TimedOut
        || e.get_ref()
            .and_then(|inner| inner.downcast_ref::<reqwest::Error>())
            .is_some_and(reqwest::Error::is_timeout)
}

fn describe(e: reqwest::Error, limit: Duration, settings: &HttpSettings) -> Failure {
    if e.is_timeout() {
        return Failure::Transient(timed_out(limit, settings));
    }
    let transient = e.is_connect() || e.is_body() || e.is_request();
    let e = e.without_url();
    // reqwest's message is terse; the causes say what happened (refused,
    // reset, timed out). None of them carries the URL.
    let mut msg = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        msg.push_str(": ");
        msg.push_str(&c.to_string());
        cause = c.source();
    }
    if transient {
        Failure::Transient(msg)
    } else {
        Failure::Fatal(msg)
    }
}

fn status_failure(status: StatusCode) -> Failure {
    let msg = format!(
        "HTTP {} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .trim_end()
    .to_string();
    if status.is_redirection() {
        // reqwest hands back a redirect it will not follow (a location that
        // is not http or https, or none); the location is not shown: it may
        // be another presigned URL.
        return Failure::Fatal(format!(
            "{msg}: a redirect that was not followed (only http and https locations are)"
        ));
    }
    if status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
    {
        Failure::Transient(msg)
    } else {
        Failure::Fatal(msg)
    }
}

/// The HTTP client of the job.
#[derive(Debug, Clone)]
pub struct Http {
    client: Client,
    settings: HttpSettings,
}

impl Http {
    /// A client with the given settings (rustls, redirects restricted to http(s)).
    pub fn new(settings: HttpSettings) -> Result<Self, HttpError> {
        // reqwest is built without a default crypto provider; install ring's.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let policy = redirect::Policy::custom(|attempt| {
            if !matches!(attempt.url().scheme(), "http" | "https") {
                attempt.error("redirected to a URL that is neither http nor https")
            } else if attempt.previous().len() >= 10 {
                attempt.error("more than 10 redirects")
            } else {
                attempt.follow()
            }
        });
        let client = Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.transfer_timeout)
            .redirect(policy)
            .user_agent(concat!("podstitch/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HttpError(format!("HTTP client: {}", e.without_url())))?;
        Ok(Http { client, settings })
    }

    /// Runs `attempt` with the retry policy until it succeeds, fails for
    /// good, or `deadline` would pass.
    fn with_retries<T>(
        &self,
        what: &str,
        url: &Url,
        deadline: Instant,
        mut attempt: impl FnMut() -> Result<T, Failure>,
    ) -> Result<T, HttpError> {
        let mut delay = self.settings.retry_delay;
        let mut tries = 0;
        loop {
            tries += 1;
            match attempt() {
                Ok(v) => return Ok(v),
                Err(Failure::Fatal(m)) => {
                    return Err(HttpError(format!("{what} ({}): {m}", redact(url))))
                }
                Err(Failure::Transient(m)) => {
                    if tries > self.settings.retries || Instant::now() + delay >= deadline {
                        return Err(HttpError(format!(
                            "{what} ({}): {m} (after {tries} attempt{})",
                            redact(url),
                            if tries == 1 { "" } else { "s" }
                        )));
                    }
                    thread::sleep(delay);
                    delay *= 2;
                }
            }
        }
    }

    fn remaining(&self, deadline: Instant) -> Duration {
        deadline
            .saturating_duration_since(Instant::now())
            .min(self.settings.transfer_timeout)
            .max(Duration::from_millis(1))
    }

    /// Downloads `url` into the file `dest` (truncated on each try); returns
    /// the bytes written. `what` names the download in errors.
    pub fn download(
        &self,
        what: &str,
        url: &Url,
        dest: &Path,
        deadline: Instant,
    ) -> Result<u64, HttpError> {
        let cap = self.settings.max_download_bytes;
        self.with_retries(what, url, deadline, || {
            let limit = self.remaining(deadline);
            let resp = self
                .client
                .get(url.clone())
                .timeout(limit)
                .send()
                .map_err(|e| describe(e, limit, &self.settings))?;
            if !resp.status().is_success() {
                return Err(status_failure(resp.status()));
            }
            if resp.content_length().is_some_and(|n| n > cap) {
                return Err(Failure::Fatal(format!(
                    "the server announces {} bytes, more than the limit of {cap} bytes",
                    resp.content_length().unwrap_or(0)
                )));
            }
            let file = File::create(dest)
                .map_err(|e| Failure::Fatal(format!("cannot create {}: {e}", dest.display())))?;
            copy_capped(resp, file, cap).map_err(|f| match f {
                Failure::Transient(m) if m == TIMED_OUT => {
                    Failure::Transient(timed_out(limit, &self.settings))
                }
                other => other,
            })
        })
    }

    /// PUTs the file `src` to `url` as `content_type` (`audio/mpeg` for the
    /// MP3s, which is part of their presigned signature) with its exact
    /// length (re-read on each try); returns the bytes sent.
    pub fn upload(
        &self,
        what: &str,
        url: &Url,
        src: &Path,
        content_type: &str,
        deadline: Instant,
    ) -> Result<u64, HttpError> {
        self.with_retries(what, url, deadline, || {
            let file = File::open(src)
                .map_err(|e| Failure::Fatal(format!("cannot open {}: {e}", src.display())))?;
            let len = file
                .metadata()
                .map_err(|e| Failure::Fatal(format!("cannot read {}: {e}", src.display())))?
                .len();
            let limit = self.remaining(deadline);
            let resp = self
                .client
                .put(url.clone())
                .timeout(limit)
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .header(reqwest::header::CONTENT_LENGTH, len)
                .body(file)
                .send()
                .map_err(|e| describe(e, limit, &self.settings))?;
            if !resp.status().is_success() {
                return Err(status_failure(resp.status()));
            }
            Ok(len)
        })
    }
}

/// What [`copy_capped`] says when the body stopped at the time-out (the
/// caller knows which limit it was).
const TIMED_OUT: &str = "timed out";

/// Copies a response body into a file, failing once more than `cap` bytes arrive.
fn copy_capped(mut resp: Response, mut file: File, cap: u64) -> Result<u64, Failure> {
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = match resp.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => return Err(Failure::Transient(TIMED_OUT.into())),
            Err(e) => {
                return Err(Failure::Transient(format!(
                    "reading the body failed: {}",
                    io_msg(&e)
                )))
            }
        };
        total += n as u64;
        if total > cap {
            return Err(Failure::Fatal(format!(
                "the download is larger than the limit of {cap} bytes"
            )));
        }
        file.write_all(&buf[..n])
            .map_err(|e| Failure::Fatal(format!("writing the download failed: {e}")))?;
    }
    file.flush()
        .map_err(|e| Failure::Fatal(format!("writing the download failed: {e}")))?;
    Ok(total)
}

/// An I/O error's message, without any URL a wrapped reqwest error may carry.
fn io_msg(e: &io::Error) -> String {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<reqwest::Error>())
    {
        Some(_) => "connection error".to_string(),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_drops_query_and_fragment() {
        let u = Url::parse("https://bucket.example.com:8443/a/b.mp3?X-Amz-Signature=secret#frag")
            .unwrap();
        assert_eq!(redact(&u), "https://bucket.example.com:8443/a/b.mp3");
    }

    #[test]
    fn only_http_and_https_are_accepted() {
        assert!(parse_url("X", "http://h/p").is_ok());
        assert!(parse_url("X", "https://h/p?sig=1").is_ok());
        let e = parse_url("CALL_AUDIO_URL", "file:///etc/passwd?token=s3cret").unwrap_err();
        assert!(e.0.starts_with("CALL_AUDIO_URL: scheme file:"), "{e}");
        assert!(!e.0.contains("s3cret"));
        let e = parse_url("CALL_AUDIO_URL", "not a url ?token=s3cret").unwrap_err();
        assert!(!e.0.contains("s3cret"), "{e}");
    }
}
