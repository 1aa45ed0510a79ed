//! Request deadlines across the roles: reading the client's (`grpc-timeout`, which
//! pymilvus sends for `timeout=`), and running a hop's work within the time left, so
//! an expired request comes back as Milvus's timeout status (code 10001) and its work
//! is dropped instead of running on after the client has gone.

use std::future::Future;
use std::time::Duration;

use quiver_core::rt::{self, Deadline};

use crate::error::{ApiError, ApiResult};
use crate::rpc::DEFAULT_READ_BUDGET;

/// How much earlier than the client's deadline the proxy gives up: enough for the
/// timeout status to reach the client before the client's own gRPC deadline fires
/// (which would lose the status for a bare DEADLINE_EXCEEDED).
const ANSWER_MARGIN: Duration = Duration::from_millis(150);

/// The deadline of a request whose `grpc-timeout` header is `header` (None when the
/// client set no timeout: the server's default budget applies).
pub fn from_grpc_timeout(header: Option<&str>) -> Deadline {
    let budget = header
        .and_then(parse_grpc_timeout)
        .map(|t| t.saturating_sub(ANSWER_MARGIN.min(t / 10)))
        .unwrap_or(DEFAULT_READ_BUDGET);
    Deadline::after(budget)
}

/// A `grpc-timeout` value: up to 8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

tokio::task_local! {
    /// The deadline of the request the current task is working for, set by [`within`].
    static REQUEST_DEADLINE: Deadline;
}

/// The deadline of the request the current task works for, if it works for one: the
/// internal calls it makes that carry no deadline of their own (a timestamp from the
/// coordinator, a shard's owner) wait until it rather than for a fixed time, so they
/// neither fail a request the client is still waiting for nor outlive it.
pub fn carried() -> Option<Deadline> {
    REQUEST_DEADLINE.try_with(|d| *d).ok()
}

/// Runs `work` until `deadline`: past it the work is dropped (with everything it was
/// waiting on, so the hops below stop too) and `what` is reported as timed out. The
/// calls `work` makes carry the deadline ([`carried`]).
pub async fn within<T>(
    deadline: Deadline,
    what: &str,
    work: impl Future<Output = ApiResult<T>>,
) -> ApiResult<T> {
    if deadline.expired() {
        return Err(ApiError::deadline_exceeded(what));
    }
    let work = REQUEST_DEADLINE.scope(deadline, work);
    match rt::timeout(deadline.remaining(), work).await {
        Ok(r) => r,
        Err(_) => Err(ApiError::deadline_exceeded(what)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::code;

    #[test]
    fn grpc_timeouts_parse_and_hostile_ones_fall_back() {
        assert_eq!(parse_grpc_timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_grpc_timeout("2999m"),
            Some(Duration::from_millis(2999))
        );
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("10u"), Some(Duration::from_micros(10)));
        for bad in ["", "S", "123456789S", "-1S", "3s", "3", "1.5S", "\u{e9}S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn the_proxy_answers_before_the_client_gives_up() {
        let d = from_grpc_timeout(Some("3S"));
        let left = d.remaining();
        assert!(left <= Duration::from_millis(2850) && left > Duration::from_secs(2));
        let none = from_grpc_timeout(None).remaining();
        assert!(none > DEFAULT_READ_BUDGET - Duration::from_secs(1));
        assert!(from_grpc_timeout(Some("junk")).remaining() > Duration::from_secs(60));
    }

    #[tokio::test]
    async fn work_past_its_deadline_is_dropped_with_the_timeout_code() {
        let d = Deadline::after(Duration::from_millis(20));
        let r: ApiResult<()> = within(d, "the search", async {
            rt::sleep(Duration::from_secs(60)).await;
            Ok(())
        })
        .await;
        let e = r.unwrap_err();
        assert_eq!(e.code, code::TIMEOUT);
        assert!(e.reason.contains("the search"), "{}", e.reason);
        let quick = within(Deadline::after(Duration::from_secs(5)), "x", async {
            Ok(7)
        });
        assert_eq!(quick.await.unwrap(), 7);
    }

    #[tokio::test]
    async fn calls_made_for_a_request_carry_its_deadline() {
        assert!(carried().is_none(), "no request outside `within`");
        let d = Deadline::after(Duration::from_secs(60));
        let seen = within(d, "the search", async { Ok(carried()) }).await;
        let left = seen.unwrap().expect("the request's deadline").remaining();
        assert!(left > Duration::from_secs(50), "{left:?}");
    }
}
