//! Staged segments read back as a [`Source`]: the reader thread only hands out file names; the
//! workers decrypt and decode segments in parallel, as they decode CSV chunks in an unstaged run.

use super::{StagingError, codec, read_segment};
use hushflow_core::{Error, Schema, Source, SourceBatch, SourceChunk};
use hushflow_crypto::StateIdentity;
use hushflow_state::seal::StateMac;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

/// A staged run's segments as a [`Source`]: decrypted, authenticated and decoded in order.
pub struct StagedSource {
    /// Each segment's number, file and tag, in order.
    segments: VecDeque<(u64, PathBuf, String)>,
    run_id: Arc<str>,
    schema: Arc<Schema>,
    identity: Arc<StateIdentity>,
    mac: Arc<StateMac>,
}

impl StagedSource {
    pub(super) fn new(
        segments: Vec<(u64, PathBuf, String)>,
        run_id: String,
        schema: Arc<Schema>,
        identity: StateIdentity,
        mac: StateMac,
    ) -> Self {
        StagedSource {
            segments: segments.into(),
            run_id: run_id.into(),
            schema,
            identity: Arc::new(identity),
            mac: Arc::new(mac),
        }
    }
}

/// Where a segment is and what it must be.
struct Segment<'a> {
    place: codec::Place<'a>,
    path: &'a std::path::Path,
    tag: &'a str,
}

fn load(
    segment: Segment<'_>,
    schema: &Arc<Schema>,
    identity: &StateIdentity,
    mac: &StateMac,
) -> Result<SourceBatch, Error> {
    let Segment { place, path, tag } = segment;
    let plain = read_segment(path, identity, mac, place, tag).map_err(staging_error)?;
    codec::decode(place, &plain, schema).map_err(|source| {
        staging_error(StagingError::Format {
            path: path.to_path_buf(),
            source,
        })
    })
}

/// The connector error for a segment that cannot be read; `e` names the file, never data.
fn staging_error(e: StagingError) -> Error {
    Error::Config(format!("staged data cannot be used: {e}"))
}

impl Source for StagedSource {
    fn schema(&self) -> Arc<Schema> {
        self.schema.clone()
    }

    /// A segment is one source batch, whatever `max_rows` asks for now: the batch size the data
    /// was staged with.
    fn next_batch(&mut self, _max_rows: usize) -> Result<Option<SourceBatch>, Error> {
        match self.segments.pop_front() {
            None => Ok(None),
            Some((segment, path, tag)) => {
                let place = codec::Place {
                    run_id: &self.run_id,
                    segment,
                };
                let segment = Segment {
                    place,
                    path: &path,
                    tag: &tag,
                };
                load(segment, &self.schema, &self.identity, &self.mac).map(Some)
            }
        }
    }

    fn next_chunk(&mut self, _max_rows: usize) -> Result<Option<SourceChunk>, Error> {
        let Some((segment, path, tag)) = self.segments.pop_front() else {
            return Ok(None);
        };
        let (run_id, schema, identity, mac) = (
            self.run_id.clone(),
            self.schema.clone(),
            self.identity.clone(),
            self.mac.clone(),
        );
        Ok(Some(SourceChunk::Raw(Box::new(move || {
            let place = codec::Place {
                run_id: &run_id,
                segment,
            };
            let segment = Segment {
                place,
                path: &path,
                tag: &tag,
            };
            load(segment, &schema, &identity, &mac)
        }))))
    }
}
