//! State shared by every clone of a handler.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A value behind one lock, shared by every clone: the state of a handler,
/// which the sdk clones into each call while calls run concurrently.
///
/// A handler that panicked while holding the lock does not poison it: the
/// next call sees the state as the panicking call left it (a panic in a
/// handler fails that call only).
///
/// ```
/// #[derive(Default)]
/// struct Counter {
///     hits: u64,
/// }
///
/// let state = sdk::Shared::<Counter>::default();
/// let clone = state.clone();
/// clone.lock().hits += 1;
/// assert_eq!(state.lock().hits, 1);
/// ```
#[derive(Debug, Default)]
pub struct Shared<T>(Arc<Mutex<T>>);

impl<T> Shared<T> {
    /// Shares `value`.
    pub fn new(value: T) -> Self {
        Self(Arc::new(Mutex::new(value)))
    }

    /// The value, locked until the guard is dropped. Do not hold it across
    /// an `.await`: every other call waits for it.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Another handle on the same value (`T` need not be `Clone`).
impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}
