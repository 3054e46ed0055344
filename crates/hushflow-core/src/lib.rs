//! The shapes every hushflow crate shares: records travel as columnar [`Batch`]es over a
//! resolved [`Schema`], sources and sinks implement [`Source`] and [`Sink`], and problems with
//! single records are [`RecordError`]s that name the line and field but never the value.
//!
//! This crate does no I/O and knows nothing of privacy; it is the vocabulary the others speak.

mod batch;
mod connector;
mod error;

pub use batch::{Batch, Cell, CellKind, Column, Schema};
pub use connector::{
    Decode, Encode, Position, Rejected, Sink, SinkRejection, Source, SourceBatch, SourceChunk,
    Withdrawal,
};
pub use error::{Error, RecordError, RejectReason};
