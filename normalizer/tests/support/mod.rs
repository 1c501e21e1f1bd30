//! A stand-in for the Logs Ingestion API and Entra ID's token endpoints, on 127.0.0.1 only.
//!
//! It enforces the documented contract (bearer token it issued, JSON content type, gzip,
//! at most `max_bytes` uncompressed, a JSON array of objects holding exactly the declared
//! columns, at most 30 minutes of `TimeGenerated`) and injects the faults a test scripts.
//! Every violation is recorded so tests can assert there were none.

#![allow(dead_code)]

use flate2::read::GzDecoder;
use serde_json::Value;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub const DCR: &str = "dcr-00000000000000000000000000000001";
pub const STREAM: &str = normalizer::schema::STREAM;
pub const TENANT: &str = "tenant-1";
pub const CLIENT_ID: &str = "app-1";
pub const CLIENT_SECRET: &str = "secret-1";
pub const IDENTITY_HEADER: &str = "identity-header-1";

/// What the next ingestion request gets.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Validate, record, 204.
    Accept,
    /// 429 with `Retry-After: <secs>`; nothing recorded.
    Throttle(u64),
    /// 500; nothing recorded.
    ServerError,
    /// Read the request, close the connection without an answer; nothing recorded.
    Drop,
    /// Wait, then accept.
    Slow(Duration),
    /// Record the rows, then close without an answer (the unknowable case).
    AcceptThenDrop,
    /// Answer with this status; nothing recorded.
    Status(u16),
}

#[derive(Default)]
pub struct State {
    pub script: VecDeque<Fault>,
    /// Used once the script is empty (`None`: accept).
    pub after_script: Option<Fault>,
    pub rows: Vec<Value>,
    pub violations: Vec<String>,
    pub ingestion_requests: usize,
    pub token_requests: usize,
    pub tokens: Vec<String>,
    pub max_bytes: usize,
}

