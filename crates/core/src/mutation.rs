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
    "wal-no-fence",
    "wal-ack-before-put",
    "wal-overwrite-block",
    "early-release",
    "tso-reset",
    "qn-switch-while-remote",
    "pchannel-own-checkpoint",
];

#[cfg(feature = "sim-mutations")]
fn selected() -> Option<&'static str> {
    static SELECTED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    SELECTED
        .get_or_init(|| {
            let v = std::env::var("QUIVER_SIM_MUTATION").ok()?;
            assert!(
                ALL.contains(&v.as_str()),
                "unknown QUIVER_SIM_MUTATION {v:?}; known: {ALL:?}"
            );
            Some(v)
        })
        .as_deref()
}

/// Whether the named bug is switched on.
#[cfg(feature = "sim-mutations")]
pub fn active(name: &str) -> bool {
    selected() == Some(name)
}

/// Whether any planted bug is switched on. The asserted invariants stand aside then:
/// a mutation run measures whether the history checker catches the bug, and an
/// invariant would often stop the run first.
#[cfg(feature = "sim-mutations")]
pub fn any_active() -> bool {
    selected().is_some()
}

/// Whether any planted bug is switched on: never, in this build.
#[cfg(not(feature = "sim-mutations"))]
#[inline(always)]
pub const fn any_active() -> bool {
    false
}

/// Whether the named bug is switched on: never, in this build.
#[cfg(not(feature = "sim-mutations"))]
#[inline(always)]
pub const fn active(_name: &str) -> bool {
    false
}
