//! A hint to the CPU to start loading memory a loop will read soon, for the query path's scattered
//! reads (scores by slot, stored vectors by candidate), where overlapping cache misses is most of the
//! speed there is.

/// Bytes in a cache line.
const LINE_BYTES: usize = 64;

/// Asks the CPU to bring the cache line holding `address` closer; a hint that never faults.
#[inline(always)]
pub fn prefetch<T>(address: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint; it reads no memory architecturally and cannot fault, whatever the
    // address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(address.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}

/// [`prefetch`]es every cache line of `values`.
#[inline(always)]
pub fn prefetch_slice<T>(values: &[T]) {
    let bytes = values.as_ptr().cast::<u8>();
    for offset in (0..size_of_val(values)).step_by(LINE_BYTES) {
        prefetch(bytes.wrapping_add(offset));
    }
}
