//! FoundationDB-style fault points. `buggify("name")` marks a place where the code may
//! misbehave in a legal way (an I/O error, a delay, a short write). In production it is
//! a constant `false` that the optimiser removes. Under madsim the simulation harness
//! switches it on for a run; each named point is then enabled with some probability
//! for the whole run and, when enabled, fires with some probability per call. Both
//! decisions come from the seeded simulator RNG, so a seed replays exactly.

#[cfg(not(madsim))]
mod imp {
    #[inline(always)]
    pub fn buggify(_point: &'static str) -> bool {
        false
    }
    pub fn enable(_point_probability: f64, _fire_probability: f64) {}
    pub fn disable() {}
    pub fn fired() -> Vec<(&'static str, u64)> {
        Vec::new()
    }
}

#[cfg(madsim)]
mod imp {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    #[derive(Default)]
    struct State {
        enabled: bool,
        point_probability: f64,
        fire_probability: f64,
        points: BTreeMap<&'static str, bool>,
        fired: BTreeMap<&'static str, u64>,
    }

    thread_local! {
        static STATE: RefCell<State> = RefCell::new(State::default());
    }

    fn coin(p: f64) -> bool {
        (madsim::rand::random::<u64>() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    pub fn buggify(point: &'static str) -> bool {
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            if !s.enabled {
                return false;
            }
            let pp = s.point_probability;
            let on = *s.points.entry(point).or_insert_with(|| coin(pp));
            if on && coin(s.fire_probability) {
                *s.fired.entry(point).or_default() += 1;
                true
            } else {
                false
            }
        })
    }

    /// Turns fault points on for this run; forgets earlier per-point decisions.
    pub fn enable(point_probability: f64, fire_probability: f64) {
        STATE.with(|s| {
            *s.borrow_mut() = State {
                enabled: true,
                point_probability,
                fire_probability,
                ..State::default()
            }
        });
    }

    pub fn disable() {
        STATE.with(|s| *s.borrow_mut() = State::default());
    }

    /// How often each point fired in this run.
    pub fn fired() -> Vec<(&'static str, u64)> {
        STATE.with(|s| s.borrow().fired.iter().map(|(k, v)| (*k, *v)).collect())
    }
}

pub use imp::{buggify, disable, enable, fired};
