//! Runs and their task instances: creating runs (once per interval), starting queued ones
//! within `max_active_runs`, deciding waiting tasks by trigger rule, clearing, finishing and
//! pruning, and reading run history.

use super::*;

impl Store {
    /// What a queued run waits for: its pipeline paused, or runs holding the pipeline's
    /// `max_active_runs` slots (then the queued runs that start before it).
    pub fn waiting(&mut self, run: &RunRow) -> Result<Waiting, StoreError> {
        let pipeline = self.pipeline(&run.pipeline)?;
        let rows = self.db.query(
            &format!(
                "SELECT {RUN_COLUMNS} FROM hf_runs WHERE pipeline = $1 AND id <> $2 AND \
                 (state = 'running' OR (state = 'queued' AND (logical_date < $3 OR \
                 (logical_date = $3 AND id < $2)))) \
                 ORDER BY CASE WHEN state = 'running' THEN 0 ELSE 1 END, logical_date, id LIMIT 10"
            ),
            &[
                run.pipeline.as_str().into(),
                run.id.into(),
                run.logical_date.into(),
            ],
        )?;
        Ok(Waiting {
            pipeline: run.pipeline.clone(),
            paused: pipeline.as_ref().is_some_and(|p| p.paused),
            max_active_runs: pipeline.map_or(1, |p| p.max_active_runs),
            ahead: rows.iter().map(run_row).collect(),
        })
    }

    /// Creates a run and its task instances in one transaction, unless a run with that id, or
    /// a scheduled or backfill run of the same interval, exists (another scheduler made it):
    /// `None` then.
    pub fn create_run(
        &mut self,
        dag: &Dag,
        run: &NewRun,
        now: Millis,
    ) -> Result<Option<i64>, StoreError> {
        self.db.transaction(|db| {
            let rows = db.query(
                "INSERT INTO hf_runs (pipeline, run_id, run_type, fingerprint, logical_date, \
                 interval_start, interval_end, state, conf, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9) \
                 ON CONFLICT DO NOTHING RETURNING id",
                &[
                    dag.name.as_str().into(),
                    run.run_id.as_str().into(),
                    run.run_type.as_str().into(),
                    dag.fingerprint.as_str().into(),
                    run.logical_date.into(),
                    run.interval.start.into(),
                    run.interval.end.into(),
                    run.conf.as_str().into(),
                    now.into(),
                ],
            )?;
            let Some(id) = rows.first().and_then(|r| r.int(0)) else {
                return Ok(None);
            };
            for (position, t) in dag.tasks.iter().enumerate() {
                let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
                db.exec(
                    "INSERT INTO hf_tasks (run, pipeline, task, position, kind, upstream, \
                     trigger_rule, pool, retries, retry_delay_ms, retry_exponential, \
                     max_retry_delay_ms, timeout_ms, state) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'none')",
                    &[
                        id.into(),
                        dag.name.as_str().into(),
                        t.name.as_str().into(),
                        (position as i64).into(),
                        t.kind.as_str().into(),
                        t.depends_on.join("\n").into(),
                        t.trigger_rule.as_str().into(),
                        t.pool.clone().into(),
                        i64::from(t.retry.retries).into(),
                        ms(t.retry.delay).into(),
                        i64::from(t.retry.exponential).into(),
                        ms(t.retry.max_delay).into(),
                        t.timeout.map(ms).into(),
                    ],
                )?;
            }
            Ok(Some(id))
        })
    }

