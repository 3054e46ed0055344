//! The two traits every connector implements. Connectors move records and nothing else: they
//! never see the policy, and they report malformed input as [`Rejected`] records instead of
//! failing, so that the engine can quarantine them and carry on.

use crate::{Batch, Column, Error, RejectReason, Schema};
use std::sync::Arc;

/// A record the source could not turn into a row. `raw` holds the bytes as read so that the
/// record can be quarantined and replayed; it is personal data and must never be logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The record's position in its source (a line number for files).
    pub line: u64,
    /// Why the record was rejected, in words that name no value.
    pub reason: RejectReason,
    /// The record's bytes as read, for the quarantine.
    pub raw: Vec<u8>,
}

/// A record of a written batch that the destination refused on its own (a CRM batch API
/// answers per record): its row in that batch and why, in words that name no value. The engine
/// quarantines it like a record the source or the policy refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkRejection {
    /// The refused record's row in the written batch.
    pub row: usize,
    /// Why the destination refused it.
    pub reason: RejectReason,
}

/// What one call to [`Source::next_batch`] yields: the good rows and the rejected ones.
#[derive(Debug)]
pub struct SourceBatch {
    /// The rows read.
    pub batch: Batch,
    /// The records met on the way that could not be turned into rows.
    pub rejected: Vec<Rejected>,
}

/// Decodes raw input into a batch, on whichever thread calls it.
pub type Decode = Box<dyn FnOnce() -> Result<SourceBatch, Error> + Send>;

/// What one call to [`Source::next_chunk`] yields: rows already decoded, or raw input cut at
/// record boundaries with the work of decoding it still to do. Decoding text formats (CSV, JSON)
/// costs more than reading them, so the engine runs `Raw` chunks' decoding on its policy workers,
/// in parallel, while one thread only reads and cuts.
pub enum SourceChunk {
    /// Rows the source has already decoded.
    Decoded(SourceBatch),
    /// Raw input cut at record boundaries, and the work of decoding it.
    Raw(Decode),
}

impl SourceChunk {
    /// The chunk's rows, decoding them first if they are still raw.
    pub fn decode(self) -> Result<SourceBatch, Error> {
        match self {
            SourceChunk::Decoded(batch) => Ok(batch),
            SourceChunk::Raw(decode) => decode(),
        }
    }
}

/// Where an incremental source stands: the cursor field's and the key's values (as text) of the
/// last record handed out. The next run reads records after it. Cursor values are data the
/// user chose to sync on (a timestamp, a sequence); they are kept in the state and the sink's
/// bookkeeping table, never in logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The cursor field's value in the last record handed out.
    pub cursor: String,
    /// The key field's value in the last record handed out; it orders the records that share a
    /// cursor value.
    pub key: String,
}

/// Reads records in batches, streaming, with memory bounded by the batch size.
pub trait Source: Send {
    /// The fields this source produces, known once it is opened.
    fn schema(&self) -> Arc<Schema>;

    /// Reads up to `max_rows` rows (plus any rejected records met on the way).
    /// `Ok(None)` means the source is exhausted.
    fn next_batch(&mut self, max_rows: usize) -> Result<Option<SourceBatch>, Error>;

    /// Like [`Source::next_batch`], but a source may leave the decoding to the caller's threads.
    /// Chunks may be decoded in any order, at once; their rows follow in the order handed out.
    fn next_chunk(&mut self, max_rows: usize) -> Result<Option<SourceChunk>, Error> {
        Ok(self.next_batch(max_rows)?.map(SourceChunk::Decoded))
    }

    /// An incremental source's position after everything handed out so far (`None` for sources
    /// that read everything every run).
    fn position(&self) -> Option<Position> {
        None
    }
}

/// Turns batches into the bytes a sink writes, on whichever thread calls it: see
/// [`Sink::encoder`].
pub trait Encode: Send + Sync {
    /// Appends `batch`'s rows, encoded, to `out`.
    fn encode(&self, batch: &Batch, out: &mut Vec<u8>) -> Result<(), Error>;
}

/// What a keyed sink does with the rows of records that were withdrawn since they were written:
/// filtered by consent (no longer an explicit yes) or by the suppression list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Withdrawal {
    /// Delete the row with the record's key.
    #[default]
    Delete,
    /// Keep the row's key and set every other column to null.
    Tombstone,
    /// Leave rows already written as they are.
    Keep,
}

