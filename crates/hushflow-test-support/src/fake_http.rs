//! The HTTP/1.1 plumbing the fake vendor APIs share: a loopback listener with a thread per
//! connection, keep-alive, requests with `Content-Length` or chunked bodies, and answers written
//! in one segment. Each fake keeps only its state and its routes (`handle`).
//!
//! Test code: a loopback socket that cannot be bound or cloned is a broken test machine.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request as a fake sees it.
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    /// The query string, undecoded (see [`form`]).
    pub(crate) query: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Request {
    /// The first header of that name, compared without regard to case.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A fake's answer: JSON, or `raw` bytes of another type (empty: no body at all).
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Value,
    pub(crate) raw: Option<(&'static str, Vec<u8>)>,
}

/// A JSON answer.
pub(crate) fn answer(status: u16, body: Value) -> Answer {
    Answer {
        status,
        headers: Vec::new(),
        body,
        raw: None,
    }
}

/// An answer that is not JSON.
pub(crate) fn raw(status: u16, content_type: &'static str, body: Vec<u8>) -> Answer {
    Answer {
        status,
        headers: Vec::new(),
        body: Value::Null,
        raw: Some((content_type, body)),
    }
}

/// `a=1&b=x+y` (a query string or a form body) as decoded pairs; `+` is a space.
pub(crate) fn form(text: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// A running fake: its listener thread stops when this is dropped.
pub(crate) struct FakeServer {
    /// `http://127.0.0.1:PORT`.
    pub(crate) url: String,
    stop: Arc<AtomicBool>,
}

impl FakeServer {
    /// Answers every request on `listener` (bound by the fake, whose state may need its URL)
    /// with `handle` on the locked state; JSON answers go out as `json_type`.
    pub(crate) fn start<S: Send + 'static>(
        listener: TcpListener,
        state: Arc<Mutex<S>>,
        json_type: &'static str,
        handle: fn(&mut S, &Request) -> Answer,
    ) -> FakeServer {
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let s = state.clone();
                std::thread::spawn(move || serve(stream, &s, json_type, handle));
            }
        });
        FakeServer { url, stop }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

fn serve<S>(
    stream: TcpStream,
    state: &Mutex<S>,
    json_type: &str,
    handle: fn(&mut S, &Request) -> Answer,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let _ = stream.set_nodelay(true);
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        let close = request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let a = {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            handle(&mut s, &request)
        };
        let (content_type, body) = match a.raw {
            Some((t, b)) => (t, b),
            None => (json_type, serde_json::to_vec(&a.body).unwrap()),
        };
        let reason = match a.status {
            200 => "OK",
            201 => "Created",
            207 => "Multi-Status",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            409 => "Conflict",
            429 => "Too Many Requests",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            _ => "Status",
        };
        let mut head = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Length: {}\r\n",
            a.status,
            body.len()
        );
        if !body.is_empty() {
            head.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        for (k, v) in &a.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        // One write (and no Nagle): head and body in two segments would wait out the client's
        // delayed ACK, 40 ms an answer.
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&body);
        if writer.write_all(&bytes).is_err() || close {
            return;
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body = vec![0; n];
        reader.read_exact(&mut body).ok()?;
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    Some(Request {
        method,
        path,
        query,
        headers,
        body,
    })
}
