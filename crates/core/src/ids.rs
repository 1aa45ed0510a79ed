//! Identifiers of the things the system moves around. Newtypes so a segment id can
//! never be passed where a collection id is meant.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_type!(
    /// A collection (a table with one schema).
    CollectionId
);
id_type!(
    /// A partition inside a collection.
    PartitionId
);
id_type!(
    /// A segment: the unit of flushing, indexing and handoff.
    SegmentId
);
id_type!(
    /// A field of a schema. User fields start at 100, as in Milvus.
    FieldId
);

/// The first id given to user fields; lower ids are reserved for system fields.
pub const FIRST_USER_FIELD_ID: i64 = 100;

/// A physical channel: one WAL, owned by one streaming node at a time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PChannel(pub String);

/// A virtual channel: one shard of one collection, carried on a pchannel.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VChannel(pub String);

impl PChannel {
    /// The `index`-th pchannel of a cluster whose channels share `prefix`.
    pub fn numbered(prefix: &str, index: u32) -> Self {
        PChannel(format!("{prefix}-dml_{index}"))
    }
}

impl VChannel {
    /// Milvus's naming: `<pchannel>_<collection>v<shard>`.
    pub fn new(pchannel: &PChannel, collection: CollectionId, shard: u32) -> Self {
        VChannel(format!("{}_{}v{}", pchannel.0, collection.0, shard))
    }

    /// The collection whose shard this is (`None` for a name not in Milvus's form).
    pub fn collection(&self) -> Option<CollectionId> {
        let tail = &self.0[self.0.rfind('_')? + 1..];
        tail.split('v').next()?.parse().ok().map(CollectionId)
    }

    /// The pchannel this vchannel rides on.
    pub fn pchannel(&self) -> PChannel {
        match self.0.rfind('_') {
            Some(i) => PChannel(self.0[..i].to_string()),
            None => PChannel(self.0.clone()),
        }
    }
}

impl fmt::Display for PChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for VChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vchannel_knows_its_pchannel() {
        let p = PChannel::numbered("quiver", 3);
        let v = VChannel::new(&p, CollectionId(42), 1);
        assert_eq!(v.0, "quiver-dml_3_42v1");
        assert_eq!(v.pchannel(), p);
        assert_eq!(v.collection(), Some(CollectionId(42)));
        assert_eq!(VChannel("nonsense".into()).collection(), None);
    }
}