impl Withdrawal {
    /// The word that names this choice in a pipeline file.
    pub fn as_str(self) -> &'static str {
        match self {
            Withdrawal::Delete => "delete",
            Withdrawal::Tombstone => "tombstone",
            Withdrawal::Keep => "keep",
        }
    }
}

/// Writes batches. A sink makes each batch durable (or atomic, for transactional sinks) before
/// `write_batch` returns, and flushes everything on `finish`.
pub trait Sink: Send {
    /// Prepares the destination for rows of `schema` (creates a table, writes a header).
    fn open(&mut self, schema: &Schema) -> Result<(), Error>;

    /// Writes one batch's rows; they are durable (or committed) when this returns.
    fn write_batch(&mut self, batch: &Batch) -> Result<(), Error>;

    /// Writes a batch and records `position` (the source's position after it) for `pipeline`
    /// in the same transaction, so that the data and the cursor commit together or not at all.
    /// Sinks without transactions write the batch; the engine keeps the position for them.
    fn write_batch_at(
        &mut self,
        batch: &Batch,
        _pipeline: &str,
        _position: Option<&Position>,
    ) -> Result<(), Error> {
        self.write_batch(batch)
    }

    /// Whether [`Sink::write_batch_at`] keeps positions (then [`Sink::committed_position`]
    /// reads them back).
    fn keeps_positions(&self) -> bool {
        false
    }

    /// The position last committed with the data for `pipeline`, for sinks that keep them.
    fn committed_position(&mut self, _pipeline: &str) -> Result<Option<Position>, Error> {
        Ok(None)
    }

    /// The names of every position this sink keeps (pipelines, and partitions of pipelines:
    /// `PIPELINE#partition-I-of-N`), so that a partitioned run finds positions saved under
    /// another partition count.
    fn position_names(&mut self) -> Result<Vec<String>, Error> {
        Ok(Vec::new())
    }

    /// Forgets the positions kept under `names` (a full refresh that changes the partition
    /// count drops the old partitions' positions).
    fn forget_positions(&mut self, _names: &[String]) -> Result<(), Error> {
        Ok(())
    }

    /// A sink that writes a byte stream (a CSV file) may hand out, once open, the encoder
    /// [`Sink::write_encoded`] takes the output of. Encoding costs more than writing, so the
    /// engine encodes on its policy workers, in parallel, and its one writer thread only writes.
    /// `None` (the default): batches go through [`Sink::write_batch`].
    fn encoder(&self) -> Option<std::sync::Arc<dyn Encode>> {
        None
    }

    /// [`Sink::write_encoded`], with the source's position to commit with the bytes (see
    /// [`Sink::write_batch_at`]).
    fn write_encoded_at(
        &mut self,
        bytes: &[u8],
        _pipeline: &str,
        _position: Option<&Position>,
    ) -> Result<(), Error> {
        self.write_encoded(bytes)
    }

    /// Writes what this sink's [`Sink::encoder`] made of one or more batches, as `write_batch`
    /// would have written them.
    fn write_encoded(&mut self, _bytes: &[u8]) -> Result<(), Error> {
        Err(Error::Config(
            "this sink takes batches, not encoded bytes".into(),
        ))
    }

    /// Whether the sink can act on withdrawn records' keys ([`Sink::withdraw`]).
    fn can_withdraw(&self) -> bool {
        false
    }

    /// Deletes (or tombstones) the rows of `keys` in the transaction of the next write
    /// (`write_batch_at`/`write_encoded_at`, called even when that batch is empty), so that a
    /// batch and its withdrawals commit together. Keys are the key field's output values.
    fn withdraw(&mut self, _keys: &Column, _how: Withdrawal) -> Result<(), Error> {
        Err(Error::Config(
            "this sink cannot delete records by key".into(),
        ))
    }

    /// Whether the destination may refuse single records of a batch it otherwise accepts
    /// ([`Sink::take_rejections`]). The engine then keeps each batch's input rows until it is
    /// written, to quarantine the refused ones as they were read.
    fn rejects_records(&self) -> bool {
        false
    }

    /// The records of the last written batch the destination refused, by row. Only sinks that
    /// say [`Sink::rejects_records`] return any; the rest of the batch counts as written.
    fn take_rejections(&mut self) -> Vec<SinkRejection> {
        Vec::new()
    }

    /// Flushes everything written and closes the destination, after the last batch.
    fn finish(&mut self) -> Result<(), Error>;
}