    /// Starts queued runs of unpaused pipelines, oldest logical date first, while each
    /// pipeline has fewer than `max_active_runs` running. Returns how many started.
    pub fn start_queued_runs(&mut self, now: Millis) -> Result<usize, StoreError> {
        let pipelines = self.db.query(
            "SELECT DISTINCT r.pipeline FROM hf_runs r JOIN hf_pipelines p ON p.name = r.pipeline \
             WHERE r.state = 'queued' AND p.paused = 0",
            &[],
        )?;
        let mut started = 0;
        for p in pipelines {
            let name = p.string(0);
            started += self.db.transaction(|db| {
                // Serializes schedulers deciding for the same pipeline.
                let lock = match db.dialect() {
                    Dialect::Postgres => "SELECT max_active_runs FROM hf_pipelines WHERE name = $1 FOR UPDATE",
                    Dialect::Sqlite => "SELECT max_active_runs FROM hf_pipelines WHERE name = $1",
                };
                let max = db.query(lock, &[name.as_str().into()])?.first().map_or(1, |r| r.int0(0));
                let active = db
                    .query(
                        "SELECT COUNT(*) FROM hf_runs WHERE pipeline = $1 AND state = 'running'",
                        &[name.as_str().into()],
                    )?
                    .first()
                    .map_or(0, |r| r.int0(0));
                let room = (max - active).max(0);
                if room == 0 {
                    return Ok(0);
                }
                let ids = db.query(
                    "SELECT id, run_type, interval_end, created_at FROM hf_runs \
                     WHERE pipeline = $1 AND state = 'queued' ORDER BY logical_date, id LIMIT $2",
                    &[name.as_str().into(), room.into()],
                )?;
                for r in &ids {
                    let started = db.exec(
                        "UPDATE hf_runs SET state = 'running', started_at = $2 WHERE id = $1 AND state = 'queued'",
                        &[r.int0(0).into(), now.into()],
                    )?;
                    // Due: a scheduled run when its interval ends, any other when it was made
                    // (a backfill of last year is not a year late).
                    let due = match r.string(1).as_str() {
                        "scheduled" => r.int0(2),
                        _ => r.int0(3),
                    };
                    if started == 1 {
                        hushflow_metrics::scheduler_lag(&name, (now - due) as f64 / 1000.0);
                    }
                }
                Ok(ids.len())
            })?;
        }
        Ok(started)
    }

    /// The numbers of the runs running now, oldest first.
    pub fn running_runs(&mut self) -> Result<Vec<i64>, StoreError> {
        let rows = self.db.query(
            "SELECT id FROM hf_runs WHERE state = 'running' ORDER BY id",
            &[],
        )?;
        Ok(rows.iter().map(|r| r.int0(0)).collect())
    }

    /// A run's task instances, in the DAG's dependency order.
    pub fn tasks_of(&mut self, run: i64) -> Result<Vec<TaskRow>, StoreError> {
        let rows = self.db.query(
            &format!("SELECT {TASK_COLUMNS} FROM hf_tasks WHERE run = $1 ORDER BY position"),
            &[run.into()],
        )?;
        Ok(rows.iter().map(task_row).collect())
    }

    /// Whether a task of the run waits on `task` (a reason to decide that run's tasks now).
    pub fn has_waiting_downstream(&mut self, run: i64, task: &str) -> Result<bool, StoreError> {
        // Task names are letters, digits, '-' and '_'; '_' is LIKE's wildcard, so escape it.
        let pattern = format!("%\n{}\n%", task.replace('_', "\\_"));
        let rows = self.db.query(
            "SELECT 1 FROM hf_tasks WHERE run = $1 AND state = 'none' \
             AND ('\n' || upstream || '\n') LIKE $2 ESCAPE '\\' LIMIT 1",
            &[run.into(), pattern.into()],
        )?;
        Ok(!rows.is_empty())
    }

    /// How many of a run's tasks have not ended, and how many failed (or could not run).
    pub fn run_progress(&mut self, run: i64) -> Result<(i64, i64), StoreError> {
        let rows = self.db.query(
            "SELECT COALESCE(SUM(CASE WHEN state IN ('success', 'failed', 'upstream_failed', 'skipped') \
             THEN 0 ELSE 1 END), 0), COALESCE(SUM(CASE WHEN state IN ('failed', 'upstream_failed') \
             THEN 1 ELSE 0 END), 0) FROM hf_tasks WHERE run = $1",
            &[run.into()],
        )?;
        Ok(rows.first().map_or((0, 0), |r| (r.int0(0), r.int0(1))))
    }

