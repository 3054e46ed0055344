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
    match commands::dispatch(cli, &out) {
        Ok(code) => code.into(),
        Err(e) => {
            out.error(&e.message);
            e.code.into()
        }
    }
}
