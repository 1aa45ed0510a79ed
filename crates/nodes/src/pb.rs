//! The generated Milvus API types and service (see `proto/`).
#![allow(clippy::all, clippy::too_many_lines, missing_docs, rustdoc::all)]

pub mod common {
    tonic::include_proto!("milvus.proto.common");
}
pub mod schema {
    tonic::include_proto!("milvus.proto.schema");
}
pub mod milvus {
    tonic::include_proto!("milvus.proto.milvus");
}
pub mod internal {
    tonic::include_proto!("quiver.internal");
}
