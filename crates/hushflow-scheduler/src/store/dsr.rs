//! Data subject requests: each request and its progress per system, so that one interrupted
//! halfway resumes where it stopped and nothing is done twice. A request names its person by a
//! keyed digest (the managed list's), never by an identifier.

use super::*;

/// A data subject request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsrRequest {
    /// The request id (`dsr-…`), which audit records name.
    pub id: String,
    /// `erase`, `opt-out` or `access`.
    pub kind: String,
    /// `gdpr` or `ccpa`: which statutory deadline applies.
    pub law: String,
    /// The person's keyed digest (hex), to find an unfinished request for them again.
    pub subject_digest: String,
    /// `open` until every system is done, then `done`.
    pub state: String,
    /// When the request was recorded (ms since the epoch).
    pub created_at: Millis,
    /// The statutory deadline (ms since the epoch).
    pub deadline_at: Millis,
    /// When the last system was done.
    pub completed_at: Option<Millis>,
}

/// One system's part of a request, recorded when it is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsrStep {
    /// The system (`pipeline contacts: sink sqlite …`, `subject keys`, `suppression list`).
    pub system: String,
    /// `done`, `manual` (a file sink: rows listed for a person to remove) or `unreachable`.
    pub state: String,
    /// What was done, in words that name no value.
    pub detail: String,
    /// How many rows, keys or entries.
    pub count: i64,
    /// When it was recorded.
    pub done_at: Millis,
}

const REQUEST_COLUMNS: &str =
    "id, kind, law, subject_digest, state, created_at, deadline_at, completed_at";

fn request(row: &Row) -> DsrRequest {
    DsrRequest {
        id: row.string(0),
        kind: row.string(1),
        law: row.string(2),
        subject_digest: row.string(3),
        state: row.string(4),
        created_at: row.int0(5),
        deadline_at: row.int0(6),
        completed_at: row.int(7),
    }
}

impl Store {
    /// Records a new request.
    pub fn create_dsr(&mut self, r: &DsrRequest) -> Result<(), StoreError> {
        self.db.exec(
            &format!(
                "INSERT INTO hf_dsr_requests ({REQUEST_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ),
            &[
                r.id.as_str().into(),
                r.kind.as_str().into(),
                r.law.as_str().into(),
                r.subject_digest.as_str().into(),
                r.state.as_str().into(),
                r.created_at.into(),
                r.deadline_at.into(),
                r.completed_at.into(),
            ],
        )?;
        Ok(())
    }

    /// The open request of `kind` for the person with `digest`, if one was interrupted.
    pub fn open_dsr(&mut self, digest: &str, kind: &str) -> Result<Option<DsrRequest>, StoreError> {
        let rows = self.db.query(
            &format!(
                "SELECT {REQUEST_COLUMNS} FROM hf_dsr_requests WHERE subject_digest = $1 AND kind = $2 \
                 AND state = 'open' ORDER BY created_at LIMIT 1"
            ),
            &[digest.into(), kind.into()],
        )?;
        Ok(rows.first().map(request))
    }

    /// The request `id`.
    pub fn dsr(&mut self, id: &str) -> Result<Option<DsrRequest>, StoreError> {
        let rows = self.db.query(
            &format!("SELECT {REQUEST_COLUMNS} FROM hf_dsr_requests WHERE id = $1"),
            &[id.into()],
        )?;
        Ok(rows.first().map(request))
    }

    /// Every request, newest first.
    pub fn dsrs(&mut self) -> Result<Vec<DsrRequest>, StoreError> {
        let rows = self.db.query(
            &format!("SELECT {REQUEST_COLUMNS} FROM hf_dsr_requests ORDER BY created_at DESC, id"),
            &[],
        )?;
        Ok(rows.iter().map(request).collect())
    }

    /// The systems done so far for request `id`, in the order they were done.
    pub fn dsr_steps(&mut self, id: &str) -> Result<Vec<DsrStep>, StoreError> {
        let rows = self.db.query(
            "SELECT system, state, detail, count, done_at FROM hf_dsr_steps WHERE request = $1 \
             ORDER BY done_at, system",
            &[id.into()],
        )?;
        Ok(rows
            .iter()
            .map(|row| DsrStep {
                system: row.string(0),
                state: row.string(1),
                detail: row.string(2),
                count: row.int0(3),
                done_at: row.int0(4),
            })
            .collect())
    }

    /// Records a system as done for request `id` (once: a second record of it is ignored).
    pub fn dsr_step_done(&mut self, id: &str, step: &DsrStep) -> Result<(), StoreError> {
        self.db.exec(
            "INSERT INTO hf_dsr_steps (request, system, state, detail, count, done_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (request, system) DO NOTHING",
            &[
                id.into(),
                step.system.as_str().into(),
                step.state.as_str().into(),
                step.detail.as_str().into(),
                step.count.into(),
                step.done_at.into(),
            ],
        )?;
        Ok(())
    }

    /// Marks request `id` done.
    pub fn complete_dsr(&mut self, id: &str, now: Millis) -> Result<(), StoreError> {
        self.db.exec(
            "UPDATE hf_dsr_requests SET state = 'done', completed_at = $2 WHERE id = $1",
            &[id.into(), now.into()],
        )?;
        Ok(())
    }
}
