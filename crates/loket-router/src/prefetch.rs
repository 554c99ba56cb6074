//! Software prefetch: starting a cache miss early, so it overlaps with other
//! work instead of stalling the thread when the data is needed.

/// Asks the CPU to load the cache line at `address` into every cache level.
/// A hint only: it never faults and never reads in Rust's sense, so any
/// address, dangling or stale, is sound. A no-op off x86-64.
#[inline(always)]
pub(crate) fn line<T>(address: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` does not access memory in the abstract machine's
    // sense and never faults, whatever the address; SSE is part of the
    // x86-64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(address.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}
