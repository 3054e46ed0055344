//! The JSON Schema of pipeline files, derived from the types they are read into
//! ([`PipelineSpec`] and the connector and policy types under it), for editors: a TOML editor
//! that knows the schema (taplo, Even Better TOML) completes keys, shows their docs and marks
//! unknown keys and wrong types as you type. `hushflow schema pipeline` prints it, and
//! `docs/pipeline.schema.json` is that output, kept equal to it by a test.
//!
//! The schema says what can be written; `hushflow validate` checks the rest (that a field rule
//! names one action, that a key is a secret reference, paths, the DAG).

use crate::pipeline::PipelineSpec;

/// The pipeline file's JSON Schema (draft 07, what editors support best), pretty-printed with
/// a final newline. It covers the connectors this build has.
pub fn pipeline_json_schema() -> String {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let mut schema = generator.into_root_schema_for::<PipelineSpec>();
    schema.insert("title".into(), "hushflow pipeline file".into());
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
