//! Writers that scrub what passes through them, and the `MakeWriter` that puts one under the
//! `tracing` fmt layer.
//!
//! Scrubbing each `write()` on its own would let a secret split across two calls through, so
//! the writer buffers and scrubs at `flush()` or drop. The fmt layer asks for a new writer per
//! event and drops it afterwards, so in practice each event is scrubbed whole.

use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;
use zeroize::Zeroize;

use crate::Redactor;

/// Past this much buffered output, the writer emits what no secret can straddle and keeps the
/// rest, so that a long-lived writer that is never flushed does not grow without bound.
const SPILL_AT: usize = 64 * 1024;

/// An [`io::Write`] that scrubs registered secrets from everything written through it before
/// it reaches `inner`. Output reaches `inner` on [`flush`](Write::flush) and on drop (where
/// errors can only be ignored; flush first to see them).
pub struct RedactingWriter<W: Write> {
    inner: W,
    redactor: Redactor,
    // Unscrubbed output, so wiped once emitted.
    pending: Vec<u8>,
}

impl<W: Write> RedactingWriter<W> {
    /// A writer that scrubs what `redactor` knows from everything it passes on to `inner`.
    pub fn new(inner: W, redactor: Redactor) -> Self {
        RedactingWriter {
            inner,
            redactor,
            pending: Vec::new(),
        }
    }

    /// Scrubs and writes out everything buffered.
    fn emit_all(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let result = {
            let (out, _) = self.redactor.scrub_split(&self.pending, false);
            self.inner.write_all(&out)
        };
        // Dropped even on error: retrying could write part of a line twice, and keeping it
        // would hold unscrubbed text indefinitely.
        self.pending.zeroize();
        result
    }

    /// Scrubs and writes out the part of the buffer that no secret can straddle.
    fn emit_prefix(&mut self) -> io::Result<()> {
        let used = {
            let (out, used) = self.redactor.scrub_split(&self.pending, true);
            self.inner.write_all(&out)?;
            used
        };
        self.pending[..used].zeroize();
        self.pending.drain(..used);
        Ok(())
    }
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= SPILL_AT {
            self.emit_prefix()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.emit_all()?;
        self.inner.flush()
    }
}

impl<W: Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        // Drop cannot report errors, and a logger has nowhere to report its own failures.
        let _ = self.flush();
    }
}

impl<W: Write> std::fmt::Debug for RedactingWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedactingWriter")
            .field("buffered", &self.pending.len())
            .finish_non_exhaustive()
    }
}

/// A [`MakeWriter`] whose writers scrub secrets; by default they write to stderr. Build one with
/// [`Redactor::make_writer`] and pass it to `tracing_subscriber::fmt().with_writer(..)`.
#[derive(Clone, Debug)]
pub struct RedactingMakeWriter<M = fn() -> io::Stderr> {
    redactor: Redactor,
    inner: M,
}

impl<M> RedactingMakeWriter<M> {
    /// Wraps any `MakeWriter` (a file, a test buffer, `std::io::stdout`).
    pub fn new(redactor: Redactor, inner: M) -> Self {
        RedactingMakeWriter { redactor, inner }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for RedactingMakeWriter<M> {
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter::new(self.inner.make_writer(), self.redactor.clone())
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        RedactingWriter::new(self.inner.make_writer_for(meta), self.redactor.clone())
    }
}

impl Redactor {
    /// A `MakeWriter` for `tracing_subscriber::fmt().with_writer(..)` that writes scrubbed
    /// events to stderr.
    pub fn make_writer(&self) -> RedactingMakeWriter {
        RedactingMakeWriter::new(self.clone(), io::stderr as fn() -> io::Stderr)
    }

    /// Like [`Redactor::make_writer`], over another `MakeWriter`.
    pub fn make_writer_with<M>(&self, inner: M) -> RedactingMakeWriter<M> {
        RedactingMakeWriter::new(self.clone(), inner)
    }

    /// An [`io::Write`] that scrubs what is written to `inner`.
    pub fn writer<W: Write>(&self, inner: W) -> RedactingWriter<W> {
        RedactingWriter::new(inner, self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretValue;
    use std::sync::{Arc, Mutex};

    const CANARY: &str = "canary-Zq81xLw3";

    fn redactor() -> Redactor {
        let r = Redactor::new();
        r.register(&SecretValue::new(CANARY.as_bytes().to_vec()));
        r
    }

    #[test]
    fn a_secret_split_across_writes_is_masked() {
        let r = redactor();
        let mut out = Vec::new();
        {
            let mut w = r.writer(&mut out);
            w.write_all(b"token=canary-").unwrap();
            w.write_all(b"Zq81xLw3 done\n").unwrap();
        }
        assert_eq!(out, b"token=*** done\n");
    }

    #[test]
    fn flush_emits_and_later_writes_follow() {
        let r = redactor();
        let mut w = r.writer(Vec::new());
        w.write_all(CANARY.as_bytes()).unwrap();
        w.flush().unwrap();
        assert_eq!(w.inner, b"***");
        w.write_all(b" and ").unwrap();
        w.write_all(CANARY.as_bytes()).unwrap();
        w.flush().unwrap();
        assert_eq!(w.inner, b"*** and ***");
        assert!(!format!("{w:?}").contains(CANARY));
    }

    #[test]
    fn long_unflushed_output_spills_without_leaking() {
        let r = redactor();
        let mut w = r.writer(Vec::new());
        // Canaries at every alignment around the spill point, written in odd-sized chunks.
        let mut text = String::new();
        while text.len() < 3 * SPILL_AT {
            text.push_str("xy ");
            text.push_str(CANARY);
        }
        for chunk in text.as_bytes().chunks(997) {
            w.write_all(chunk).unwrap();
        }
        assert!(!w.inner.is_empty(), "nothing spilled");
        assert!(w.pending.len() < SPILL_AT);
        w.flush().unwrap();
        let out = String::from_utf8(w.inner.clone()).unwrap();
        assert!(!out.contains("canary"), "leaked");
        assert_eq!(out, text.replace(CANARY, "***"));
    }

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn tracing_events_are_scrubbed() {
        let r = Redactor::new();
        let buf = Shared::default();
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(r.make_writer_with(move || sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("before registration: nothing to hide");
            // Registered after the subscriber was built: the writer must still see it.
            r.register(&SecretValue::new(CANARY.as_bytes().to_vec()));
            tracing::info!(token = CANARY, "connecting with {CANARY}");
            tracing::warn!(hex = %hex::encode(CANARY), "hex form");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(out.contains("nothing to hide"), "{out}");
        assert!(out.contains("connecting with ***"), "{out}");
        assert!(
            out.contains("token=\"***\"") || out.contains("token=***"),
            "{out}"
        );
        assert!(out.contains("hex=***"), "{out}");
        assert!(!out.contains(CANARY), "{out}");
        assert!(!out.contains(&hex::encode(CANARY)), "{out}");
    }
}
