//! glibc's allocator, set for Gatys on the CPU.
//!
//! glibc gives every block over its mmap threshold (at most 32 MB) a fresh `mmap` and unmaps it on
//! free; a 64-channel VGG activation at 512 px is about 41 MB, so every evaluation page-faults its
//! largest tensors in again. Keeping them on the heap (no mmap, no automatic trim) made
//! `stylegram-train gatys --preset 3 --size 512` 13–24% faster in f32 (`docs/gatys.md`, "How far
//! this CPU lets any change go"). The freed heap goes back to the system when a run ends.
//!
//! [`share_main_heap`] extends this to worker threads, whose arenas would still map the largest
//! blocks (the bot calls it at start).
//!
//! An operator who sets glibc's own malloc variables (`MALLOC_MMAP_MAX_`, `MALLOC_TRIM_THRESHOLD_`,
//! `MALLOC_MMAP_THRESHOLD_`, or `glibc.malloc` in `GLIBC_TUNABLES`) keeps them: then nothing here
//! changes the allocator.

/// Environment variables through which glibc's malloc is configured; any of them set means the
/// operator has chosen the allocator's behaviour.
const OPERATOR_SETTINGS: [&str; 3] = [
    "MALLOC_MMAP_MAX_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_MMAP_THRESHOLD_",
];

/// Whether the environment (read through `var`) already configures glibc's malloc.
fn operator_has_chosen(var: impl Fn(&str) -> Option<String>) -> bool {
    OPERATOR_SETTINGS.iter().any(|name| var(name).is_some())
        || var("GLIBC_TUNABLES").is_some_and(|tunables| tunables.contains("glibc.malloc."))
}

/// Environment variables that set how many arenas glibc's malloc makes.
const ARENA_SETTINGS: [&str; 2] = ["MALLOC_ARENA_MAX", "MALLOC_ARENA_TEST"];

/// Puts every thread of this process on glibc's main heap (`M_ARENA_MAX` = 1) unless the operator
/// has configured glibc's malloc (any variable above, or `MALLOC_ARENA_MAX`/`MALLOC_ARENA_TEST`);
/// returns whether it did. A thread's own arena grows in heaps of at most 64 MB and maps a larger
/// block afresh, so a Gatys run on a worker thread would still page-fault its largest activations
/// in every evaluation (64 channels of a square photo at 512 px: 67 MB) although [`HeapHold`] is
/// on; the main heap has no such limit. Call it before the process starts a thread: a thread keeps
/// the arena it first allocated from.
pub fn share_main_heap() -> bool {
    let var = |name: &str| std::env::var(name).ok();
    if operator_has_chosen(var) || ARENA_SETTINGS.iter().any(|name| var(name).is_some()) {
        return false;
    }
    one_arena()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn one_arena() -> bool {
    // SAFETY: mallopt only changes allocator parameters; glibc takes its own locks.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn one_arena() -> bool {
    false
}

/// Runs holding the heap now; the free heap goes back to the system when the last one ends, so a
/// run that finishes does not take the pages of one still going.
static HOLDERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Large tensors kept on the heap for as long as it lives (one optimisation run); dropping the
/// last one hands the heap's free memory back to the system.
pub(crate) struct HeapHold {
    active: bool,
}

impl HeapHold {
    /// Keeps large blocks on the heap when tensors live in host memory (`cpu`) and the operator
    /// has not configured malloc; otherwise does nothing.
    pub(crate) fn new(cpu: bool) -> Self {
        let active = cpu && !operator_has_chosen(|name| std::env::var(name).ok());
        if active {
            keep_large_blocks_on_heap();
            HOLDERS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        HeapHold { active }
    }
}

impl Drop for HeapHold {
    fn drop(&mut self) {
        if self.active && HOLDERS.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            release_free_heap();
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_large_blocks_on_heap() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: mallopt only changes allocator parameters; glibc takes its own locks.
        let set = unsafe {
            libc::mallopt(libc::M_MMAP_MAX, 0) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) == 1
        };
        if set {
            tracing::debug!("glibc malloc: no mmap for large blocks, no automatic trim");
        } else {
            tracing::warn!("glibc malloc refused the Gatys settings; large tensors stay mmap'd");
        }
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_heap() {
    // SAFETY: malloc_trim only returns free memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_large_blocks_on_heap() {}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_heap() {}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        }
    }

    #[test]
    fn glibc_variables_mean_the_operator_has_chosen() {
        assert!(!operator_has_chosen(env(&[])));
        assert!(!operator_has_chosen(env(&[(
            "GLIBC_TUNABLES",
            "glibc.pthread.rseq=0"
        )])));
        assert!(operator_has_chosen(env(&[("MALLOC_MMAP_MAX_", "65536")])));
        assert!(operator_has_chosen(env(&[("MALLOC_TRIM_THRESHOLD_", "0")])));
        assert!(operator_has_chosen(env(&[("MALLOC_MMAP_THRESHOLD_", "1")])));
        assert!(operator_has_chosen(env(&[(
            "GLIBC_TUNABLES",
            "glibc.malloc.mmap_max=0"
        )])));
    }

    /// A 40 MB block (over glibc's largest mmap threshold, 32 MB) comes from the heap while a hold
    /// is active, which glibc's own statistics show: no growth of the mmap'd bytes. (The test runs
    /// on a thread of its own, whose arena's heaps hold at most 64 MB per block.)
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn large_blocks_stay_off_mmap_while_held() {
        fn mmapped_bytes() -> usize {
            // SAFETY: mallinfo2 only reads allocator statistics.
            unsafe { libc::mallinfo2() }.hblkhd
        }
        const BLOCK: usize = 40 << 20;
        if operator_has_chosen(|name| std::env::var(name).ok()) {
            eprintln!("skipped: this environment configures glibc malloc itself");
            return;
        }
        let hold = HeapHold::new(true);
        let before = mmapped_bytes();
        let block = std::hint::black_box(vec![1u8; BLOCK]);
        let after = mmapped_bytes();
        assert!(
            after < before + BLOCK,
            "a 40 MB block was mmap'd ({before} -> {after} bytes) while the heap was held"
        );
        drop(block);
        drop(hold);
    }
}
