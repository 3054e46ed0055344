//! Field lists: which fields a source copies and which a sink writes. Field names come from
//! headers and pipeline files, never from records, so messages may quote them.

use hushflow_core::{Batch, Column, Error, Schema};
use std::path::Path;

/// Fails if a name appears twice in `names`; `what` says where the list comes from.
pub(crate) fn check_unique(path: &Path, names: &[String], what: &str) -> Result<(), Error> {
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(Error::Config(format!(
                "{}: {what} lists `{name}` twice",
                path.display()
            )));
        }
    }
    Ok(())
}

/// Joins names for a message: "`a`, `b`, `c`".
pub(crate) fn list(names: &[String]) -> String {
    if names.is_empty() {
        return "(none)".to_string();
    }
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a sink writes: the output field names and each one's position in the schema.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    /// The schema the sink was opened with; every batch must have it.
    pub schema: Schema,
    pub names: Vec<String>,
    pub positions: Vec<usize>,
}

impl Output {
    /// Resolves a sink's `fields` setting (`None`: every field of the schema, in order).
    pub(crate) fn resolve(
        path: &Path,
        schema: &Schema,
        fields: Option<&[String]>,
    ) -> Result<Self, Error> {
        let names = match fields {
            Some(fields) => fields.to_vec(),
            None => schema.fields().to_vec(),
        };
        check_unique(path, &names, "`fields`")?;
        let mut positions = Vec::with_capacity(names.len());
        for name in &names {
            match schema.index_of(name) {
                Some(i) => positions.push(i),
                None => {
                    return Err(Error::Config(format!(
                        "{}: `fields` names `{name}`, which the records do not have; they have: {}",
                        path.display(),
                        list(schema.fields())
                    )));
                }
            }
        }
        Ok(Output {
            schema: schema.clone(),
            names,
            positions,
        })
    }

    /// The batch's columns the sink writes, in output order, once the batch is checked to have
    /// the schema the sink was opened with (so positions are valid).
    pub(crate) fn columns<'b>(
        &self,
        path: &Path,
        batch: &'b Batch,
    ) -> Result<Vec<&'b Column>, Error> {
        self.check(path, batch)?;
        Ok(self.positions.iter().map(|&p| batch.column(p)).collect())
    }

    fn check(&self, path: &Path, batch: &Batch) -> Result<(), Error> {
        if **batch.schema() != self.schema {
            return Err(Error::Config(format!(
                "{}: a batch's fields ({}) differ from those the sink was opened with ({})",
                path.display(),
                list(batch.schema().fields()),
                list(self.schema.fields())
            )));
        }
        Ok(())
    }
}

/// The error for a sink used before [`hushflow_core::Sink::open`] or after `finish`.
pub(crate) fn not_open(path: &Path) -> Error {
    Error::Config(format!(
        "{}: the sink is not open (open it with the batch schema before writing, and write nothing after finish)",
        path.display()
    ))
}
