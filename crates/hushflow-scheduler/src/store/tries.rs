//! Tries: a worker claims a queued task (one claimer wins), completes it (only while it still
//! owns the try), and reads a task's tries back.

use super::*;

impl Store {
    /// Claims the oldest task ready to run (queued, or up for retry and due) whose pool has a
    /// free slot, and starts a try for `worker`. Rows other workers are claiming are skipped,
    /// not waited for.
    pub fn claim(
        &mut self,
        worker: &str,
        now: Millis,
        only_runs: Option<&[i64]>,
    ) -> Result<Option<Claim>, StoreError> {
        // Tasks of full pools are left out here, so a long queue in one pool cannot hide the
        // ready tasks behind it; the pools are checked again below under their row locks.
        let runs = match only_runs {
            Some([]) => return Ok(None),
            Some(ids) => format!(
                " AND t.run IN ({})",
                ids.iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => String::new(),
        };
        let lock = match self.db.dialect() {
            Dialect::Postgres => " FOR UPDATE OF t SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let pick = format!(
            "SELECT t.id, t.pool FROM hf_tasks t WHERE (t.state = 'queued' \
             OR (t.state = 'up_for_retry' AND t.next_try_at <= $1)){runs} \
             AND (t.pool IS NULL OR (SELECT COUNT(*) FROM hf_tasks b WHERE b.pool = t.pool \
             AND b.state = 'running') < (SELECT p.slots FROM hf_pools p WHERE p.name = t.pool)) \
             ORDER BY t.id LIMIT 16{lock}"
        );
        // A transaction-scoped advisory lock per pool serializes the workers claiming from it
        // (the count of its running tasks below then holds until the claim commits). Not a row
        // lock: that would need UPDATE on hf_pools, which workers are not granted.
        let pool_lock = match self.db.dialect() {
            Dialect::Postgres => Some("SELECT pg_advisory_xact_lock(26726, hashtext($1))"),
            Dialect::Sqlite => None,
        };
        self.db.transaction(|db| {
            let candidates = db.query(&pick, &[now.into()])?;
            // Lock every pool the candidates use, in name order: two workers locking pools in
            // different orders could deadlock.
            let mut pools: Vec<String> = candidates.iter().filter_map(|c| c.text(1)).collect();
            pools.sort();
            pools.dedup();
            let mut room = std::collections::HashMap::new();
            for pool in &pools {
                if let Some(lock) = pool_lock {
                    db.exec(lock, &[pool.as_str().into()])?;
                }
                let slots = db
                    .query(
                        "SELECT slots FROM hf_pools WHERE name = $1",
                        &[pool.as_str().into()],
                    )?
                    .first()
                    .map_or(1, |r| r.int0(0));
                let busy = db
                    .query(
                        "SELECT COUNT(*) FROM hf_tasks WHERE pool = $1 AND state = 'running'",
                        &[pool.as_str().into()],
                    )?
                    .first()
                    .map_or(0, |r| r.int0(0));
                room.insert(pool.clone(), slots - busy);
            }
            for c in candidates {
                let id = c.int0(0);
                if let Some(pool) = c.text(1)
                    && room.get(&pool).copied().unwrap_or(0) <= 0
                {
                    continue;
                }
                let claimed = db.query(
                    "UPDATE hf_tasks SET state = 'running', worker = $2, tries = tries + 1, \
                     next_try_at = NULL, started_at = COALESCE(started_at, $3), ended_at = NULL \
                     WHERE id = $1 AND (state = 'queued' OR state = 'up_for_retry') \
                     RETURNING tries",
                    &[id.into(), worker.into(), now.into()],
                )?;
                let Some(attempt) = claimed.first().map(|r| r.int0(0)) else {
                    continue;
                };
                db.exec(
                    "INSERT INTO hf_tries (task, attempt, worker, state, started_at) \
                     VALUES ($1, $2, $3, 'running', $4)",
                    &[id.into(), attempt.into(), worker.into(), now.into()],
                )?;
                let rows = db.query(
                    "SELECT t.pipeline, t.task, t.kind, r.run_id, r.run_type, r.logical_date, \
                     r.interval_start, r.interval_end, r.conf, d.file, d.text, t.timeout_ms, \
                     t.retries, t.failures, t.retry_delay_ms, t.retry_exponential, \
                     t.max_retry_delay_ms, r.id, r.fingerprint, d.signature \
                     FROM hf_tasks t JOIN hf_runs r ON r.id = t.run \
                     JOIN hf_definitions d ON d.fingerprint = r.fingerprint WHERE t.id = $1",
                    &[id.into()],
                )?;
                let Some(r) = rows.first() else {
                    return Err(StoreError::Database(format!(
                        "task {id} has no run or definition; the metadata database is inconsistent"
                    )));
                };
                return Ok(Some(Claim {
                    task_id: id,
                    run: r.int0(17),
                    attempt,
                    worker: worker.to_string(),
                    pipeline: r.string(0),
                    task: r.string(1),
                    kind: r.string(2),
                    run_id: r.string(3),
                    run_type: r.string(4),
                    logical_date: r.int0(5),
                    interval: Interval {
                        start: r.int0(6),
                        end: r.int0(7),
                    },
                    conf: r.string(8),
                    file: PathBuf::from(r.string(9)),
                    text: r.string(10),
                    fingerprint: r.string(18),
                    signature: r.text(19),
                    timeout_ms: r.int(11),
                    retries: r.int0(12),
                    failures: r.int0(13),
                    retry_delay_ms: r.int0(14),
                    retry_exponential: r.int0(15) != 0,
                    max_retry_delay_ms: r.int0(16),
                }));
            }
            Ok(None)
        })
    }

    /// Records how a try ended and moves the task on: success; up for retry after the backoff
    /// while retries remain; failed. Lands only while `claim`'s worker still owns the try.
    pub fn complete(
        &mut self,
        claim: &Claim,
        outcome: &TryOutcome,
        now: Millis,
    ) -> Result<Completed, StoreError> {
        let log = tail(&outcome.log).to_string();
        self.db.transaction(|db| {
            let failures = claim.failures + i64::from(!outcome.success);
            let (state, next_try_at) = if outcome.success {
                (TaskState::Success, None)
            } else if failures <= claim.retries {
                let policy = hushflow_spec::dag::RetryPolicy {
                    retries: claim.retries as u32,
                    delay: std::time::Duration::from_millis(claim.retry_delay_ms.max(0) as u64),
                    exponential: claim.retry_exponential,
                    max_delay: std::time::Duration::from_millis(claim.max_retry_delay_ms.max(0) as u64),
                };
                let wait = policy.delay_after(failures as u32).as_millis() as i64;
                (TaskState::UpForRetry, Some(now + wait))
            } else {
                (TaskState::Failed, None)
            };
            let ended = (state != TaskState::UpForRetry).then_some(now);
            let n = db.exec(
                "UPDATE hf_tasks SET state = $4, failures = $5, next_try_at = $6, ended_at = $7, \
                 worker = NULL, records_read = $8, records_written = $9, records_quarantined = $10, \
                 error = $11 WHERE id = $1 AND worker = $2 AND tries = $3 AND state = 'running'",
                &[
                    claim.task_id.into(),
                    claim.worker.as_str().into(),
                    claim.attempt.into(),
                    state.as_str().into(),
                    failures.into(),
                    next_try_at.into(),
                    ended.into(),
                    outcome.records_read.into(),
                    outcome.records_written.into(),
                    outcome.records_quarantined.into(),
                    outcome.error.clone().into(),
                ],
            )?;
            let try_state = match (n, outcome.success) {
                (0, _) => "lost",
                (_, true) => "success",
                (_, false) => "failed",
            };
            db.exec(
                "UPDATE hf_tries SET state = CASE WHEN state = 'lost' THEN 'lost' ELSE $3 END, \
                 ended_at = COALESCE(ended_at, $4), error = COALESCE(error, $5), log = $6 \
                 WHERE task = $1 AND attempt = $2",
                &[
                    claim.task_id.into(),
                    claim.attempt.into(),
                    try_state.into(),
                    now.into(),
                    outcome.error.clone().into(),
                    log.as_str().into(),
                ],
            )?;
            Ok(if n == 1 { Completed::Now(state) } else { Completed::NotOwner })
        })
    }

    /// Every try of a task instance, the first first.
    pub fn tries(&mut self, task: i64) -> Result<Vec<TryRow>, StoreError> {
        let rows = self.db.query(
            "SELECT attempt, worker, state, started_at, ended_at, error, log FROM hf_tries \
             WHERE task = $1 ORDER BY attempt",
            &[task.into()],
        )?;
        Ok(rows
            .iter()
            .map(|r| TryRow {
                attempt: r.int0(0),
                worker: r.string(1),
                state: r.string(2),
                started_at: r.int0(3),
                ended_at: r.int(4),
                error: r.text(5),
                log: r.text(6),
            })
            .collect())
    }

    /// What a notification about a failed task needs.
    pub fn failed_task(&mut self, task: i64) -> Result<Option<FailedTask>, StoreError> {
        let rows = self.db.query(
            "SELECT t.pipeline, t.task, t.tries, t.error, r.run_id, r.logical_date, d.file, d.text, \
             r.fingerprint, d.signature FROM hf_tasks t JOIN hf_runs r ON r.id = t.run \
             JOIN hf_definitions d ON d.fingerprint = r.fingerprint WHERE t.id = $1",
            &[task.into()],
        )?;
        Ok(rows.first().map(|r| FailedTask {
            pipeline: r.string(0),
            task: r.string(1),
            attempt: r.int0(2),
            error: r.text(3),
            run_id: r.string(4),
            logical_date: r.int0(5),
            file: PathBuf::from(r.string(6)),
            text: r.string(7),
            fingerprint: r.string(8),
            signature: r.text(9),
        }))
    }

    /// Whether any run is queued or running (a scheduler `--until-idle` stops when not).
    pub fn busy(&mut self) -> Result<bool, StoreError> {
        let rows = self.db.query(
            "SELECT COUNT(*) FROM hf_runs r JOIN hf_pipelines p ON p.name = r.pipeline \
             WHERE r.state = 'running' OR (r.state = 'queued' AND p.paused = 0)",
            &[],
        )?;
        Ok(rows.first().is_some_and(|r| r.int0(0) > 0))
    }
}
