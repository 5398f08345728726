//! With the `quality` feature the bot runs quality mode on libtorch: link it for real (tch-rs issue
//! 980) and set the rpath so the binary runs without LD_LIBRARY_PATH on the machine that built it.
//! `torch-sys` is a dependency only to learn where libtorch is. A fast-only build links nothing.
fn main() {
    if std::env::var_os("CARGO_FEATURE_QUALITY").is_none() {
        return;
    }
    if let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath={}", lib.to_string_lossy());
    }
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-link-arg=-ltorch");
}
