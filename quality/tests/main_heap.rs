//! `heap::share_main_heap` in a fresh process, as the bot calls it: before any thread starts, then
//! a worker thread allocates a block larger than a thread arena's heap (64 MB) with mmap turned off
//! for large blocks (what a Gatys run on the CPU does). On the main heap the block does not come
//! from mmap; on the thread's own arena (the control, without the call) it does. Each case runs in
//! a child process of this binary (no test harness: the harness would start threads first).
//! glibc on Linux only.

/// The case a child process runs, named by this variable.
const CASE: &str = "STYLEGRAM_MAIN_HEAP_CASE";

/// A block over a thread arena's largest heap.
const BLOCK: usize = 80 << 20;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn main() {
    match std::env::var(CASE).ok().as_deref() {
        Some(case) => child(case),
        None => parent(),
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn main() {
    println!("skipped: glibc's arenas exist on Linux with glibc only");
}

/// Runs each case in a child with glibc's malloc as it comes, and checks what it saw.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn parent() {
    let run = |case: &str, extra: &[(&str, &str)]| -> String {
        let mut command = std::process::Command::new(std::env::current_exe().expect("own path"));
        for (name, _) in std::env::vars() {
            if name.starts_with("MALLOC_") || name == "GLIBC_TUNABLES" {
                command.env_remove(name);
            }
        }
        let out = command
            .env(CASE, case)
            .envs(extra.iter().copied())
            .output()
            .expect("run a child");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "case {case} failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout.trim().to_owned()
    };
    assert_eq!(
        run("shared", &[]),
        "changed: true, block mmapped: false",
        "after share_main_heap a worker thread's large block must come from the main heap"
    );
    assert_eq!(
        run("own", &[]),
        "changed: false, block mmapped: true",
        "control: on its own arena a worker thread's large block is mmap'd (else this test shows nothing)"
    );
    assert_eq!(
        run("shared", &[("MALLOC_ARENA_MAX", "8")]),
        "changed: false, block mmapped: true",
        "an operator's MALLOC_ARENA_MAX is kept"
    );
    println!("main_heap: 3 cases ok");
}

/// One case: optionally the call, then a worker thread's large block with mmap off.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn child(case: &str) {
    let changed = case == "shared" && stylegram_quality::heap::share_main_heap();
    // SAFETY: mallopt only changes allocator parameters; mallinfo2 only reads statistics.
    unsafe {
        assert_eq!(libc::mallopt(libc::M_MMAP_MAX, 0), 1);
    }
    let mmapped = std::thread::spawn(|| {
        let before = unsafe { libc::mallinfo2() }.hblkhd;
        let block = std::hint::black_box(vec![1u8; BLOCK]);
        let after = unsafe { libc::mallinfo2() }.hblkhd;
        drop(block);
        after >= before + BLOCK
    })
    .join()
    .expect("worker thread");
    println!("changed: {changed}, block mmapped: {mmapped}");
}