    /// Moves tasks that wait on their upstreams (`none`) to a decided state, each only if it is
    /// still waiting; returns how many moved.
    pub fn decide_tasks(
        &mut self,
        decisions: &[(i64, TaskState)],
        now: Millis,
    ) -> Result<usize, StoreError> {
        if decisions.is_empty() {
            return Ok(0);
        }
        self.db.transaction(|db| {
            let mut moved = 0;
            for (id, state) in decisions {
                let ended = (!matches!(state, TaskState::Queued)).then_some(now);
                moved += db.exec(
                    "UPDATE hf_tasks SET state = $2, ended_at = $3 WHERE id = $1 AND state = 'none'",
                    &[(*id).into(), state.as_str().into(), ended.into()],
                )? as usize;
            }
            Ok(moved)
        })
    }

    /// Clears ended tasks of a run so they run again (Airflow's "clear"): the named tasks, or
    /// by default the failed ones, each with every task downstream of it. Their failures reset;
    /// past tries stay in the history. A finished run is queued again. Running or queued tasks
    /// are left alone. Returns the names of the tasks cleared.
    pub fn clear_tasks(&mut self, run: i64, tasks: &[String]) -> Result<Vec<String>, StoreError> {
        let all = self.tasks_of(run)?;
        let mut chosen: Vec<String> = if tasks.is_empty() {
            all.iter()
                .filter(|t| matches!(t.state, TaskState::Failed | TaskState::UpstreamFailed))
                .map(|t| t.task.clone())
                .collect()
        } else {
            tasks.to_vec()
        };
        // Downstream closure, in the run's (topological) order.
        for t in &all {
            if !chosen.contains(&t.task) && t.upstream.iter().any(|u| chosen.contains(u)) {
                chosen.push(t.task.clone());
            }
        }
        let cleared: Vec<String> = all
            .iter()
            .filter(|t| chosen.contains(&t.task) && t.state.is_done())
            .map(|t| t.task.clone())
            .collect();
        if cleared.is_empty() {
            return Ok(cleared);
        }
        self.db.transaction(|db| {
            // Only a finished run: in a running one, a task downstream of a cleared task could
            // be running on the old result.
            let reopened = db.exec(
                "UPDATE hf_runs SET state = 'queued', ended_at = NULL WHERE id = $1 \
                 AND state IN ('success', 'failed')",
                &[run.into()],
            )?;
            if reopened == 0 {
                return Err(StoreError::NotFinished);
            }
            // A cleared task runs anew, within the run's new start and end: its own start
            // is its next try's (kept, it would count the time the run stood finished).
            for name in &cleared {
                db.exec(
                    "UPDATE hf_tasks SET state = 'none', failures = 0, lost = 0, \
                     next_try_at = NULL, started_at = NULL, ended_at = NULL, error = NULL, \
                     worker = NULL \
                     WHERE run = $1 AND task = $2 \
                     AND state IN ('success', 'failed', 'upstream_failed', 'skipped')",
                    &[run.into(), name.as_str().into()],
                )?;
            }
            Ok(())
        })?;
        Ok(cleared)
    }

