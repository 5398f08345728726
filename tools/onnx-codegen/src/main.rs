//! Generates the prost types for ONNX once; the output is committed, so builds need no protoc.
use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../onnx");
    let proto_dir = root.join("proto");
    let out_dir = root.join("src/proto");
    let descriptors = protox::compile([proto_dir.join("onnx.proto")], [&proto_dir])
        .expect("onnx.proto should compile");
    std::fs::create_dir_all(&out_dir).expect("create onnx/src/proto");
    prost_build::Config::new()
        .out_dir(&out_dir)
        .compile_fds(descriptors)
        .expect("prost-build should generate onnx.rs");
    println!("wrote {}", out_dir.join("onnx.rs").display());
}
