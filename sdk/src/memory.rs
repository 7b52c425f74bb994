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

/// Fixes malloc's mmap threshold at [`MMAP_THRESHOLD`] (glibc only; other C
/// libraries already return large buffers on free). Called by
/// [`Extension::start`](crate::Extension::start).
pub fn release_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let threshold = libc::c_int::try_from(MMAP_THRESHOLD).unwrap_or(libc::c_int::MAX);
        // SAFETY: `mallopt` only changes a malloc tunable, takes glibc's
        // arena lock to do so, and refuses values out of range by returning 0.
        #[allow(unsafe_code)]
        let set = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, threshold) };
        if set == 0 {
            tracing::debug!(threshold, "malloc refused the mmap threshold");
        }
    }
}
