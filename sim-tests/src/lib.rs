//! The simulation suites live in `tests/`; they compile only with `--cfg madsim`:
//!
//! ```text
//! RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR=target/sim \
//!   cargo test --release --manifest-path sim-tests/Cargo.toml
//! ```
//!
//! `MADSIM_TEST_SEED` picks the first seed and `MADSIM_TEST_NUM` how many to run.
