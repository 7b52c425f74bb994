//! Keeps freed large buffers from staying resident.
//!
//! glibc's malloc maps each allocation above its mmap threshold (128 KiB at
//! start) on its own and unmaps it when freed, but it raises the threshold
//! to the size of every such buffer freed, up to 32 MiB. Once an extension
//! frees its first multi-MiB buffer (an S3 part, a large value), later ones
//! come from per-thread heap arenas, which fragment and keep freed buffers
//! resident: blobstore-s3 peaked at 64–75 MiB during a 1 GiB upload that
//! holds 24 MiB of parts, and at ~41 MiB with the threshold fixed (see
//! BENCHMARKS.md). Setting the threshold explicitly turns the adjustment off.

/// Allocations of at least this many bytes are mapped and unmapped on their own.
pub const MMAP_THRESHOLD: usize = 1 << 20;

/// Free memory kept at the top of a heap before it is given back: twice the
/// mmap threshold, the ratio glibc keeps itself when it moves the threshold.
/// (Left at its 128 KiB default, every freed stream buffer was handed back
/// and faulted in again on the next read.)
pub const TRIM_THRESHOLD: usize = 2 * MMAP_THRESHOLD;

/// Fixes malloc's mmap threshold at [`MMAP_THRESHOLD`] and its trim
/// threshold at [`TRIM_THRESHOLD`] (glibc only; other C libraries already
/// return large buffers on free). Called by
/// [`Extension::start`](crate::Extension::start).
pub fn release_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    for (param, name, value) in [
        (libc::M_MMAP_THRESHOLD, "mmap", MMAP_THRESHOLD),
        (libc::M_TRIM_THRESHOLD, "trim", TRIM_THRESHOLD),
    ] {
        let value = libc::c_int::try_from(value).unwrap_or(libc::c_int::MAX);
        // SAFETY: `mallopt` only changes a malloc tunable, takes glibc's
        // arena lock to do so, and refuses values out of range by returning 0.
        #[allow(unsafe_code)]
        let set = unsafe { libc::mallopt(param, value) };
        if set == 0 {
            tracing::debug!(threshold = name, value, "malloc refused a threshold");
        }
    }
}
