// Generates the Milvus API server (our own wire-compatible subset in proto/) for both real
// tonic and madsim's simulated tonic. No client: the `Connect` rpc would collide with
// the generated client's `connect` constructor; tests drive the server with pymilvus.
fn main() {
    if std::env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path().expect("vendored protoc");
        std::env::set_var("PROTOC", protoc);
    }
    println!("cargo:rerun-if-changed=proto");
    tonic_build::configure()
        .build_client(false)
        .compile_protos(
            &[
                "proto/common.proto",
                "proto/schema.proto",
                "proto/milvus.proto",
            ],
            &["proto"],
        )
        .expect("compile protos");
    // Internal services between roles: clients too (no name collides there).
    tonic_build::configure()
        .compile_protos(&["proto/internal.proto"], &["proto"])
        .expect("compile internal protos");
}
