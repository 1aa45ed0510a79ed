//! Asserted invariants: the conditions the design relies on, checked where they must
//! hold (TigerBeetle's style: pre- and postconditions on every path that matters).
//!
//! - [`invariant!`](crate::invariant) is on in debug builds and under the simulator
//!   (`--cfg madsim`, where a violation fails the seed, which then replays the bug bit
//!   for bit) and compiles to nothing in release builds, so it may be as expensive as
//!   the check needs (walking a shard's segment lists, say).
//! - [`invariant_cheap!`](crate::invariant_cheap) is on everywhere, release included:
//!   for O(1) checks whose failure means continuing would corrupt data.
//!
//! A violation panics with the message and the location: the process (or the simulated
//! node) stops rather than acknowledge anything from a state the design says cannot
//! exist. Under a planted bug (`mutation`, simulator test builds only) the checks stand
//! aside, so the mutation check keeps measuring the simulator's history checker.

/// Whether [`invariant!`](crate::invariant) checks run in this build: debug builds and
/// the simulator.
pub const CHECKED: bool = cfg!(any(debug_assertions, madsim));

/// Reports a violated invariant. Never returns.
#[cold]
#[inline(never)]
#[track_caller]
pub fn violated(what: std::fmt::Arguments<'_>) -> ! {
    tracing::error!(invariant = %what, "invariant violated");
    panic!("invariant violated: {what}")
}

/// Checks a design invariant in debug builds and under the simulator; nothing in
/// release builds (the condition is not even evaluated).
///
/// ```
/// let (before, after) = (3u64, 4u64);
/// quiver_core::invariant!(after >= before, "tsafe went back: {before} -> {after}");
/// ```
#[macro_export]
macro_rules! invariant {
    ($cond:expr $(,)?) => {
        $crate::invariant!($cond, "{}", stringify!($cond))
    };
    ($cond:expr, $($arg:tt)+) => {
        if $crate::invariant::CHECKED && !($cond) && !$crate::mutation::any_active() {
            $crate::invariant::violated(format_args!($($arg)+))
        }
    };
}

/// Checks a cheap invariant in every build, release included.
#[macro_export]
macro_rules! invariant_cheap {
    ($cond:expr $(,)?) => {
        $crate::invariant_cheap!($cond, "{}", stringify!($cond))
    };
    ($cond:expr, $($arg:tt)+) => {
        if !($cond) && !$crate::mutation::any_active() {
            $crate::invariant::violated(format_args!($($arg)+))
        }
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_holding_invariant_passes() {
        crate::invariant!(1 + 1 == 2);
        crate::invariant_cheap!(2 > 1, "two is more than one");
    }

    #[test]
    #[should_panic(expected = "invariant violated: epoch went back: 5 -> 4")]
    fn a_broken_cheap_invariant_panics() {
        let (old, new) = (5, 4);
        crate::invariant_cheap!(new >= old, "epoch went back: {old} -> {new}");
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "invariant violated: false")]
    fn a_broken_invariant_panics_in_debug_builds() {
        crate::invariant!(false);
    }
}