pub struct Fake {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl Fake {
    pub fn start(script: Vec<Fault>) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            max_bytes: 1024 * 1024,
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || serve(conn, &st));
            }
        });
        Fake { addr, state, stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Environment for client credentials against this server.
    pub fn env(&self) -> impl Fn(&str) -> Option<String> {
        let url = self.url();
        move |k| {
            Some(match k {
                "AZURE_TENANT_ID" => TENANT.into(),
                "AZURE_CLIENT_ID" => CLIENT_ID.into(),
                "AZURE_CLIENT_SECRET" => CLIENT_SECRET.into(),
                "AZURE_AUTHORITY_HOST" => url.clone(),
                _ => return None,
            })
        }
    }

    /// Environment for an App Service style managed identity on this server.
    pub fn managed_identity_env(&self) -> impl Fn(&str) -> Option<String> {
        let url = self.url();
        move |k| {
            Some(match k {
                "IDENTITY_ENDPOINT" => format!("{url}/msi/token"),
                "IDENTITY_HEADER" => IDENTITY_HEADER.into(),
                _ => return None,
            })
        }
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

struct Request {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one request; `None` at end of stream or on garbage.
fn read_request(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Request> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(head)) = req.parse(buf) {
            let target = req.path?.to_owned();
            let method = req.method?.to_owned();
            let headers: Vec<(String, String)> = req
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_owned(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let len: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            while buf.len() < head + len {
                let mut chunk = [0u8; 65536];
                let n = conn.read(&mut chunk).ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[head..head + len].to_vec();
            buf.drain(..head + len);
            let (path, query) = target.split_once('?').unwrap_or((&target, ""));
            return Some(Request {
                method,
                path: path.to_owned(),
                query: form_urlencoded::parse(query.as_bytes())
                    .into_owned()
                    .collect(),
                headers,
                body,
            });
        }
        let mut chunk = [0u8; 65536];
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

enum Reply {
    Send(u16, Vec<(&'static str, String)>, String),
    Hangup,
}

fn serve(mut conn: TcpStream, state: &Mutex<State>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    while let Some(req) = read_request(&mut conn, &mut buf) {
        let reply = route(&req, state);
        let Reply::Send(status, headers, body) = reply else {
            return;
        };
        let mut head = format!("HTTP/1.1 {status} X\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if status != 204 {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        if conn.write_all(head.as_bytes()).is_err() || conn.write_all(body.as_bytes()).is_err() {
            return;
        }
    }
}

fn route(req: &Request, state: &Mutex<State>) -> Reply {
    if req.method == "POST" && req.path == format!("/{TENANT}/oauth2/v2.0/token") {
        let form: Vec<(String, String)> = form_urlencoded::parse(&req.body).into_owned().collect();
        let get = |k: &str| form.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
        let ok = get("grant_type") == Some("client_credentials")
            && get("client_id") == Some(CLIENT_ID)
            && get("client_secret") == Some(CLIENT_SECRET)
            && get("scope") == Some("https://monitor.azure.com/.default");
        return issue(state, ok, 3600_u64.into());
    }
    if req.method == "GET" && req.path == "/msi/token" {
        let get = |k: &str| {
            req.query
                .iter()
                .find(|(a, _)| a == k)
                .map(|(_, v)| v.as_str())
        };
        let ok = req.header("X-IDENTITY-HEADER") == Some(IDENTITY_HEADER)
            && get("resource") == Some("https://monitor.azure.com")
            && get("api-version") == Some("2019-08-01");
        // Managed identity endpoints send expires_in as a string.
        return issue(state, ok, "3600".into());
    }
    if req.method == "POST" && req.path == format!("/dataCollectionRules/{DCR}/streams/{STREAM}") {
        return ingest(req, state);
    }
    Reply::Send(
        404,
        vec![],
        r#"{"error":{"code":"NotFound","message":"no such route"}}"#.into(),
    )
}

fn issue(state: &Mutex<State>, ok: bool, expires_in: Value) -> Reply {
    let mut s = state.lock().unwrap();
    s.token_requests += 1;
    if !ok {
        s.violations.push("bad token request".into());
        return Reply::Send(400, vec![], r#"{"error":"invalid_request"}"#.into());
    }
    let token = format!("token-{}", s.token_requests);
    s.tokens.push(token.clone());
    let body = serde_json::json!({ "token_type": "Bearer", "access_token": token, "expires_in": expires_in });
    Reply::Send(200, vec![], body.to_string())
}

fn bad(s: &mut State, status: u16, code: &str, why: String) -> Reply {
    s.violations.push(why.clone());
    let body = serde_json::json!({ "error": { "code": code, "message": why } });
    Reply::Send(status, vec![], body.to_string())
}

fn ingest(req: &Request, state: &Mutex<State>) -> Reply {
    let fault = {
        let mut s = state.lock().unwrap();
        s.ingestion_requests += 1;
        let default = s.after_script.clone().unwrap_or(Fault::Accept);
        s.script.pop_front().unwrap_or(default)
    };
    match &fault {
        Fault::Drop => return Reply::Hangup,
        Fault::Throttle(secs) => {
            return Reply::Send(429, vec![("Retry-After", secs.to_string())], "{}".into())
        }
        Fault::ServerError => return Reply::Send(500, vec![], "{}".into()),
        Fault::Status(code) => {
            return Reply::Send(
                *code,
                vec![],
                r#"{"error":{"code":"Injected","message":"injected"}}"#.into(),
            )
        }
        Fault::Slow(d) => std::thread::sleep(*d),
        Fault::Accept | Fault::AcceptThenDrop => {}
    }
    let mut s = state.lock().unwrap();
    let auth = req.header("Authorization").unwrap_or("");
    if !auth
        .strip_prefix("Bearer ")
        .is_some_and(|t| s.tokens.iter().any(|k| k == t))
    {
        return bad(
            &mut s,
            401,
            "InvalidToken",
            format!("bad Authorization {auth:?}"),
        );
    }
    if req.query != [("api-version".to_owned(), "2023-01-01".to_owned())] {
        return bad(
            &mut s,
            400,
            "InvalidApiVersion",
            format!("query {:?}", req.query),
        );
    }
    if req.header("Content-Type") != Some("application/json") {
        return bad(&mut s, 415, "UnsupportedMediaType", "content type".into());
    }
    if req.header("Content-Encoding") != Some("gzip") {
        return bad(&mut s, 400, "NotGzip", "content encoding".into());
    }
    let mut json = Vec::new();
    if GzDecoder::new(&req.body[..])
        .read_to_end(&mut json)
        .is_err()
    {
        return bad(&mut s, 400, "InvalidGzip", "body is not gzip".into());
    }
    if json.len() > s.max_bytes {
        let why = format!("{} bytes uncompressed", json.len());
        return bad(&mut s, 413, "ContentLengthLimitExceeded", why);
    }
    let Ok(Value::Array(rows)) = serde_json::from_slice::<Value>(&json) else {
        return bad(
            &mut s,
            400,
            "InvalidJson",
            "body is not a JSON array".into(),
        );
    };
    let declared = normalizer::schema::stream_column_names();
    let mut times = Vec::new();
    for row in &rows {
        let Some(obj) = row.as_object() else {
            return bad(
                &mut s,
                400,
                "InvalidJson",
                "element is not an object".into(),
            );
        };
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        let mut want = declared.clone();
        keys.sort();
        want.sort();
        if keys != want {
            return bad(&mut s, 400, "InvalidColumns", format!("columns {keys:?}"));
        }
        match row["TimeGenerated"]
            .as_str()
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        {
            Some(t) => times.push(t),
            None => return bad(&mut s, 400, "InvalidTime", "TimeGenerated".into()),
        }
    }
    if let (Some(lo), Some(hi)) = (times.iter().min(), times.iter().max()) {
        if *hi - *lo > time::Duration::minutes(30) {
            let why = format!("records span {}", *hi - *lo);
            return bad(&mut s, 400, "RecordsTimeRangeIsMoreThan30Minutes", why);
        }
    }
    if rows.is_empty() {
        return bad(&mut s, 400, "Empty", "empty batch".into());
    }
    s.rows.extend(rows);
    if fault == Fault::AcceptThenDrop {
        return Reply::Hangup;
    }
    Reply::Send(204, vec![], String::new())
}
