//! When an invocation must stop starting new work.

use super::ServiceError;

/// The safety margin left before a Lambda deadline: this long, or a tenth
/// of the time remaining at the start of the invocation if that is shorter.
const DEADLINE_MARGIN_MS: i64 = 3000;

/// The time a batch keeps for merging what it has read: no further object
/// is read when less than this (or a quarter of the budget) is left.
const MERGE_RESERVE: std::time::Duration = std::time::Duration::from_secs(30);

/// When an invocation must stop starting new work: the Lambda deadline
/// less a safety margin. Work is checked against it between atomic steps
/// (after parsing an object, before each shard merge, before the ledger
/// write that leads to enforcement); past it, the operation stops with a
/// retryable error and the retry, made idempotent by the absorbed records,
/// finishes the work.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    cutoff: std::time::Instant,
    /// [`MERGE_RESERVE`], or a quarter of the budget if that is shorter.
    reserve: std::time::Duration,
}

impl Deadline {
    /// From a Lambda deadline (`Lambda-Runtime-Deadline-Ms`, epoch ms) and
    /// the wall-clock time now.
    pub fn from_epoch_ms(deadline_ms: i64, now_ms: i64) -> Deadline {
        let remaining = (deadline_ms - now_ms).max(0);
        let margin = DEADLINE_MARGIN_MS.min(remaining / 10);
        Deadline::after(std::time::Duration::from_millis(
            (remaining - margin) as u64,
        ))
    }

    /// Stop starting new work `budget` from now (no further margin).
    pub fn after(budget: std::time::Duration) -> Deadline {
        Deadline::with_reserve(budget, MERGE_RESERVE.min(budget / 4))
    }

    /// [`Deadline::after`] with `reserve` kept for merging a batch.
    pub fn with_reserve(budget: std::time::Duration, reserve: std::time::Duration) -> Deadline {
        Deadline {
            cutoff: std::time::Instant::now() + budget,
            reserve,
        }
    }

    /// Is the cutoff so near that a batch must merge what it has read
    /// instead of reading more? (Reading the next object would leave it no
    /// time to merge any: every object would be retried, and the retry
    /// would run out of time the same way.)
    pub fn merge_now(&self) -> bool {
        std::time::Instant::now() + self.reserve >= self.cutoff
    }

    /// Has the cutoff passed?
    pub fn reached(&self) -> bool {
        std::time::Instant::now() >= self.cutoff
    }

    /// `Err(Retryable)` once the cutoff has passed, naming what was left undone.
    pub fn check(deadline: Option<&Deadline>, what: &str) -> Result<(), ServiceError> {
        match deadline {
            Some(d) if d.reached() => Err(ServiceError::Retryable(format!(
                "deadline: stopped {what} to leave a safety margin before the Lambda timeout; \
                 a retry finishes the work"
            ))),
            _ => Ok(()),
        }
    }
}
