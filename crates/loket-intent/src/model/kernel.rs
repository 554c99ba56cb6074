//! The accumulation kernel (row sums of `i8` weights, AVX2 when the CPU has
//! it) and the branch-free `exp` of the softmaxes.

/// Weight tables larger than this are prefetched row by row while hashing.
pub(super) const PREFETCH_ABOVE_BYTES: usize = 1 << 20;

// The accumulation kernel: `acc[c] += sum over buckets b of weights[b * stride + c]`.
/// Rows summed in `i16` before flushing: 255 * 128 < 32767.
const FLUSH: usize = 255;

/// Hints the CPU to load `weights[offset..offset + len]` into the cache
/// (its first, second and last cache line: the whole row up to 192
/// bytes).
#[inline(always)]
pub(super) fn prefetch_row(weights: &[i8], offset: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        if len == 0 || offset + len > weights.len() {
            return;
        }
        let row = weights[offset..].as_ptr();
        // SAFETY: prefetching is only a hint and never faults; the
        // pointers are within the row anyway. SSE is part of x86-64.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(row);
            _mm_prefetch::<_MM_HINT_T0>(row.add((len - 1).min(64)));
            _mm_prefetch::<_MM_HINT_T0>(row.add(len - 1));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (weights, offset, len);
}

/// Adds the rows of `buckets` into `acc` (`acc.len() == stride`, a
/// multiple of 16; every `b * stride + stride <= weights.len()`, which the
/// model invariants guarantee for buckets from `for_each_feature`).
pub(super) fn accumulate(weights: &[i8], stride: usize, buckets: &[u32], acc: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            unsafe { accumulate_avx2(weights, stride, buckets, acc) };
            return;
        }
    }
    accumulate_generic(weights, stride, buckets, acc);
}

/// The same code compiled for AVX2 (sign extension and 16 lanes per
/// instruction), chosen at run time so the binary still runs on any x86-64.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn accumulate_avx2(weights: &[i8], stride: usize, buckets: &[u32], acc: &mut [i32]) {
    accumulate_generic(weights, stride, buckets, acc);
}

#[inline(always)]
fn accumulate_generic(weights: &[i8], stride: usize, buckets: &[u32], acc: &mut [i32]) {
    // Rows up to 192 classes wide are summed in one pass, all classes
    // in registers at once, so each row is read once.
    macro_rules! one_pass {
        ($($w:literal)*) => {
            match stride {
                $($w => return block::<$w>(weights, stride, 0, buckets, acc),)*
                _ => {}
            }
        };
    }
    one_pass!(16 32 48 64 80 96 112 128 144 160 176 192);
    let mut start = 0;
    while start + 128 <= stride {
        block::<128>(weights, stride, start, buckets, acc);
        start += 128;
    }
    while start + 32 <= stride {
        block::<32>(weights, stride, start, buckets, acc);
        start += 32;
    }
    while start + 16 <= stride {
        block::<16>(weights, stride, start, buckets, acc);
        start += 16;
    }
}

/// Classes `start..start + W` for every bucket: a fixed-size block the
/// compiler unrolls and keeps in vector registers.
#[inline(always)]
fn block<const W: usize>(
    weights: &[i8],
    stride: usize,
    start: usize,
    buckets: &[u32],
    acc: &mut [i32],
) {
    for chunk in buckets.chunks(FLUSH) {
        let mut local = [0i16; W];
        for &b in chunk {
            let offset = b as usize * stride + start;
            let Some(row) = weights.get(offset..offset + W) else {
                continue;
            };
            let row: &[i8; W] = row.try_into().expect("slice of length W");
            for (l, &w) in local.iter_mut().zip(row) {
                *l += i16::from(w);
            }
        }
        for (a, &l) in acc[start..start + W].iter_mut().zip(&local) {
            *a += i32::from(l);
        }
    }
}
/// `exp(x)` for `x <= 0`, relative error below 2e-4 down to -80 (inputs
/// below -80, and NaN, give about 1.8e-35). Branch-free so the softmax loop
/// vectorises; libm's `exp` would dominate the cost of a 150-class model.
#[inline]
pub(crate) fn exp_neg(x: f32) -> f32 {
    // `max` maps NaN to -80, which `clamp` would not.
    #[allow(clippy::manual_clamp)]
    let x = x.max(-80.0).min(0.0);
    // exp(x) = 2^(x log2 e) = 2^i * 2^f with f in [0, 1). `floor` is a libm
    // call on baseline x86-64, so truncate and correct instead.
    let y = x * std::f32::consts::LOG2_E;
    // floor(y) without a float-to-int conversion (which does not vectorise
    // branch-free): adding 1.5 * 2^23 rounds to an integer held in the low
    // mantissa bits, for |y| < 2^22.
    const MAGIC: f32 = 12_582_912.0;
    let rounded = (y + MAGIC) - MAGIC;
    let floor = rounded - if rounded > y { 1.0 } else { 0.0 };
    let i = ((floor + MAGIC).to_bits() as i32) - (MAGIC.to_bits() as i32);
    let f = y - floor;
    // Degree-5 polynomial for 2^f on [0, 1).
    let p = 1.0
        + f * (std::f32::consts::LN_2
            + f * (0.240_226_5 + f * (0.055_504_11 + f * (0.009_618_13 + f * 0.001_333_55))));
    // i is in [-116, 0]: the exponent field stays in range.
    f32::from_bits(((i + 127) as u32) << 23) * p
}
