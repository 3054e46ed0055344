//! The Prometheus side: installing the recorder (the exposition text is rendered by
//! `metrics-exporter-prometheus`, never by hand), serving it on `GET /metrics` from a small
//! `std::net` listener (the exporter's own listener would bring hyper and tokio), and writing
//! it as a textfile for node_exporter's textfile collector.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder for this process (once; later calls answer the same
/// handle), with real histograms (buckets, not summaries) and every metric described.
pub fn install() -> io::Result<PrometheusHandle> {
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets(crate::DURATION_BUCKETS)
        .and_then(|b| b.install_recorder())
        .map_err(|e| io::Error::other(format!("the metrics recorder could not start: {e}")))?;
    crate::describe();
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// The metrics now, in the Prometheus text format; empty when no recorder was installed.
pub fn render() -> String {
    HANDLE
        .get()
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}

/// Serves `GET /metrics` on `addr` from a thread of its own, for the rest of the process.
/// Answers the bound address (port 0 picks one). Anything else than `GET /metrics` gets 404;
/// one request per connection, with short timeouts, so a slow client cannot hold it.
pub fn serve(addr: SocketAddr) -> io::Result<SocketAddr> {
    install()?;
    let listener = TcpListener::bind(addr).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("--metrics-addr {addr}: {e}; pick a free port (or 127.0.0.1:0)"),
        )
    })?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                // A failed answer concerns that client only.
                let _ = answer(stream);
            }
        })?;
    Ok(bound)
}

fn answer(stream: TcpStream) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // Headers are read and dropped: nothing in them changes the answer.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut parts = request.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, body) = match (method, path) {
        ("GET", "/metrics") => ("200 OK", render()),
        ("GET", "/") => ("200 OK", "hushflow metrics: GET /metrics\n".to_string()),
        _ => ("404 Not Found", "not found: GET /metrics\n".to_string()),
    };
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    out.write_all(body.as_bytes())?;
    out.flush()
}

/// Writes the metrics to `path` at once (a temporary file beside it, synced and renamed), so
/// node_exporter's textfile collector never reads half a file. Mode 0644: the collector
/// usually runs as another user, and the file holds counts and names only.
pub fn write_textfile(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".hushflow-metrics")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(render().as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = std::fs::File::open(dir) {
        // The rename is durable once the directory is synced; failing that, it still happened.
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::io::Read;

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn serves_and_writes_what_was_recorded() {
        let addr = serve("127.0.0.1:0".parse().unwrap()).unwrap();
        crate::sync_finished(&crate::Sync {
            pipeline: "crm",
            task: "run",
            outcome: "success",
            read: 5,
            written: 4,
            filtered: 1,
            seconds: 0.5,
            sink: "csv",
            sink_writes: &[0.01, 0.02],
            ..Default::default()
        });
        crate::audit_record("detokenize", "ok", &BTreeMap::from([("tokens".into(), 3)]));
        let text = get(addr, "/metrics");
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        assert!(
            text.contains(r#"hushflow_records_total{pipeline="crm",task="run",kind="written"} 4"#),
            "{text}"
        );
        assert!(
            text.contains("hushflow_sink_write_seconds_bucket"),
            "{text}"
        );
        assert!(text.contains(r#"hushflow_detokenized_values_total{outcome="ok"} 3"#));
        assert!(get(addr, "/other").starts_with("HTTP/1.1 404"));

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hushflow.prom");
        write_textfile(&file).unwrap();
        let written = std::fs::read_to_string(&file).unwrap();
        assert!(
            written.contains("# TYPE hushflow_records_total counter"),
            "{written}"
        );
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }
}
