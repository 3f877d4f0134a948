//! Compiles `proto/` into tonic client and server code, with protoc from the `protoc-bin-vendored` crate
//! so that no system install is needed. The file descriptor set feeds gRPC server reflection and the
//! proto3 JSON mapping of the HTTP routes.

use std::path::PathBuf;

const PROTO_FILES: &[&str] = &["proto/weitere/v1/related.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; prost-build reads PROTOC from the environment.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = tonic_prost_build::Config::new();
    // `prost::Name` on every message: the HTTP routes find a message's descriptor by its full name.
    config.enable_type_names();
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("weitere_descriptor.bin"))
        .compile_with_config(config, PROTO_FILES, &["proto"])?;
    for file in PROTO_FILES {
        println!("cargo:rerun-if-changed={file}");
    }
    Ok(())
}
