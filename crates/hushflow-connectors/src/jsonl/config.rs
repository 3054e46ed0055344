//! The `[source]` and `[sink]` tables of a pipeline file with `type = "jsonl"`.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Reads a JSON lines file: one JSON object per line; blank lines are skipped.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonlSourceConfig {
    /// The file to read. In a pipeline file, a relative path is relative to that file.
    pub path: PathBuf,
}

impl JsonlSourceConfig {
    /// A source reading the JSON lines file `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        JsonlSourceConfig { path: path.into() }
    }
}

/// Writes a JSON lines file: one object per row, keys in output order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonlSinkConfig {
    /// The file to write, replaced when the run succeeds and left untouched when it fails. In a
    /// pipeline file, a relative path is relative to that file; missing directories are created.
    pub path: PathBuf,
    /// The fields to write, in this order. Default: every field the policy outputs, in order.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
}

impl JsonlSinkConfig {
    /// A sink writing every field to `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        JsonlSinkConfig {
            path: path.into(),
            fields: None,
        }
    }
}

impl crate::SourceConfig for JsonlSourceConfig {
    fn kind(&self) -> &'static str {
        "jsonl"
    }

    fn location(&self) -> &Path {
        &self.path
    }

    fn file(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn resolve_paths(&mut self, base: &Path) {
        self.path = base.join(&self.path);
    }

    fn open(
        &self,
        ctx: &crate::SourceContext<'_>,
    ) -> Result<Box<dyn hushflow_core::Source>, hushflow_core::Error> {
        Ok(Box::new(
            super::JsonlSource::open(self, Some(ctx.fields))?.with_key(ctx.key),
        ))
    }
}

impl crate::SinkConfig for JsonlSinkConfig {
    fn kind(&self) -> &'static str {
        "jsonl"
    }

    fn location(&self) -> &Path {
        &self.path
    }

    fn file(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn relocate(&mut self, to: &Path) {
        self.path = to.to_path_buf();
    }

    fn resolve_paths(&mut self, base: &Path) {
        self.path = base.join(&self.path);
    }

    fn fields(&self) -> Option<&[String]> {
        self.fields.as_deref()
    }

    fn open(
        &self,
        _ctx: &crate::SinkContext<'_>,
    ) -> Result<Box<dyn hushflow_core::Sink>, hushflow_core::Error> {
        Ok(Box::new(super::JsonlSink::new(self)?))
    }

    fn rows(
        &self,
        _ctx: &crate::SinkContext<'_>,
    ) -> Result<Option<Box<dyn crate::SinkRows>>, hushflow_core::Error> {
        Ok(Some(Box::new(super::JsonlRows::new(self))))
    }
}
