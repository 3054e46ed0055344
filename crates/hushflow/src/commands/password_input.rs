//! Reading a password: from the terminal (twice, not echoed) or, with `--password-stdin`, from
//! the first line of stdin. Never from the command line, where other users (`ps`) and the
//! shell's history would see it. The password is registered with the redactor at once, so no
//! output of this process can show it.

use super::{Failure, failure, invalid};
use crate::output::Output;
use hushflow_secrets::SecretValue;
use std::io::{BufRead, IsTerminal, Write};
use zeroize::Zeroizing;

/// The password for user `user`, from stdin or the terminal.
pub(super) fn read_password(
    out: &Output,
    user: &str,
    from_stdin: bool,
) -> Result<Zeroizing<String>, Failure> {
    let password = if from_stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| failure(format!("reading the password from stdin: {e}")))?;
        let trimmed = line.trim_end_matches(['\n', '\r']);
        Zeroizing::new(trimmed.to_string())
    } else {
        if !std::io::stdin().is_terminal() {
            return Err(invalid(
                "no terminal to ask for the password on; give --password-stdin and the \
                 password on stdin's first line",
            ));
        }
        let first = prompt(&format!("password for {user}: "))?;
        let second = prompt("the same again: ")?;
        if *first != *second {
            return Err(invalid("the two passwords differ; nothing was changed"));
        }
        first
    };
    if password.is_empty() {
        return Err(invalid(
            "the password is empty; give it on the terminal or stdin's first line",
        ));
    }
    out.redactor
        .register(&SecretValue::new(password.as_bytes().to_vec()));
    Ok(password)
}

/// Restores the terminal's echo when dropped, however the prompt ends.
struct EchoOff<'a> {
    tty: &'a std::fs::File,
    saved: rustix::termios::Termios,
}

impl Drop for EchoOff<'_> {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            self.tty,
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

/// One line typed on the controlling terminal without echo.
fn prompt(text: &str) -> Result<Zeroizing<String>, Failure> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let no_tty = |e: &dyn std::fmt::Display| {
        failure(format!(
            "the terminal: {e}; give --password-stdin and the password on stdin's first line"
        ))
    };
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| no_tty(&e))?;
    let saved = tcgetattr(&tty).map_err(|e| no_tty(&e))?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    let _restore = EchoOff { tty: &tty, saved };
    tcsetattr(&tty, OptionalActions::Flush, &quiet).map_err(|e| no_tty(&e))?;
    (&tty).write_all(text.as_bytes()).map_err(|e| no_tty(&e))?;
    let mut line = Zeroizing::new(String::new());
    std::io::BufReader::new(&tty)
        .read_line(&mut line)
        .map_err(|e| no_tty(&e))?;
    Ok(Zeroizing::new(
        line.trim_end_matches(['\n', '\r']).to_string(),
    ))
}
