//! Typed actions: what a front end may ask for, one module per topic. Each action that changes
//! state takes the [`Actor`](crate::Actor) who asked and writes the audit record itself, so no
//! front end can forget it; queries take no actor (they are not audited). Actions answer with
//! [view types](crate::views) or small result structs, and print nothing: what they have to
//! say besides the result (a warning) is part of the result.

pub mod audit;
pub mod dsr;
pub mod execution;
pub mod keys;
pub mod orchestration;
pub mod quarantine;
pub mod retention;
pub mod ship;
