//! Workers: registration, heartbeats, live logs, and handing the tries of a stopped or lost
//! worker back to the queue.

use super::*;

impl Store {
    /// Workers other than `except` that heartbeated since `since` and have not stopped.
    pub fn live_workers(&mut self, since: Millis, except: &str) -> Result<i64, StoreError> {
        let rows = self.db.query(
            "SELECT COUNT(*) FROM hf_workers WHERE stopped_at IS NULL AND heartbeat_at >= $1 \
             AND id <> $2",
            &[since.into(), except.into()],
        )?;
        Ok(rows.first().map_or(0, |r| r.int0(0)))
    }

    /// Records a worker as started (or started again), heartbeating now.
    pub fn register_worker(&mut self, id: &str, host: &str, now: Millis) -> Result<(), StoreError> {
        self.db.exec(
            "INSERT INTO hf_workers (id, host, pid, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, stopped_at = NULL",
            &[id.into(), host.into(), i64::from(std::process::id()).into(), now.into()],
        )?;
        Ok(())
    }

    /// Records that the worker is alive now.
    pub fn heartbeat(&mut self, id: &str, now: Millis) -> Result<(), StoreError> {
        self.db.exec(
            "UPDATE hf_workers SET heartbeat_at = $2 WHERE id = $1",
            &[id.into(), now.into()],
        )?;
        Ok(())
    }

    /// The output so far of a running try (the tail, capped like a finished try's log).
    pub fn running_log(&mut self, task: i64, attempt: i64, log: &str) -> Result<(), StoreError> {
        self.db.exec(
            "UPDATE hf_tries SET log = $3 WHERE task = $1 AND attempt = $2 AND state = 'running'",
            &[task.into(), attempt.into(), tail(log).into()],
        )?;
        Ok(())
    }

    /// The tries the store gives to this worker: `(task, attempt)` of its running tasks.
    pub fn owned_tries(&mut self, worker: &str) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows = self.db.query(
            "SELECT id, tries FROM hf_tasks WHERE worker = $1 AND state = 'running'",
            &[worker.into()],
        )?;
        Ok(rows.iter().map(|r| (r.int0(0), r.int0(1))).collect())
    }

    /// Records that the worker stopped cleanly (it is no longer counted as live).
    pub fn stop_worker(&mut self, id: &str, now: Millis) -> Result<(), StoreError> {
        self.db.exec(
            "UPDATE hf_workers SET stopped_at = $2 WHERE id = $1",
            &[id.into(), now.into()],
        )?;
        Ok(())
    }

    /// Queued tasks by pipeline (for the queue depth metric).
    pub fn queue_depths(&mut self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = self.db.query(
            "SELECT pipeline, COUNT(*) FROM hf_tasks WHERE state = 'queued' GROUP BY pipeline \
             ORDER BY pipeline",
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|r| (r.string(0), u64::try_from(r.int0(1)).unwrap_or(0)))
            .collect())
    }

    /// The oldest heartbeat among workers that hold a running task, if any: how long the
    /// silence of a worker with work has lasted.
    pub fn oldest_busy_heartbeat(&mut self) -> Result<Option<Millis>, StoreError> {
        let rows = self.db.query(
            "SELECT MIN(w.heartbeat_at) FROM hf_workers w JOIN hf_tasks t ON t.worker = w.id \
             WHERE t.state = 'running'",
            &[],
        )?;
        Ok(rows.first().and_then(|r| r.int(0)))
    }

    /// Hands back the tasks of workers whose heartbeat is older than `stale_before` (or that
    /// stopped without finishing them): their try is marked lost and the task queued again, so
    /// that another worker retries it. Returns the task ids.
    pub fn requeue_lost(&mut self, stale_before: Millis, now: Millis) -> Result<Lost, StoreError> {
        let rows = self.db.query(
            "SELECT t.id, t.worker, t.tries, t.lost FROM hf_tasks t \
             LEFT JOIN hf_workers w ON w.id = t.worker WHERE t.state = 'running' \
             AND (w.id IS NULL OR w.heartbeat_at < $1 OR w.stopped_at IS NOT NULL)",
            &[stale_before.into()],
        )?;
        let mut lost_tasks = Lost::default();
        for r in rows {
            let (id, worker, tries) = (r.int0(0), r.string(1), r.int0(2));
            let lost = r.int0(3) + 1;
            let (state, error, ended) = if lost >= MAX_LOST_TRIES {
                (
                    "failed",
                    Some(format!("lost {lost} tries to workers that stopped; failed")),
                    Some(now),
                )
            } else {
                ("queued", None, None)
            };
            let moved = self.db.transaction(|db| {
                let n = db.exec(
                    "UPDATE hf_tasks SET state = $4, worker = NULL, error = COALESCE($5, error), \
                     ended_at = $6, lost = lost + 1 \
                     WHERE id = $1 AND worker = $2 AND tries = $3 AND state = 'running'",
                    &[
                        id.into(),
                        worker.as_str().into(),
                        tries.into(),
                        state.into(),
                        error.clone().into(),
                        ended.into(),
                    ],
                )?;
                if n == 1 {
                    db.exec(
                        "UPDATE hf_tries SET state = 'lost', ended_at = $3, error = $4 \
                         WHERE task = $1 AND attempt = $2",
                        &[
                            id.into(),
                            tries.into(),
                            now.into(),
                            format!("worker {worker} stopped heartbeating; the task was handed to another worker").into(),
                        ],
                    )?;
                }
                Ok(n == 1)
            })?;
            match (moved, state) {
                (true, "failed") => lost_tasks.failed.push(id),
                (true, _) => lost_tasks.requeued.push(id),
                _ => {}
            }
        }
        Ok(lost_tasks)
    }
}