    /// Deletes finished runs that ended before `before`, with their tasks and tries (run
    /// history retention). Returns (runs, tasks, tries) deleted.
    pub fn prune(
        &mut self,
        before: Millis,
        pipeline: Option<&str>,
    ) -> Result<(u64, u64, u64), StoreError> {
        // Each pipeline's newest scheduled run stays: scheduling continues from its interval.
        let pick = "SELECT id FROM hf_runs r WHERE state IN ('success', 'failed') AND ended_at < $1 \
             AND ($2 = '' OR pipeline = $2) AND NOT (run_type = 'scheduled' AND interval_end = \
             (SELECT MAX(interval_end) FROM hf_runs n WHERE n.pipeline = r.pipeline \
             AND n.run_type = 'scheduled')) ORDER BY id LIMIT 500";
        let scope = [before.into(), pipeline.unwrap_or("").into()];
        let (mut runs, mut tasks, mut tries) = (0, 0, 0);
        // In batches, so that one prune never holds SQLite's write lock for long.
        loop {
            let ids: Vec<i64> = self
                .db
                .query(pick, &scope)?
                .iter()
                .map(|r| r.int0(0))
                .collect();
            if ids.is_empty() {
                return Ok((runs, tasks, tries));
            }
            let list = ids
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            self.db.transaction(|db| {
                tries += db.exec(
                    &format!(
                        "DELETE FROM hf_tries WHERE task IN (SELECT id FROM hf_tasks WHERE run IN ({list}))"
                    ),
                    &[],
                )?;
                tasks += db.exec(&format!("DELETE FROM hf_tasks WHERE run IN ({list})"), &[])?;
                runs += db.exec(&format!("DELETE FROM hf_runs WHERE id IN ({list})"), &[])?;
                Ok(())
            })?;
        }
    }

    /// Ends a running run, unless a task of it has not ended (a `clear` can race the last
    /// completion).
    pub fn finish_run(
        &mut self,
        run: i64,
        state: RunState,
        now: Millis,
    ) -> Result<bool, StoreError> {
        // RETURNING: the one process whose update ended the run counts it in the metrics, so
        // the sum over every scheduler and worker is the number of runs.
        let rows = self.db.query(
            "UPDATE hf_runs SET state = $2, ended_at = $3 WHERE id = $1 AND state = 'running' \
             AND NOT EXISTS (SELECT 1 FROM hf_tasks WHERE run = $1 \
             AND state NOT IN ('success', 'failed', 'upstream_failed', 'skipped')) \
             RETURNING pipeline, started_at",
            &[run.into(), state.as_str().into(), now.into()],
        )?;
        let Some(row) = rows.first() else {
            return Ok(false);
        };
        let seconds = row.int(1).map(|started| (now - started) as f64 / 1000.0);
        hushflow_metrics::run_finished(&row.string(0), state.as_str(), seconds);
        Ok(true)
    }

    /// Runs, newest first.
    /// The newest runs, by creation (a backfill of old intervals shows as what happened last).
    pub fn runs(&mut self, pipeline: Option<&str>, limit: i64) -> Result<Vec<RunRow>, StoreError> {
        let rows = match pipeline {
            Some(p) => self.db.query(
                &format!("SELECT {RUN_COLUMNS} FROM hf_runs WHERE pipeline = $1 ORDER BY id DESC LIMIT $2"),
                &[p.into(), limit.into()],
            )?,
            None => self.db.query(
                &format!("SELECT {RUN_COLUMNS} FROM hf_runs ORDER BY id DESC LIMIT $1"),
                &[limit.into()],
            )?,
        };
        Ok(rows.iter().map(run_row).collect())
    }

    /// A run by its number or its run id (with the pipeline when two pipelines share it).
    pub fn find_run(
        &mut self,
        run: &str,
        pipeline: Option<&str>,
    ) -> Result<Vec<RunRow>, StoreError> {
        let rows = match run.parse::<i64>() {
            Ok(id) => self.db.query(
                &format!("SELECT {RUN_COLUMNS} FROM hf_runs WHERE id = $1"),
                &[id.into()],
            )?,
            Err(_) => self.db.query(
                &format!("SELECT {RUN_COLUMNS} FROM hf_runs WHERE run_id = $1 ORDER BY id"),
                &[run.into()],
            )?,
        };
        Ok(rows
            .iter()
            .map(run_row)
            .filter(|r| pipeline.is_none_or(|p| p == r.pipeline))
            .collect())
    }

    /// Counts of tasks per state, for `hushflow runs` and the tests.
    pub fn task_states(&mut self, run: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = self.db.query(
            "SELECT state, COUNT(*) FROM hf_tasks WHERE run = $1 GROUP BY state ORDER BY state",
            &[run.into()],
        )?;
        Ok(rows.iter().map(|r| (r.string(0), r.int0(1))).collect())
    }
}
