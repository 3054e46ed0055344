//! Registered pipelines and their definitions: registration (signed), pausing, and where a
//! pipeline's schedule stands.

use super::*;

impl Store {
    /// Records a pipeline's current definition, signed by `signer` (workers given its public
    /// key run only definitions it signed), and its pools; keeps whether it is paused. Pools are
    /// shared by name across pipelines (one CRM, one limit): returns a warning for each pool
    /// another pipeline declared with a different size, which this one now replaces. A
    /// definition registered before is written again (its file, text and signature), so
    /// registering the file heals a definition changed in the store.
    pub fn register(
        &mut self,
        dag: &Dag,
        signer: Option<&DefinitionSigner>,
        now: Millis,
    ) -> Result<Vec<String>, StoreError> {
        let file = dag.file.to_string_lossy().into_owned();
        let schedule = dag.schedule.as_ref().map(|s| s.expression().to_string());
        let timezone = dag.schedule.as_ref().map(|s| s.timezone().to_string());
        let signature = signer.map(|s| s.sign(&dag.fingerprint, &dag.name, &dag.file));
        self.db.transaction(|db| {
            db.exec(
                "INSERT INTO hf_definitions (fingerprint, pipeline, file, text, created_at, \
                 signature) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (fingerprint) DO UPDATE \
                 SET pipeline = excluded.pipeline, file = excluded.file, text = excluded.text, \
                 signature = excluded.signature",
                &[
                    dag.fingerprint.as_str().into(),
                    dag.name.as_str().into(),
                    file.as_str().into(),
                    dag.text.as_str().into(),
                    now.into(),
                    signature.clone().into(),
                ],
            )?;
            db.exec(
                "INSERT INTO hf_pipelines (name, fingerprint, schedule, timezone, paused, \
                 max_active_runs, first_seen_at, updated_at) VALUES ($1, $2, $3, $4, 0, $5, $6, $6) \
                 ON CONFLICT (name) DO UPDATE SET fingerprint = excluded.fingerprint, \
                 schedule = excluded.schedule, timezone = excluded.timezone, \
                 max_active_runs = excluded.max_active_runs, updated_at = excluded.updated_at",
                &[
                    dag.name.as_str().into(),
                    dag.fingerprint.as_str().into(),
                    schedule.clone().into(),
                    timezone.clone().into(),
                    i64::from(dag.max_active_runs).into(),
                    now.into(),
                ],
            )?;
            let mut warnings = Vec::new();
            for (pool, slots) in &dag.pools {
                let before = db.query("SELECT slots FROM hf_pools WHERE name = $1", &[pool.as_str().into()])?;
                if let Some(old) = before.first().map(|r| r.int0(0))
                    && old != i64::from(*slots)
                {
                    warnings.push(format!(
                        "pool {pool} had {old} slot(s) and {} now sets {slots}; pools are shared by \
                         name across pipelines, so give it the same size everywhere",
                        dag.name
                    ));
                }
                db.exec(
                    "INSERT INTO hf_pools (name, slots) VALUES ($1, $2) \
                     ON CONFLICT (name) DO UPDATE SET slots = excluded.slots",
                    &[pool.as_str().into(), i64::from(*slots).into()],
                )?;
            }
            Ok(warnings)
        })
    }

    /// A registered pipeline by name (the scheduler asks once per pipeline per tick).
    pub fn pipeline(&mut self, name: &str) -> Result<Option<PipelineRow>, StoreError> {
        let rows = self.db.query(
            &format!("SELECT {PIPELINE_COLUMNS} FROM hf_pipelines WHERE name = $1"),
            &[name.into()],
        )?;
        Ok(rows.first().map(pipeline_row))
    }

    /// Every registered pipeline, by name, with the state of its newest run (by creation).
    pub fn pipelines(&mut self) -> Result<Vec<(PipelineRow, Option<String>)>, StoreError> {
        let rows = self.db.query(
            &format!(
                "SELECT {PIPELINE_COLUMNS}, (SELECT r.state FROM hf_runs r WHERE r.pipeline = \
                 hf_pipelines.name ORDER BY r.id DESC LIMIT 1) FROM hf_pipelines ORDER BY name"
            ),
            &[],
        )?;
        Ok(rows.iter().map(|r| (pipeline_row(r), r.text(7))).collect())
    }

    /// A registered definition (check it with a `DefinitionTrust` before using its text).
    pub fn definition(
        &mut self,
        fingerprint: &str,
    ) -> Result<Option<StoredDefinition>, StoreError> {
        let rows = self.db.query(
            "SELECT pipeline, file, text, signature FROM hf_definitions WHERE fingerprint = $1",
            &[fingerprint.into()],
        )?;
        Ok(rows.first().map(|r| StoredDefinition {
            pipeline: r.string(0),
            file: PathBuf::from(r.string(1)),
            text: r.string(2),
            fingerprint: fingerprint.to_string(),
            signature: r.text(3),
        }))
    }

    /// Pauses or unpauses; `false` when no pipeline has that name.
    pub fn set_paused(&mut self, name: &str, paused: bool) -> Result<bool, StoreError> {
        let n = self.db.exec(
            "UPDATE hf_pipelines SET paused = $2 WHERE name = $1",
            &[name.into(), i64::from(paused).into()],
        )?;
        Ok(n == 1)
    }

    /// The end of the newest scheduled interval: scheduling continues from there.
    pub fn last_scheduled_end(&mut self, pipeline: &str) -> Result<Option<Millis>, StoreError> {
        let rows = self.db.query(
            "SELECT MAX(interval_end) FROM hf_runs WHERE pipeline = $1 AND run_type = 'scheduled'",
            &[pipeline.into()],
        )?;
        Ok(rows.first().and_then(|r| r.int(0)))
    }

    /// How many scheduled or backfill runs cover intervals starting at or after `from`.
    pub fn runs_from(&mut self, pipeline: &str, from: Millis) -> Result<i64, StoreError> {
        let rows = self.db.query(
            "SELECT COUNT(*) FROM hf_runs WHERE pipeline = $1 AND run_type <> 'manual' \
             AND interval_start >= $2",
            &[pipeline.into(), from.into()],
        )?;
        Ok(rows.first().map_or(0, |r| r.int0(0)))
    }
}
