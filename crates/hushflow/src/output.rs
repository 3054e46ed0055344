//! Everything hushflow prints goes through here or through the tracing subscriber installed
//! here, and both pass the text through the [`Redactor`] that knows every secret resolved in
//! this process. A panic message is scrubbed by the same redactor.

use hushflow_secrets::Redactor;
use std::io::{IsTerminal, Write};

pub struct Output {
    pub redactor: Redactor,
}

impl Output {
    pub fn install(verbose: u8) -> Output {
        let redactor = Redactor::new();
        // Panic messages may quote record data: shown only to someone debugging on purpose.
        redactor.install_panic_hook(
            std::env::var_os("HUSHFLOW_DEBUG_PANICS").is_some_and(|v| v == "1"),
        );
        let level = match verbose {
            0 => "warn",
            1 => "info",
            _ => "debug",
        };
        // Library crates (hyper, reqwest later) dump headers at trace level: cap them.
        let filter = tracing_subscriber::EnvFilter::try_from_env("HUSHFLOW_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(redactor.make_writer())
            .with_ansi(std::io::stderr().is_terminal())
            .try_init();
        Output { redactor }
    }

    /// A line on stdout, scrubbed.
    pub fn line(&self, text: impl AsRef<str>) {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{}", self.redactor.scrub(text.as_ref()));
    }

    /// A line on stderr, scrubbed.
    pub fn note(&self, text: impl AsRef<str>) {
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "{}", self.redactor.scrub(text.as_ref()));
    }

    pub fn error(&self, text: &str) {
        self.note(format!("error: {text}"));
    }
}
