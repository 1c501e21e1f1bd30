//! One Logs Ingestion API call per batch (reference §4):
//! `POST {endpoint}/dataCollectionRules/{dcr}/streams/{stream}?api-version=2023-01-01`,
//! gzip body, bearer token. Throttling (429), server errors (5xx), 408 and network faults
//! are retried with capped exponential backoff, honouring `Retry-After`; other 4xx stop
//! the upload with the cause named.

use super::auth::{AuthError, Tokens};
use super::UploadError;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Logs Ingestion API version.
pub const API_VERSION: &str = "2023-01-01";

/// How hard to try one batch.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts before giving up; 0 tries forever (for `--follow`).
    pub max_attempts: u32,
    /// First backoff; doubles after each failure.
    pub base: Duration,
    /// Longest wait, whether from backoff or from `Retry-After` (tests make it short).
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Wait before attempt `failures + 1`: the server's `Retry-After` if it gave one, else
    /// `base * 2^(failures-1)`; never more than `cap`.
    pub fn delay(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self
            .base
            .saturating_mul(1u32 << failures.saturating_sub(1).min(16));
        retry_after.unwrap_or(backoff).min(self.cap)
    }
}

/// Accepts `https://` anywhere and `http://` only on loopback addresses (tests).
pub fn check_url(url: &str, what: &str) -> Result<ureq::http::Uri, String> {
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|e| format!("{what} {url:?} is not a URL: {e}"))?;
    let host = uri.host().unwrap_or("");
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok(uri),
        Some("http") if is_loopback(host) => Ok(uri),
        Some("http") => Err(format!(
            "{what} {url:?} must use https (plain http is accepted only for loopback addresses)"
        )),
        _ => Err(format!("{what} {url:?} must be an https:// URL")),
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_matches(['[', ']']);
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An HTTP agent: status codes are answers, not errors; TLS is rustls with webpki roots.
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into()
}

/// Sends batches to one DCR stream.
pub struct Ingestion {
    agent: ureq::Agent,
    url: String,
    dcr: String,
    tokens: Tokens,
    retry: RetryPolicy,
}

/// What one attempt came to.
enum Attempt {
    Accepted,
    Retry(String, Option<Duration>),
    Fatal(UploadError),
}

impl Ingestion {
    /// A client for `endpoint`, `dcr` and `stream` (the endpoint already checked).
    pub fn new(
        agent: ureq::Agent,
        endpoint: &str,
        dcr: &str,
        stream: &str,
        tokens: Tokens,
        retry: RetryPolicy,
    ) -> Ingestion {
        Ingestion {
            agent,
            url: format!(
                "{}/dataCollectionRules/{dcr}/streams/{stream}?api-version={API_VERSION}",
                endpoint.trim_end_matches('/')
            ),
            dcr: dcr.to_owned(),
            tokens,
            retry,
        }
    }

    /// Sends one uncompressed JSON array until the service accepts it, retrying what may
    /// succeed later. `stop` ends the waiting early (the batch then counts as not sent).
    pub fn send(&mut self, body: &[u8], stop: &AtomicBool) -> Result<(), UploadError> {
        let gz = gzip(body);
        let mut failures = 0u32;
        loop {
            let (why, retry_after) = match self.attempt(&gz) {
                Attempt::Accepted => return Ok(()),
                Attempt::Fatal(e) => return Err(e),
                Attempt::Retry(why, after) => (why, after),
            };
            failures += 1;
            if self.retry.max_attempts != 0 && failures >= self.retry.max_attempts {
                return Err(UploadError::GaveUp {
                    attempts: failures,
                    last: why,
                });
            }
            sleep_unless_stopped(self.retry.delay(failures, retry_after), stop);
            if stop.load(Ordering::Relaxed) {
                return Err(UploadError::Stopped);
            }
        }
    }

