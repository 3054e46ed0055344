//! Synthetic contact exports for demos, tests and benchmarks: realistic, dirty the way real CRM
//! exports are, and deterministic, so that a seed names a data set.
//!
//! The contacts come from a dozen locales (names with umlauts, accents and CJK characters, local
//! postcodes and phone formats). Some fields are empty, e-mail addresses carry capitals and
//! stray blanks, company names carry commas and quotes, and the free-text `notes` field now and
//! then holds personal data that should not be there: e-mail addresses, phone numbers,
//! Luhn-valid card numbers, IBANs with valid checksums, US social security numbers and IP
//! addresses. Everything is drawn at random from word lists: e-mail domains are reserved
//! `.example` names, phone numbers use the fictional ranges where a country has them (US
//! 555-01xx, UK drama numbers), and card numbers, IBANs and SSNs are random digits that merely
//! pass their checks.
//!
//! The same `(rows, seed, format)` always gives the same bytes, and a smaller `rows` gives a
//! prefix of a larger one. Row `i` describes the same contact in CSV and in JSON lines.

mod contact;
mod dice;
mod names;
mod pii;
#[cfg(test)]
mod tests;

use contact::{ID, MARKETING_OPT_IN, Missing, Row};
use dice::Dice;
use std::io::{self, Write};

/// The columns of a sample, in order: the CSV header and the keys of every JSON object.
pub const FIELDS: [&str; 16] = [
    "id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "job_title",
    "street",
    "city",
    "postal_code",
    "country",
    "birth_date",
    "marketing_opt_in",
    "created_at",
    "updated_at",
    "notes",
];

/// The file format a sample is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A header row, then one record per contact, quoted per RFC 4180 where needed.
    Csv,
    /// One JSON object per line; missing values are `null`, left out or `""`.
    Jsonl,
}

/// What sample to write: the same options always give the same bytes.
#[derive(Debug, Clone)]
pub struct SampleOptions {
    /// How many contacts to write.
    pub rows: u64,
    /// The seed the contacts are drawn from; another seed gives another data set.
    pub seed: u64,
    /// The file format to write them in.
    pub format: Format,
}

/// Bytes gathered before each write to `out`, so that an unbuffered writer is fine.
const CHUNK: usize = 256 * 1024;

/// Writes `rows` contacts; returns rows written. Deterministic for a given (rows, seed, format).
///
/// `out` needs no buffering of its own. The only errors are those of `out`.
pub fn write_contacts<W: Write>(opts: &SampleOptions, out: W) -> io::Result<u64> {
    let mut dice = Dice::new(opts.seed);
    let mut row = Row::new();
    match opts.format {
        Format::Csv => {
            let mut csv = csv::WriterBuilder::new()
                .buffer_capacity(CHUNK)
                .from_writer(out);
            csv.write_record(FIELDS)?;
            for index in 0..opts.rows {
                contact::fill(&mut row, index, &mut dice);
                csv.write_record(&row.fields)?;
            }
            csv.flush()?;
        }
        Format::Jsonl => {
            let mut out = out;
            let mut buf = Vec::with_capacity(CHUNK + 8 * 1024);
            for index in 0..opts.rows {
                contact::fill(&mut row, index, &mut dice);
                push_json(&mut buf, &row)?;
                if buf.len() >= CHUNK {
                    out.write_all(&buf)?;
                    buf.clear();
                }
            }
            out.write_all(&buf)?;
            out.flush()?;
        }
    }
    Ok(opts.rows)
}

/// Appends one contact as a JSON object and a newline. `id` is always a string; an empty field
/// is written the way this row's export style says; `marketing_opt_in` is a boolean or `null`.
fn push_json(buf: &mut Vec<u8>, row: &Row) -> io::Result<()> {
    buf.push(b'{');
    let mut first = true;
    for (index, (name, value)) in FIELDS.iter().zip(&row.fields).enumerate() {
        let missing = if index == MARKETING_OPT_IN {
            row.opt_in.is_none()
        } else {
            index != ID && value.is_empty()
        };
        if missing && row.missing == Missing::Omitted {
            continue;
        }
        if !first {
            buf.push(b',');
        }
        first = false;
        serde_json::to_writer(&mut *buf, name)?;
        buf.push(b':');
        match (index == MARKETING_OPT_IN, row.opt_in) {
            (true, Some(true)) => buf.extend_from_slice(b"true"),
            (true, Some(false)) => buf.extend_from_slice(b"false"),
            (true, None) => buf.extend_from_slice(b"null"),
            (false, _) if missing && row.missing == Missing::Null => {
                buf.extend_from_slice(b"null");
            }
            (false, _) => serde_json::to_writer(&mut *buf, value)?,
        }
    }
    buf.extend_from_slice(b"}\n");
    Ok(())
}
