//! Planted bugs for the simulation suite's mutation check.
//!
//! A checker that never fails proves nothing. With the cargo feature `sim-mutations`
//! (enabled only by the `quiver-sim-tests` crate's feature of the same name, never in a
//! production build) the environment variable `QUIVER_SIM_MUTATION` switches one known
//! bug on in the real role code, and the simulation suite must then fail. Without the
//! feature [`active`] is a constant `false` and the bugs compile away.

/// The planted bugs, by the name `QUIVER_SIM_MUTATION` selects them with.
pub const ALL: &[&str] = &[
    "ack-before-wal",
    "skip-fencing",
    "early-release",
    "tso-reset",
    "qn-switch-while-remote",
];

/// Whether the named bug is switched on.
#[cfg(feature = "sim-mutations")]
pub fn active(name: &str) -> bool {
    static SELECTED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let selected = SELECTED.get_or_init(|| {
        let v = std::env::var("QUIVER_SIM_MUTATION").ok()?;
        assert!(
            ALL.contains(&v.as_str()),
            "unknown QUIVER_SIM_MUTATION {v:?}; known: {ALL:?}"
        );
        Some(v)
    });
    selected.as_deref() == Some(name)
}

/// Whether the named bug is switched on: never, in this build.
#[cfg(not(feature = "sim-mutations"))]
#[inline(always)]
pub const fn active(_name: &str) -> bool {
    false
}
