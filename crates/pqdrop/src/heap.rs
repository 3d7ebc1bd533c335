//! Giving freed heap memory back to the OS after a load peak.
//!
//! glibc's allocator keeps memory freed in the middle of its heaps: after a
//! relay has held thousands of rooms or sessions, its resident size stays at
//! the peak although almost nothing is in use. `malloc_trim(0)` returns every
//! whole free page to the OS. This is the one `unsafe` call of the binary.
#![allow(unsafe_code)]

/// Returns free heap pages to the OS; true if any were returned.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn give_back() -> bool {
    // SAFETY: malloc_trim takes no pointer and only walks glibc's own free
    // lists under its arena locks; it may be called from any thread at any time.
    unsafe { libc::malloc_trim(0) != 0 }
}

/// Elsewhere the allocator returns memory by itself (or cannot be asked).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn give_back() -> bool {
    false
}
