//! The engine's one threading pattern: a reader hands out items in order, `workers` threads do
//! the costly part of each in parallel, and the calling thread consumes the results in the order
//! the items were handed out. Runs use it for source → policy → sink; staged runs also for
//! source → encrypted staging files.
//!
//! At most [`in_flight`]`(workers)` items exist at once between the reader and the consumer
//! (queued, being worked on, finished and waiting for their turn): the reader takes a ticket
//! before reading an item, and the consumer gives it back once it has consumed one. Without it
//! the results held back for an item that is slow to finish would grow with the input. So
//! memory stays flat whatever the input and whatever the consumer is slow at. When
//! the consumer stops early (an error) it sets a stop flag: the reader stops reading, the workers
//! drain the queue without working on it, and every thread ends. A panic (a bug) in the reader
//! or a worker becomes that item's error, in order, so the run ends cleanly and audited instead
//! of the process aborting.

use crate::runner::RunError;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};

/// Which stage a panic came from, for [`RunError::Panicked`].
pub(crate) struct Stages {
    pub(crate) reader: &'static str,
    pub(crate) worker: &'static str,
}

/// The most items in flight at once for `workers` threads: each worker busy with one, one as
/// many again queued for them, and as many finished waiting for the consumer.
pub(crate) fn in_flight(workers: usize) -> usize {
    3 * workers.max(1)
}

/// Calls `next` on a reader thread until it yields `None` or an error, runs `work` on each item
/// on one of `workers` threads, and hands each result to `consume` on this thread, in order.
/// The first error (from any of the three) ends the pipeline and is returned.
pub(crate) fn in_order<I, O>(
    workers: usize,
    stages: Stages,
    mut next: impl FnMut() -> Result<Option<I>, RunError> + Send,
    work: impl Fn(I) -> Result<O, RunError> + Sync,
    mut consume: impl FnMut(O) -> Result<(), RunError>,
) -> Result<(), RunError>
where
    I: Send,
    O: Send,
{
    let workers = workers.max(1);
    let (work_tx, work_rx) = mpsc::sync_channel::<(u64, I)>(workers);
    let work_rx = Mutex::new(work_rx);
    let (done_tx, done_rx) = mpsc::sync_channel::<(u64, Result<O, RunError>)>(workers * 2);
    // Tickets: the reader takes one per item, the consumer gives one back per item consumed.
    let limit = in_flight(workers);
    let (ticket_tx, ticket_rx) = mpsc::sync_channel::<()>(limit);
    for _ in 0..limit {
        let _ = ticket_tx.send(());
    }
    let stop = AtomicBool::new(false);
    let (stop, work) = (&stop, &work);
    std::thread::scope(|scope| -> Result<(), RunError> {
        // Owned by this closure, so an early return drops them: the workers' sends fail and
        // a reader waiting for a ticket stops.
        let done_rx = done_rx;
        let ticket_tx = ticket_tx;
        let reader_done = done_tx.clone();
        scope.spawn(move || {
            for seq in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                // Every ticket out means `limit` items in flight: wait for the consumer.
                if ticket_rx.recv().is_err() {
                    break;
                }
                let item = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut next))
                    .unwrap_or(Err(RunError::Panicked(stages.reader)));
                match item {
                    Ok(Some(item)) => {
                        // A closed channel means the consumer stopped (an error): stop reading.
                        if work_tx.send((seq, item)).is_err() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let _ = reader_done.send((seq, Err(e)));
                        break;
                    }
                }
            }
        });
        for _ in 0..workers {
            let (work_rx, done_tx) = (&work_rx, done_tx.clone());
            scope.spawn(move || {
                loop {
                    // The lock is held only to take the next item, not while working on it.
                    let next = work_rx.lock().map(|rx| rx.recv());
                    let Ok(Ok((seq, item))) = next else { break };
                    if stop.load(Ordering::Relaxed) {
                        continue;
                    }
                    let result =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(item)))
                            .unwrap_or(Err(RunError::Panicked(stages.worker)));
                    if done_tx.send((seq, result)).is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            });
        }
        drop(done_tx);

        // Workers finish out of order; hold early results until their turn.
        let mut waiting: BTreeMap<u64, Result<O, RunError>> = BTreeMap::new();
        let mut next_seq = 0;
        let mut drain = || -> Result<(), RunError> {
            for (seq, item) in done_rx.iter() {
                waiting.insert(seq, item);
                while let Some(item) = waiting.remove(&next_seq) {
                    next_seq += 1;
                    consume(item?)?;
                    let _ = ticket_tx.try_send(());
                }
            }
            Ok(())
        };
        let drained = drain();
        if drained.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        drained
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAGES: Stages = Stages {
        reader: "test reader",
        worker: "test worker",
    };

    #[test]
    fn results_arrive_in_order_whatever_the_workers_do() {
        let mut n = 0u64;
        let mut seen = Vec::new();
        in_order(
            4,
            STAGES,
            || {
                n += 1;
                Ok((n <= 200).then_some(n))
            },
            |i| {
                // Uneven work, so that workers finish out of order.
                std::thread::sleep(std::time::Duration::from_micros((i * 7919) % 300));
                Ok(i * 2)
            },
            |o| {
                seen.push(o);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, (1..=200).map(|i| i * 2).collect::<Vec<_>>());
    }

    /// One item far slower than the rest (a huge batch, a stalled decrypt) while the others
    /// fly: the results behind it wait for their turn, but never more than the bound.
    #[test]
    fn items_in_flight_stay_bounded_behind_a_slow_one() {
        use std::sync::atomic::AtomicU64;
        let (read, consumed, most) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
        let workers = 3;
        in_order(
            workers,
            STAGES,
            || {
                let n = read.fetch_add(1, Ordering::SeqCst) + 1;
                let out = n - consumed.load(Ordering::SeqCst);
                most.fetch_max(out, Ordering::SeqCst);
                Ok((n <= 2000).then_some(n))
            },
            |i| {
                if i == 1 {
                    std::thread::sleep(std::time::Duration::from_millis(300));
                }
                Ok(i)
            },
            |_| {
                consumed.fetch_add(1, Ordering::SeqCst);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(consumed.load(Ordering::SeqCst), 2000);
        let most = most.load(Ordering::SeqCst);
        assert!(
            most <= in_flight(workers) as u64,
            "{most} items in flight, bound {}",
            in_flight(workers)
        );
    }

    #[test]
    fn the_first_error_in_order_wins_and_every_thread_ends() {
        let mut n = 0u64;
        let mut consumed = 0;
        let e = in_order(
            2,
            STAGES,
            || {
                n += 1;
                Ok(Some(n))
            },
            |i| {
                if i == 50 {
                    panic!("a bug");
                }
                Ok(i)
            },
            |_| {
                consumed += 1;
                Ok(())
            },
        )
        .unwrap_err();
        assert!(matches!(e, RunError::Panicked("test worker")), "{e}");
        assert_eq!(
            consumed, 49,
            "everything before the failing item, nothing after"
        );
    }
}
