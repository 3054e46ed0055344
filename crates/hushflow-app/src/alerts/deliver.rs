//! Where alerts go: the failure webhook's client (a JSON POST to a URL held as a secret) and
//! syslog (RFC 5424, octet-counted over TCP per RFC 6587, or a datagram to a Unix socket such
//! as `/dev/log`). Each channel is tried up to four times with growing pauses; a channel that
//! still fails is logged and counted (`hushflow_alert_deliveries_total{outcome="failed"}`): the
//! alert stays in the audit log either way.

use super::rules::Alert;
use hushflow_secrets::Redactor;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// `[delivery]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeliverySpec {
    webhook: Option<WebhookSpec>,
    syslog: Option<SyslogSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookSpec {
    url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyslogSpec {
    address: String,
    app_name: Option<String>,
}

/// A syslog receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogAddress {
    /// `tcp:HOST:PORT`: RFC 5424 messages, octet-counted (RFC 6587).
    Tcp(String),
    /// `unix:PATH`: one datagram per message (a stream socket gets a newline after each).
    Unix(PathBuf),
}

/// The configured channels.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    /// The webhook URL's secret reference (`env:`, `file:`), resolved at each delivery.
    pub webhook: Option<String>,
    /// The syslog receiver and the APP-NAME of its messages.
    pub syslog: Option<(SyslogAddress, String)>,
    /// Pauses between attempts (their number plus one is the number of attempts).
    pub pauses: Vec<Duration>,
}

impl Delivery {
    pub(super) fn from_spec(spec: DeliverySpec) -> Result<Delivery, String> {
        let syslog = match spec.syslog {
            None => None,
            Some(s) => {
                let address = if let Some(rest) = s.address.strip_prefix("tcp:") {
                    SyslogAddress::Tcp(rest.to_string())
                } else if let Some(rest) = s.address.strip_prefix("unix:") {
                    SyslogAddress::Unix(PathBuf::from(rest))
                } else {
                    return Err(format!(
                        "[delivery.syslog] address `{}` must be tcp:HOST:PORT or unix:PATH",
                        s.address
                    ));
                };
                let app = s.app_name.unwrap_or_else(|| "hushflow".into());
                if app.is_empty() || app.len() > 48 || !app.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(
                        "[delivery.syslog] app_name must be 1 to 48 printable ASCII \
                                characters without spaces"
                            .into(),
                    );
                }
                Some((address, app))
            }
        };
        if let Some(w) = &spec.webhook {
            crate::secrets::providers(None).parse(&w.url).map_err(|e| {
                format!(
                    "[delivery.webhook] url must be a secret reference (env:NAME, file:PATH): {e}"
                )
            })?;
        }
        Ok(Delivery {
            webhook: spec.webhook.map(|w| w.url),
            syslog,
            pauses: vec![
                Duration::from_millis(200),
                Duration::from_secs(1),
                Duration::from_secs(3),
            ],
        })
    }

    /// Delivers `alert` on every channel, retrying each; never fails (outcomes are logged and
    /// counted).
    pub fn send(&self, alert: &Alert, redactor: &Redactor) {
        if let Some(reference) = &self.webhook {
            let ok = self.retrying("webhook", || webhook(reference, alert, redactor));
            hushflow_metrics::alert_delivered("webhook", ok);
        }
        if let Some((address, app)) = &self.syslog {
            let message = rfc5424(alert, app);
            let ok = self.retrying("syslog", || syslog_send(address, &message));
            hushflow_metrics::alert_delivered("syslog", ok);
        }
    }

    fn retrying(&self, channel: &str, mut attempt: impl FnMut() -> Result<(), String>) -> bool {
        let mut pauses = self.pauses.iter();
        loop {
            match attempt() {
                Ok(()) => return true,
                Err(e) => match pauses.next() {
                    Some(p) => std::thread::sleep(*p),
                    None => {
                        tracing::warn!("alert delivery to {channel} failed: {e}");
                        return false;
                    }
                },
            }
        }
    }
}

