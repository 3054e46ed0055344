//! Where alerts go: the failure webhook's client (a JSON POST to a URL held as a secret),
//! syslog (RFC 5424, octet-counted over TCP per RFC 6587, or a datagram to a Unix socket such
//! as `/dev/log`) and e-mail (SMTP through `lettre`, STARTTLS or TLS over rustls with ring;
//! plain SMTP only to a relay on this machine). Each channel is tried up to four times with growing pauses; a channel that
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
    email: Option<EmailSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailSpec {
    server: String,
    port: Option<u16>,
    /// `starttls` (default), `tls` (implicit, port 465) or `none` (loopback only).
    tls: Option<String>,
    /// A PEM file of a CA to trust besides the web's roots (a private relay).
    ca_file: Option<PathBuf>,
    from: String,
    to: Vec<String>,
    username: Option<String>,
    /// A secret reference (env:, file:) holding the password.
    password: Option<String>,
}

/// How alerts are mailed.
#[derive(Debug, Clone)]
pub struct Email {
    server: String,
    port: u16,
    tls: EmailTls,
    ca_pem: Option<Vec<u8>>,
    from: lettre::message::Mailbox,
    to: Vec<lettre::message::Mailbox>,
    credentials: Option<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EmailTls {
    StartTls,
    Wrapper,
    Plain,
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
    /// With `tls:`: the PEM file of the CA that signed the receiver's certificate (else the
    /// system's roots).
    ca_file: Option<PathBuf>,
}

/// A syslog receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogAddress {
    /// `tcp:HOST:PORT`: RFC 5424 messages, octet-counted (RFC 6587).
    Tcp(String),
    /// `unix:PATH`: one datagram per message (a stream socket gets a newline after each).
    Unix(PathBuf),
    /// `tls:HOST:PORT`: RFC 5424 messages over TLS (RFC 5425), octet-counted; the receiver's
    /// certificate is checked for HOST against `ca_file` (PEM), else the system's roots.
    Tls {
        /// `HOST:PORT`.
        host_port: String,
        /// The CA certificates to trust instead of the system's.
        ca_file: Option<PathBuf>,
    },
}

impl SyslogAddress {
    /// `tcp:HOST:PORT`, `tls:HOST:PORT` or `unix:PATH` (`ca_file` goes with `tls:`).
    pub fn parse(text: &str, ca_file: Option<PathBuf>) -> Option<SyslogAddress> {
        let nonempty = |rest: &str| (!rest.is_empty()).then(|| rest.to_string());
        if let Some(rest) = text.strip_prefix("tcp:").and_then(nonempty) {
            Some(SyslogAddress::Tcp(rest))
        } else if let Some(rest) = text.strip_prefix("tls:").and_then(nonempty) {
            Some(SyslogAddress::Tls {
                host_port: rest,
                ca_file,
            })
        } else {
            text.strip_prefix("unix:")
                .and_then(nonempty)
                .map(|p| SyslogAddress::Unix(PathBuf::from(p)))
        }
    }
}

/// The configured channels.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    /// The webhook URL's secret reference (`env:`, `file:`), resolved at each delivery.
    pub webhook: Option<String>,
    /// The syslog receiver and the APP-NAME of its messages.
    pub syslog: Option<(SyslogAddress, String)>,
    /// The SMTP relay and addresses.
    pub email: Option<Email>,
    /// Pauses between attempts (their number plus one is the number of attempts).
    pub pauses: Vec<Duration>,
}

