//! `hushflow sample`: synthetic contacts for trying pipelines out.

use super::{Exit, Failure, failure};
use crate::cli::{ContactsArgs, SampleCommand, SampleFormat};
use crate::output::Output;
use std::io::{BufWriter, Write};
use std::time::Instant;

pub(super) fn sample(out: &Output, cmd: SampleCommand) -> Result<Exit, Failure> {
    let SampleCommand::Contacts(ContactsArgs {
        rows,
        seed,
        format,
        out: path,
    }) = cmd;
    let path = path.as_path();
    let started = Instant::now();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| failure(format!("{}: {e}", parent.display())))?;
    }
    let file =
        std::fs::File::create(path).map_err(|e| failure(format!("{}: {e}", path.display())))?;
    let opts = hushflow_sample::SampleOptions {
        rows,
        seed,
        format: match format {
            SampleFormat::Csv => hushflow_sample::Format::Csv,
            SampleFormat::Jsonl => hushflow_sample::Format::Jsonl,
        },
    };
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    let written = hushflow_sample::write_contacts(&opts, &mut writer)
        .and_then(|n| writer.flush().map(|_| n))
        .map_err(|e| failure(format!("{}: {e}", path.display())))?;
    out.line(format!(
        "wrote {written} synthetic contacts to {} in {:.2}s",
        path.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(Exit::Success)
}