/// What the webhook receives.
#[derive(Debug, Serialize)]
pub struct AlertEvent<'a> {
    /// The event's format version.
    pub version: u32,
    /// `alert`.
    pub event: &'static str,
    /// The rule kind.
    pub kind: &'static str,
    /// `critical` or `warning`.
    pub severity: &'static str,
    /// The alert's text.
    pub summary: &'a str,
    /// Who acted.
    pub actor: &'a str,
    /// The pipeline concerned, if any.
    pub pipeline: Option<&'a str>,
    /// The audit record that raised it.
    pub audit_seq: u64,
}

fn webhook(reference: &str, alert: &Alert, redactor: &Redactor) -> Result<(), String> {
    let resolver = crate::secrets::resolver(redactor, None);
    let parsed = resolver.parse(reference).map_err(|e| e.to_string())?;
    let url = resolver.resolve(&parsed).map_err(|e| e.to_string())?;
    let url = url
        .expose_str()
        .map_err(|e| e.to_string())?
        .trim()
        .to_string();
    crate::webhook::check_webhook_url(&url).map_err(|e| e.message)?;
    let event = AlertEvent {
        version: 1,
        event: "alert",
        kind: alert.kind.as_str(),
        severity: alert.kind.severity().as_str(),
        summary: &alert.summary,
        actor: &alert.actor,
        pipeline: alert.pipeline.as_deref(),
        audit_seq: alert.seq,
    };
    crate::webhook::post(&url, &event).map_err(|e| e.message)
}

/// An RFC 5424 message: facility 13 (log audit), the kind as MSGID, the alert's fields as
/// structured data under hushflow's SD-ID, the summary as MSG.
pub fn rfc5424(alert: &Alert, app: &str) -> String {
    let pri = 13 * 8 + alert.kind.severity().syslog();
    let now = jiff::Timestamp::now();
    let time = jiff::Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "-".into());
    let sd = |v: &str| {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace(']', "\\]")
    };
    let pipeline = alert
        .pipeline
        .as_deref()
        .map(|p| format!(" pipeline=\"{}\"", sd(p)))
        .unwrap_or_default();
    format!(
        "<{pri}>1 {time} {host} {app} {} {} [hushflow@32473 kind=\"{}\" severity=\"{}\" \
         actor=\"{}\" seq=\"{}\"{pipeline}] {}",
        std::process::id(),
        alert.kind.as_str(),
        alert.kind.as_str(),
        alert.kind.severity().as_str(),
        sd(&alert.actor),
        alert.seq,
        alert.summary.replace('\n', " ")
    )
}

/// Sends one message to a syslog receiver (also audit shipping's).
pub fn syslog_send(address: &SyslogAddress, message: &str) -> Result<(), String> {
    match address {
        SyslogAddress::Tcp(hostport) => {
            use std::net::ToSocketAddrs;
            let addr = hostport
                .to_socket_addrs()
                .map_err(|e| format!("syslog address {hostport}: {e}"))?
                .next()
                .ok_or_else(|| format!("syslog address {hostport}: no address"))?;
            let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                .map_err(|e| format!("syslog {hostport}: {e}"))?;
            s.set_write_timeout(Some(Duration::from_secs(5)))
                .map_err(|e| e.to_string())?;
            s.write_all(format!("{} {message}", message.len()).as_bytes())
                .and_then(|()| s.flush())
                .map_err(|e| format!("syslog {hostport}: {e}"))
        }
        SyslogAddress::Unix(path) => {
            let datagram = std::os::unix::net::UnixDatagram::unbound()
                .and_then(|d| d.send_to(message.as_bytes(), path));
            match datagram {
                Ok(_) => Ok(()),
                Err(_) => {
                    let mut s = std::os::unix::net::UnixStream::connect(path)
                        .map_err(|e| format!("syslog {}: {e}", path.display()))?;
                    s.write_all(format!("{message}\n").as_bytes())
                        .map_err(|e| format!("syslog {}: {e}", path.display()))
                }
            }
        }
    }
}
