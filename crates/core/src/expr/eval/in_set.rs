//! The right side of `in`: a list of values hashed by kind, answering membership with
//! the three-valued semantics of `x == a or x == b ...`.

use std::cmp::Ordering;
use std::collections::HashSet;

use super::{cmp_int_float, float_as_int, structural_eq, Datum};
use crate::expr::Value;

const CLASS_NUM: u8 = 1;
const CLASS_STR: u8 = 2;
const CLASS_BOOL: u8 = 4;
const CLASS_COMPOSITE: u8 = 8;
const CLASS_NULL: u8 = 16;

/// The right side of `in`: the list as written (for [`super::Predicate::primary_keys`])
/// and hashed lookups.
/// On the wire only the list travels; the lookups are rebuilt from it.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(from = "Vec<Value>", into = "Vec<Value>")]
pub(in crate::expr) struct InSet {
    pub(in crate::expr) items: Vec<Value>,
    ints: HashSet<i64>,
    /// Floats that are not exactly an Int64.
    floats: Vec<f64>,
    strs: HashSet<String>,
    bools: [bool; 2],
    composite: Vec<Value>,
    /// Which kinds of value the list holds (`CLASS_*` bits).
    classes: u8,
}

impl From<Vec<Value>> for InSet {
    fn from(items: Vec<Value>) -> Self {
        InSet::new(items)
    }
}

impl From<InSet> for Vec<Value> {
    fn from(set: InSet) -> Self {
        set.items
    }
}

impl InSet {
    pub(in crate::expr) fn new(items: Vec<Value>) -> InSet {
        let mut set = InSet::default();
        for v in &items {
            set.insert(v);
        }
        set.items = items;
        set
    }

    fn insert(&mut self, v: &Value) {
        match Datum::from_value(v) {
            Datum::Null => self.classes |= CLASS_NULL,
            Datum::Bool(b) => {
                self.bools[usize::from(b)] = true;
                self.classes |= CLASS_BOOL;
            }
            Datum::Int(i) => {
                self.ints.insert(i);
                self.classes |= CLASS_NUM;
            }
            Datum::Float(f) => {
                match float_as_int(f) {
                    Some(i) => {
                        self.ints.insert(i);
                    }
                    None => self.floats.push(f),
                }
                self.classes |= CLASS_NUM;
            }
            Datum::Str(s) => {
                self.strs.insert(s.to_string());
                self.classes |= CLASS_STR;
            }
            Datum::Json(_) | Datum::List(_) => {
                self.composite.push(v.clone());
                self.classes |= CLASS_COMPOSITE;
            }
        }
    }

    /// `d in list` as `d == item1 or d == item2 ...`: true if found; unknown if `d` is
    /// null or the list holds values of another kind (or a null); false otherwise.
    pub(in crate::expr) fn contains(&self, d: Datum<'_>) -> Datum<'static> {
        let (found, class) = match d {
            Datum::Null => return Datum::Null,
            Datum::Bool(b) => (self.bools[usize::from(b)], CLASS_BOOL),
            Datum::Int(i) => (
                self.ints.contains(&i)
                    || self
                        .floats
                        .iter()
                        .any(|&f| cmp_int_float(i, f) == Some(Ordering::Equal)),
                CLASS_NUM,
            ),
            Datum::Float(f) => (
                float_as_int(f).is_some_and(|i| self.ints.contains(&i)) || self.floats.contains(&f),
                CLASS_NUM,
            ),
            Datum::Str(s) => (self.strs.contains(s), CLASS_STR),
            Datum::Json(_) | Datum::List(_) => (
                self.composite
                    .iter()
                    .any(|v| structural_eq(d, Datum::from_value(v))),
                CLASS_COMPOSITE,
            ),
        };
        if found {
            Datum::Bool(true)
        } else if (self.classes & !class) != 0 {
            Datum::Null
        } else {
            Datum::Bool(false)
        }
    }
}
