//! Paths of the guest components built by `build.rs`, for the tests in `tests/`.

/// The keyvalue test and demo guest (`tests/components/kv-guest`).
pub const KV_GUEST: &str = env!("GUEST_KV_GUEST");
