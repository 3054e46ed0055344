//! The `hushflow` command: parses arguments, sets up redacted output, and hands each
//! sub-command to the crate that does the work. Nothing else lives here.

mod cli;
mod commands;
mod output;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let out = output::Output::install(cli.global.verbose);
    let result = commands::dispatch(cli, &out);
    // Alerts raised by this command's audit records are delivered on their own threads; a
    // short wait lets them leave before the process does (they stay audited regardless).
    let left = hushflow_app::alerts::flush(std::time::Duration::from_secs(10));
    if left > 0 {
        out.note(format!(
            "warning: {left} alert delivery(ies) still retrying at exit were abandoned; the alerts are in the audit log"
        ));
    }
    match result {
        Ok(code) => code.into(),
        Err(e) => {
            out.error(&e.message);
            e.code.into()
        }
    }
}
