//! Task and run states as Airflow users know them, and the trigger rules that decide a waiting
//! task from its upstream tasks' states. Pure: the scheduler applies the decisions.

/// Where a task of a run stands (stored by its [`TaskState::as_str`] name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// Waiting for its upstream tasks.
    None,
    /// Ready: a worker may claim it.
    Queued,
    /// A worker is executing a try.
    Running,
    /// Its last try succeeded.
    Success,
    /// Its last try failed and no retry is left.
    Failed,
    /// A try failed; it is queued again once its retry delay has passed.
    UpForRetry,
    /// An upstream task failed, so its trigger rule will never let it run.
    UpstreamFailed,
    /// Its trigger rule decided it has nothing to do (`one_failed` with no failure).
    Skipped,
}

impl TaskState {
    /// The state's name as stored and printed (`up_for_retry`).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::None => "none",
            TaskState::Queued => "queued",
            TaskState::Running => "running",
            TaskState::Success => "success",
            TaskState::Failed => "failed",
            TaskState::UpForRetry => "up_for_retry",
            TaskState::UpstreamFailed => "upstream_failed",
            TaskState::Skipped => "skipped",
        }
    }

    /// The state of a stored name; an unknown name is [`TaskState::None`].
    pub fn parse(s: &str) -> TaskState {
        match s {
            "queued" => TaskState::Queued,
            "running" => TaskState::Running,
            "success" => TaskState::Success,
            "failed" => TaskState::Failed,
            "up_for_retry" => TaskState::UpForRetry,
            "upstream_failed" => TaskState::UpstreamFailed,
            "skipped" => TaskState::Skipped,
            _ => TaskState::None,
        }
    }

    /// Whether the task has ended for this run.
    pub fn is_done(self) -> bool {
        matches!(
            self,
            TaskState::Success | TaskState::Failed | TaskState::UpstreamFailed | TaskState::Skipped
        )
    }

    fn is_failure(self) -> bool {
        matches!(self, TaskState::Failed | TaskState::UpstreamFailed)
    }
}

/// Where a run stands (stored by its [`RunState::as_str`] name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Created, waiting for a slot under its pipeline's `max_active_runs`.
    Queued,
    /// Started: its tasks are being decided and executed.
    Running,
    /// Every task ended and none failed.
    Success,
    /// Every task ended and one failed or was `upstream_failed`.
    Failed,
}

impl RunState {
    /// The state's name as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Success => "success",
            RunState::Failed => "failed",
        }
    }

    /// The state of a stored name; an unknown name is [`RunState::Queued`].
    pub fn parse(s: &str) -> RunState {
        match s {
            "running" => RunState::Running,
            "success" => RunState::Success,
            "failed" => RunState::Failed,
            _ => RunState::Queued,
        }
    }

    /// Whether the run has ended (succeeded or failed).
    pub fn is_done(self) -> bool {
        matches!(self, RunState::Success | RunState::Failed)
    }
}

/// What a waiting task becomes, given its trigger rule and its upstream tasks' states; `None`
/// while it must keep waiting.
pub fn decide(rule: &str, upstream: &[TaskState]) -> Option<TaskState> {
    let all_done = upstream.iter().all(|s| s.is_done());
    let any_failed = upstream.iter().any(|s| s.is_failure());
    match rule {
        "all_done" => all_done.then_some(TaskState::Queued),
        "one_failed" => {
            if any_failed {
                Some(TaskState::Queued)
            } else if all_done {
                Some(TaskState::Skipped)
            } else {
                None
            }
        }
        // all_success
        _ => {
            if any_failed {
                Some(TaskState::UpstreamFailed)
            } else if upstream.contains(&TaskState::Skipped) {
                Some(TaskState::Skipped)
            } else if upstream.iter().all(|s| *s == TaskState::Success) {
                Some(TaskState::Queued)
            } else {
                None
            }
        }
    }
}

/// How a run ends once every task has: failed if any task failed or could not run for a
/// failed upstream, else success.
pub fn run_outcome(tasks: &[TaskState]) -> Option<RunState> {
    if !tasks.iter().all(|s| s.is_done()) {
        return None;
    }
    Some(if tasks.iter().any(|s| s.is_failure()) {
        RunState::Failed
    } else {
        RunState::Success
    })
}

#[cfg(test)]
mod tests {
    use super::TaskState::*;
    use super::*;

    #[test]
    fn trigger_rules() {
        assert_eq!(decide("all_success", &[]), Some(Queued));
        assert_eq!(decide("all_success", &[Success, Running]), Option::None);
        assert_eq!(decide("all_success", &[Success, UpForRetry]), Option::None);
        assert_eq!(decide("all_success", &[Success, Success]), Some(Queued));
        assert_eq!(
            decide("all_success", &[Failed, Running]),
            Some(UpstreamFailed)
        );
        assert_eq!(
            decide("all_success", &[UpstreamFailed]),
            Some(UpstreamFailed)
        );
        assert_eq!(decide("all_success", &[Skipped, Success]), Some(Skipped));
        assert_eq!(decide("all_done", &[Failed, Running]), Option::None);
        assert_eq!(
            decide("all_done", &[Failed, Success, Skipped]),
            Some(Queued)
        );
        assert_eq!(decide("one_failed", &[Running, Failed]), Some(Queued));
        assert_eq!(decide("one_failed", &[Success, Running]), Option::None);
        assert_eq!(decide("one_failed", &[Success, Success]), Some(Skipped));
    }

    #[test]
    fn run_outcomes() {
        assert_eq!(run_outcome(&[Success, Running]), Option::None);
        assert_eq!(run_outcome(&[Success, Skipped]), Some(RunState::Success));
        assert_eq!(run_outcome(&[Failed, Success]), Some(RunState::Failed));
        assert_eq!(
            run_outcome(&[Success, UpstreamFailed]),
            Some(RunState::Failed)
        );
    }
}