    fn attempt(&mut self, gz: &[u8]) -> Attempt {
        let token = match self.tokens.get(&self.agent) {
            Ok(t) => t,
            Err(AuthError {
                retryable: true,
                message,
            }) => return Attempt::Retry(message, None),
            Err(AuthError { message, .. }) => return Attempt::Fatal(UploadError::Auth(message)),
        };
        let result = self
            .agent
            .post(&self.url)
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip")
            .send(gz);
        let mut resp = match result {
            Ok(r) => r,
            Err(e) if transient(&e) => return Attempt::Retry(format!("network: {e}"), None),
            Err(e) => return Attempt::Fatal(UploadError::Other(format!("request failed: {e}"))),
        };
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Attempt::Accepted;
        }
        let retry_after = retry_after(resp.headers());
        let detail = error_detail(
            &resp
                .body_mut()
                .with_config()
                .limit(64 * 1024)
                .read_to_string()
                .unwrap_or_default(),
        );
        match status {
            401 => {
                // An expired or revoked token: fetch a fresh one and try again.
                self.tokens.invalidate();
                Attempt::Retry(format!("HTTP 401 (token refused): {detail}"), None)
            }
            408 | 429 | 500..=599 => {
                Attempt::Retry(format!("HTTP {status}: {detail}"), retry_after)
            }
            _ => Attempt::Fatal(UploadError::Rejected {
                status,
                message: rejection(status, &self.dcr, &detail),
            }),
        }
    }
}

/// The cause, in the user's terms, of a 4xx that retrying will not fix.
fn rejection(status: u16, dcr: &str, detail: &str) -> String {
    let cause = match status {
        403 => format!(
            "the identity lacks the Monitoring Metrics Publisher role on DCR {dcr} (role assignments can take 30 minutes to apply)"
        ),
        413 => "batch too large for the service (over 1 MB)".to_owned(),
        404 => "endpoint, DCR immutable id or stream name not found".to_owned(),
        400 => "the service refused the rows (stream columns or time range)".to_owned(),
        _ => "request refused".to_owned(),
    };
    if detail.is_empty() {
        format!("HTTP {status}: {cause}")
    } else {
        format!("HTTP {status}: {cause}: {detail}")
    }
}

/// `{"error":{"code","message"}}` on one short line, or the body's first line.
fn error_detail(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let text = match (v["error"]["code"].as_str(), v["error"]["message"].as_str()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_owned(),
        _ => body.lines().next().unwrap_or("").to_owned(),
    };
    text.chars().take(300).collect()
}

/// `Retry-After` in seconds, or Azure's `retry-after-ms` / `x-ms-retry-after-ms`.
fn retry_after(h: &ureq::http::HeaderMap) -> Option<Duration> {
    let get = |k: &str| h.get(k)?.to_str().ok()?.trim().parse::<f64>().ok();
    let ms = get("retry-after-ms").or_else(|| get("x-ms-retry-after-ms"));
    ms.map(|m| m / 1000.0)
        .or_else(|| get("retry-after"))
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(86_400.0)))
}

fn transient(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::Protocol(_)
            | ureq::Error::BodyStalled
    )
}

/// Gzip of `body` (into memory, which cannot fail).
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::with_capacity(body.len() / 8), Compression::default());
    let _ = enc.write_all(body);
    enc.finish().unwrap_or_default()
}

/// Sleeps `d` in short steps so a stop request is noticed quickly.
pub fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let end = std::time::Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let left = end.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_may_skip_tls() {
        assert!(check_url("https://x.ingest.monitor.azure.com", "--endpoint").is_ok());
        assert!(check_url("http://127.0.0.1:8080", "--endpoint").is_ok());
        assert!(check_url("http://[::1]:8080", "--endpoint").is_ok());
        assert!(check_url("http://localhost:1", "--endpoint").is_ok());
        for bad in ["http://10.0.0.1", "http://example.com", "ftp://x", "nope"] {
            let e = check_url(bad, "--endpoint").unwrap_err();
            assert!(e.starts_with("--endpoint") && !e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped_and_retry_after_wins() {
        let p = RetryPolicy {
            max_attempts: 0,
            base: Duration::from_millis(10),
            cap: Duration::from_millis(50),
        };
        assert_eq!(p.delay(1, None), Duration::from_millis(10));
        assert_eq!(p.delay(2, None), Duration::from_millis(20));
        assert_eq!(p.delay(30, None), Duration::from_millis(50));
        assert_eq!(
            p.delay(1, Some(Duration::from_millis(30))),
            Duration::from_millis(30)
        );
        assert_eq!(p.delay(1, Some(Duration::from_secs(600))), p.cap);
        let mut h = ureq::http::HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
    }

    #[test]
    fn rejections_name_the_cause() {
        assert!(
            rejection(403, "dcr-1", "").contains("Monitoring Metrics Publisher role on DCR dcr-1")
        );
        assert!(rejection(413, "d", "").contains("too large"));
        assert_eq!(
            error_detail(
                r#"{"error":{"code":"RecordsTimeRangeIsMoreThan30Minutes","message":"m"}}"#
            ),
            "RecordsTimeRangeIsMoreThan30Minutes: m"
        );
    }
}