impl Delivery {
    pub(super) fn from_spec(spec: DeliverySpec) -> Result<Delivery, String> {
        let syslog = match spec.syslog {
            None => None,
            Some(s) => {
                let Some(address) = SyslogAddress::parse(&s.address, s.ca_file.clone()) else {
                    return Err(format!(
                        "[delivery.syslog] address `{}` must be tcp:HOST:PORT, tls:HOST:PORT or \
                         unix:PATH",
                        s.address
                    ));
                };
                if s.ca_file.is_some() && !matches!(address, SyslogAddress::Tls { .. }) {
                    return Err("[delivery.syslog] ca_file goes with a tls: address".into());
                }
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
        let email = spec.email.map(email_from_spec).transpose()?;
        Ok(Delivery {
            webhook: spec.webhook.map(|w| w.url),
            syslog,
            email,
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
        if let Some(email) = &self.email {
            let ok = self.retrying("email", || mail(email, alert, redactor));
            hushflow_metrics::alert_delivered("email", ok);
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
            let mut s = tcp_connect(hostport)?;
            s.write_all(format!("{} {message}", message.len()).as_bytes())
                .and_then(|()| s.flush())
                .map_err(|e| format!("syslog {hostport}: {e}"))
        }
        SyslogAddress::Tls { host_port, ca_file } => {
            let failed = |e: &dyn std::fmt::Display| format!("syslog over TLS {host_port}: {e}");
            let config = super::tls::client_config(ca_file.as_deref()).map_err(|e| failed(&e))?;
            let host = host_port
                .rsplit_once(':')
                .map_or(host_port.as_str(), |(h, _)| h)
                .trim_start_matches('[')
                .trim_end_matches(']');
            let name = rustls::pki_types::ServerName::try_from(host.to_string())
                .map_err(|e| failed(&e))?;
            let connection = rustls::ClientConnection::new(config, name).map_err(|e| failed(&e))?;
            let mut stream = rustls::StreamOwned::new(connection, tcp_connect(host_port)?);
            stream
                .write_all(format!("{} {message}", message.len()).as_bytes())
                .and_then(|()| stream.flush())
                .map_err(|e| failed(&e))?;
            stream.conn.send_close_notify();
            stream.flush().map_err(|e| failed(&e))
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

/// A TCP connection to `HOST:PORT` with 5-second connect and write timeouts.
fn tcp_connect(hostport: &str) -> Result<std::net::TcpStream, String> {
    use std::net::ToSocketAddrs;
    let addr = hostport
        .to_socket_addrs()
        .map_err(|e| format!("syslog address {hostport}: {e}"))?
        .next()
        .ok_or_else(|| format!("syslog address {hostport}: no address"))?;
    let s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("syslog {hostport}: {e}"))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))
        .and_then(|()| s.set_read_timeout(Some(Duration::from_secs(5))))
        .map_err(|e| e.to_string())?;
    Ok(s)
}

fn email_from_spec(e: EmailSpec) -> Result<Email, String> {
    let tls = match e.tls.as_deref().unwrap_or("starttls") {
        "starttls" => EmailTls::StartTls,
        "tls" => EmailTls::Wrapper,
        "none" => EmailTls::Plain,
        other => {
            return Err(format!(
                "[delivery.email] tls = \"{other}\": give starttls, tls or none"
            ));
        }
    };
    if tls == EmailTls::Plain && !matches!(e.server.as_str(), "127.0.0.1" | "localhost" | "::1") {
        return Err(
            "[delivery.email] tls = \"none\" only to a relay on this machine \
                    (127.0.0.1, localhost): mail leaves the machine over TLS"
                .into(),
        );
    }
    let mailbox = |a: &str, key: &str| {
        a.parse::<lettre::message::Mailbox>()
            .map_err(|err| format!("[delivery.email] {key} `{a}` is not an address: {err}"))
    };
    if e.to.is_empty() {
        return Err("[delivery.email] to lists no address".into());
    }
    let ca_pem = match &e.ca_file {
        Some(p) => Some(
            std::fs::read(p)
                .map_err(|err| format!("[delivery.email] ca_file {}: {err}", p.display()))?,
        ),
        None => None,
    };
    if let Some(p) = &e.password {
        crate::secrets::providers(None).parse(p).map_err(|err| {
            format!(
                "[delivery.email] password must be a secret reference (env:NAME, file:PATH): {err}"
            )
        })?;
    }
    let credentials = match (e.username, e.password) {
        (Some(u), Some(p)) => Some((u, p)),
        (None, None) => None,
        _ => return Err("[delivery.email] give username and password together".into()),
    };
    Ok(Email {
        port: e.port.unwrap_or(match tls {
            EmailTls::StartTls => 587,
            EmailTls::Wrapper => 465,
            EmailTls::Plain => 25,
        }),
        server: e.server,
        tls,
        ca_pem,
        from: mailbox(&e.from, "from")?,
        to: e
            .to
            .iter()
            .map(|a| mailbox(a, "to"))
            .collect::<Result<_, _>>()?,
        credentials,
    })
}

fn mail(email: &Email, alert: &Alert, redactor: &Redactor) -> Result<(), String> {
    use lettre::Transport;
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    let mut builder = lettre::Message::builder()
        .from(email.from.clone())
        .subject(format!(
            "[hushflow {}] {}",
            alert.kind.severity().as_str(),
            alert.kind.as_str()
        ));
    for to in &email.to {
        builder = builder.to(to.clone());
    }
    let body = format!(
        "{}\n\nkind: {}\nseverity: {}\nactor: {}\npipeline: {}\naudit record: {}\n\n\
         `hushflow audit list` shows the record and the alert.\n",
        alert.summary,
        alert.kind.as_str(),
        alert.kind.severity().as_str(),
        alert.actor,
        alert.pipeline.as_deref().unwrap_or("-"),
        alert.seq
    );
    let message = builder
        .body(body)
        .map_err(|e| format!("the alert mail could not be built: {e}"))?;
    let params = || {
        let mut p = TlsParameters::builder(email.server.clone());
        if let Some(pem) = &email.ca_pem {
            let cert = Certificate::from_pem(pem).map_err(|e| format!("ca_file: {e}"))?;
            p = p.add_root_certificate(cert);
        }
        p.build()
            .map_err(|e| format!("TLS to {}: {e}", email.server))
    };
    let tls = match email.tls {
        EmailTls::StartTls => Tls::Required(params()?),
        EmailTls::Wrapper => Tls::Wrapper(params()?),
        EmailTls::Plain => Tls::None,
    };
    let mut transport = lettre::SmtpTransport::builder_dangerous(email.server.clone())
        .port(email.port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(10)));
    if let Some((user, reference)) = &email.credentials {
        let resolver = crate::secrets::resolver(redactor, None);
        let parsed = resolver.parse(reference).map_err(|e| e.to_string())?;
        let password = resolver.resolve(&parsed).map_err(|e| e.to_string())?;
        let password = password
            .expose_str()
            .map_err(|e| e.to_string())?
            .to_string();
        transport = transport.credentials(
            lettre::transport::smtp::authentication::Credentials::new(user.clone(), password),
        );
    }
    transport
        .build()
        .send(&message)
        .map(|_| ())
        // The relay's answer names the server and a code, never a credential.
        .map_err(|e| format!("SMTP {}:{}: {e}", email.server, email.port))
}
