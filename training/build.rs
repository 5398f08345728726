//! Links libtorch for real (tch-rs issue 980): without `--no-as-needed` the linker drops `libtorch.so`,
//! CUDA is never seen and the GPU is silently unused. The rpath lets binaries and tests run on the
//! machine that built them without LD_LIBRARY_PATH.
fn main() {
    if let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath={}", lib.to_string_lossy());
    }
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-link-arg=-ltorch");
}
