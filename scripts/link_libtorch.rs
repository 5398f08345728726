//! Build script shared by every crate that runs libtorch (`build = "../scripts/link_libtorch.rs"`):
//! links libtorch for real (tch-rs issue 980: without `--no-as-needed` the linker drops
//! `libtorch.so`, CUDA is never seen and the GPU is silently unused) and sets the rpath so binaries
//! and tests run on the machine that built them without LD_LIBRARY_PATH.
//!
//! `DEP_TCH_LIBTORCH_LIB` is set only when the crate depends on `torch-sys` directly; a crate whose
//! libtorch is optional (the `quality` feature) and turned off gets nothing linked.
fn main() {
    let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath={}", lib.to_string_lossy());
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-link-arg=-ltorch");
}
