//! The tile loop of [`super::DirectConv`]: blocks of output pixels by panels of `NR` output
//! channels, accumulated in vector registers.
//!
//! The loop is written once over [`Lanes`], a 16-wide vector of accumulators. f32 runs on one
//! AVX-512 register or two AVX2 ones with fused multiply-adds when the CPU has them (checked at
//! run time); everything else (i32 accumulators, other CPUs) runs on plain arrays. Register
//! blocking gives at least eight independent accumulator chains, so the adds' latency does not
//! bound the loop.

use std::marker::PhantomData;
use std::ops::{Add, Mul};

use tract_core::internal::*;

use super::tile_order::{visit, TileLoop};

/// Output channels per weight panel: one AVX-512 register of f32, two AVX2 ones.
pub(super) const NR: usize = 16;

/// An accumulator element: f32 or i32.
pub(super) trait Mac:
    Datum + Copy + Default + Add<Output = Self> + Mul<Output = Self>
{
    /// Converts a centered input value (exact for the importer's choice of type).
    fn from_i32(v: i32) -> Self;
    /// Converts a float input value (only f32 accumulators take float inputs).
    fn from_f32(v: f32) -> Self;
    /// Runs the tile loop with the best vector unit the CPU has for this element type.
    fn dispatch(job: &Job<Self>, out: &mut [Self]);
    /// Clamps float results to a fused activation's `[lo, hi]` (integer accumulators are
    /// clamped by the requantization instead).
    fn clamp_all(values: &mut [Self], lo: f32, hi: f32);
}

impl Mac for f32 {
    #[inline(always)]
    fn from_i32(v: i32) -> Self {
        v as f32
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v
    }
    fn dispatch(job: &Job<f32>, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") && has!("fma") {
                // SAFETY: the CPU supports AVX-512F and FMA, checked just above.
                #[allow(unsafe_code)]
                unsafe {
                    x86::tiles_avx512(job, out)
                };
                return;
            }
            if has!("avx2") && has!("fma") {
                // SAFETY: the CPU supports AVX2 and FMA, checked just above.
                #[allow(unsafe_code)]
                unsafe {
                    x86::tiles_avx2(job, out)
                };
                return;
            }
        }
        tiles::<Portable<f32>>(job, out)
    }
    fn clamp_all(values: &mut [f32], lo: f32, hi: f32) {
        for v in values {
            // Comparisons rather than f32::max/min: they vectorize better.
            let c = if *v < lo { lo } else { *v };
            *v = if c > hi { hi } else { c };
        }
    }
}

impl Mac for i32 {
    #[inline(always)]
    fn from_i32(v: i32) -> Self {
        v
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v as i32
    }
    fn dispatch(job: &Job<i32>, out: &mut [i32]) {
        tiles::<Portable<i32>>(job, out)
    }
    fn clamp_all(_: &mut [i32], _: f32, _: f32) {}
}

/// The fused activation clamp of a float convolution, if any. The bounds are kept as bit
/// patterns so the ops holding it stay `Eq`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct FusedClamp(Option<[u32; 2]>);

impl FusedClamp {
    /// Clamps to `[lo, hi]` when given.
    pub fn new(bounds: Option<(f32, f32)>) -> FusedClamp {
        FusedClamp(bounds.map(|(lo, hi)| [lo.to_bits(), hi.to_bits()]))
    }

    /// Applies the clamp to float results (a no-op for integer accumulators).
    pub fn apply<A: Mac>(self, values: &mut [A]) {
        if let Some([lo, hi]) = self.0 {
            A::clamp_all(values, f32::from_bits(lo), f32::from_bits(hi));
        }
    }
}

/// Everything the tile loop reads.
pub(super) struct Job<'a, A> {
    /// The centered, zero-padded NHWC input.
    pub xp: &'a [A],
    /// Offset in `xp` of each output pixel's window.
    pub bases: &'a [usize],
    /// Offset from the window's base of each run of contiguous window values (a window row,
    /// or a single tap when dilated).
    pub segments: &'a [usize],
    /// Values per run.
    pub run: usize,
    /// Output channels.
    pub cout: usize,
    /// Packed weights: `[panels][segments * run][NR]`.
    pub panels: &'a [A],
    /// Accumulator start values per output channel.
    pub init: &'a [A],
}

/// Sixteen accumulators in vector registers.
pub(super) trait Lanes: Copy {
    /// The element type.
    type Elem: Mac;
    /// All lanes from an array.
    fn load(v: &[Self::Elem; NR]) -> Self;
    /// Every lane set to `x`.
    fn splat(x: Self::Elem) -> Self;
    /// `self + x * w`, lane by lane.
    fn mac(self, x: Self, w: Self) -> Self;
    /// Lane-wise sum.
    fn add(self, other: Self) -> Self;
    /// Writes the lanes out.
    fn store(self, out: &mut [Self::Elem; NR]);
    /// Writes the first `out.len()` lanes (at most `NR`) and nothing past them.
    fn store_first(self, out: &mut [Self::Elem]) {
        let mut lanes = [Self::Elem::default(); NR];
        self.store(&mut lanes);
        for (o, l) in out.iter_mut().zip(lanes) {
            *o = l;
        }
    }
}

/// Plain arrays: any element type, any CPU.
#[derive(Clone, Copy)]
pub(super) struct Portable<A>([A; NR]);

impl<A: Mac> Lanes for Portable<A> {
    type Elem = A;
    #[inline(always)]
    fn load(v: &[A; NR]) -> Self {
        Portable(*v)
    }
    #[inline(always)]
    fn splat(x: A) -> Self {
        Portable([x; NR])
    }
    #[inline(always)]
    fn mac(self, x: Self, w: Self) -> Self {
        let mut out = self.0;
        for ((o, x), w) in out.iter_mut().zip(x.0).zip(w.0) {
            *o = *o + x * w;
        }
        Portable(out)
    }
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        let mut out = self.0;
        for (o, v) in out.iter_mut().zip(other.0) {
            *o = *o + v;
        }
        Portable(out)
    }
    #[inline(always)]
    fn store(self, out: &mut [A; NR]) {
        *out = self.0;
    }
}

/// All output tiles, in the order of [`visit`].
#[inline(always)]
pub(super) fn tiles<V: Lanes>(job: &Job<V::Elem>, out: &mut [V::Elem]) {
    let depth = job.segments.len() * job.run;
    let panels = job.panels.chunks_exact(depth * NR).collect();
    let lanes = PhantomData;
    visit(&MacTiles::<V> { job, panels, lanes }, out)
}

/// The multiply-add loop over one job, with its weight panels split out.
struct MacTiles<'a, V: Lanes> {
    job: &'a Job<'a, V::Elem>,
    panels: Vec<&'a [V::Elem]>,
    lanes: PhantomData<V>,
}

impl<V: Lanes> TileLoop for MacTiles<'_, V> {
    type Acc = V;
    type Weight = V::Elem;
    type Out = V::Elem;
    #[inline(always)]
    fn bases(&self) -> &[usize] {
        self.job.bases
    }
    #[inline(always)]
    fn panels(&self) -> &[&[V::Elem]] {
        &self.panels
    }
    #[inline(always)]
    fn start(&self, t: usize) -> V {
        start(self.job, t)
    }
    #[inline(always)]
    fn tile<const M: usize, const P: usize>(
        &self,
        bases: [usize; M],
        panels: [&[V::Elem]; P],
        starts: [V; P],
    ) -> [[V; P]; M] {
        tile(self.job, bases, panels, starts)
    }
    #[inline(always)]
    fn store(&self, out: &mut [V::Elem], p: usize, t: usize, acc: V) {
        store(self.job, out, p, t, acc)
    }
}

/// Start values of panel `t` (zero beyond the last channel). Here and below: functions, not
/// closures, so they inline into the target-feature callers (and the intrinsics with them).
#[inline(always)]
fn start<V: Lanes>(job: &Job<V::Elem>, t: usize) -> V {
    let c0 = t * NR;
    let mut s = [V::Elem::default(); NR];
    let width = job.cout.saturating_sub(c0).min(NR);
    s[..width].copy_from_slice(&job.init[c0..c0 + width]);
    V::load(&s)
}

/// Writes panel `t` of pixel `p`, dropping the lanes beyond the last channel.
#[inline(always)]
fn store<V: Lanes>(job: &Job<V::Elem>, out: &mut [V::Elem], p: usize, t: usize, acc: V) {
    let c0 = t * NR;
    let width = (job.cout - c0).min(NR);
    let dst = &mut out[p * job.cout + c0..][..width];
    match <&mut [V::Elem; NR]>::try_from(&mut *dst) {
        Ok(full) => acc.store(full),
        Err(_) => acc.store_first(dst),
    }
}

/// One tile: `M` pixels (input offsets `bases`) by `P` panels. Even and odd depth rows go to
/// two accumulator sets, summed at the end, for twice the independent chains. The runs are
/// read as pairs of values (and pairs of weight rows) from slices of one known length, so the
/// inner loop has no bounds checks.
#[inline(always)]
fn tile<V: Lanes, const M: usize, const P: usize>(
    job: &Job<V::Elem>,
    bases: [usize; M],
    panels: [&[V::Elem]; P],
    start: [V; P],
) -> [[V; P]; M] {
    let zero = V::splat(V::Elem::default());
    let mut even = [start; M];
    let mut odd = [[zero; P]; M];
    let run = job.run;
    let pairs = run / 2;
    let block = run * NR;
    // Placeholder rows for the arrays below, all overwritten before use.
    let unset = [V::Elem::default(); NR];
    for (index, &offset) in job.segments.iter().enumerate() {
        let mut rows: [&[[V::Elem; 2]]; M] = [&[]; M];
        let mut last = [V::Elem::default(); M];
        for i in 0..M {
            let (two, rest) = job.xp[bases[i] + offset..][..run].as_chunks::<2>();
            rows[i] = &two[..pairs];
            if let Some(&v) = rest.first() {
                last[i] = v;
            }
        }
        let mut weights: [&[[V::Elem; 2 * NR]]; P] = [&[]; P];
        let mut last_w: [&[V::Elem]; P] = [&[]; P];
        for q in 0..P {
            let (two, rest) = panels[q][index * block..][..block].as_chunks::<{ 2 * NR }>();
            weights[q] = &two[..pairs];
            last_w[q] = rest;
        }
        for k in 0..pairs {
            let mut x0 = [V::Elem::default(); M];
            let mut x1 = [V::Elem::default(); M];
            for i in 0..M {
                [x0[i], x1[i]] = rows[i][k];
            }
            let mut w0: [&[V::Elem; NR]; P] = [&unset; P];
            let mut w1 = w0;
            for q in 0..P {
                (w0[q], w1[q]) = halves(&weights[q][k]);
            }
            step(&mut even, x0, w0);
            step(&mut odd, x1, w1);
        }
        if run % 2 == 1 {
            let mut w: [&[V::Elem; NR]; P] = [&unset; P];
            for q in 0..P {
                w[q] = panel_row(last_w[q]);
            }
            step(&mut even, last, w);
        }
    }
    for i in 0..M {
        for q in 0..P {
            even[i][q] = even[i][q].add(odd[i][q]);
        }
    }
    even
}

/// One depth index: every pixel's input value times every panel's weight row.
#[inline(always)]
fn step<V: Lanes, const M: usize, const P: usize>(
    acc: &mut [[V; P]; M],
    x: [V::Elem; M],
    weights: [&[V::Elem; NR]; P],
) {
    for q in 0..P {
        let w = V::load(weights[q]);
        for i in 0..M {
            acc[i][q] = acc[i][q].mac(V::splat(x[i]), w);
        }
    }
}

/// The two weight rows of a pair.
#[inline(always)]
fn halves<A>(pair: &[A; 2 * NR]) -> (&[A; NR], &[A; NR]) {
    let (a, b) = pair.split_at(NR);
    (panel_row(a), panel_row(b))
}

/// A slice known to hold exactly one weight row, as an array.
#[inline(always)]
fn panel_row<A>(row: &[A]) -> &[A; NR] {
    // Callers pass exactly NR values, so the conversion cannot fail.
    row.try_into().unwrap_or_else(|_| unreachable!())
}

/// The x86-64 vector units. The `unsafe` blocks are there because the intrinsics require CPU
/// features: these types are private to this module and only used by the two entry points,
/// whose callers check the features first.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use std::arch::x86_64::*;

    use super::{tiles, Job, Lanes, NR};

    /// One AVX-512 register.
    #[derive(Clone, Copy)]
    struct Avx512(__m512);

    impl Lanes for Avx512 {
        type Elem = f32;
        #[inline(always)]
        fn load(v: &[f32; NR]) -> Self {
            // SAFETY: reads exactly the 16 floats of `v`; only reached from `tiles_avx512`.
            Avx512(unsafe { _mm512_loadu_ps(v.as_ptr()) })
        }
        #[inline(always)]
        fn splat(x: f32) -> Self {
            // SAFETY: only reached from `tiles_avx512`, which requires AVX-512F.
            Avx512(unsafe { _mm512_set1_ps(x) })
        }
        #[inline(always)]
        fn mac(self, x: Self, w: Self) -> Self {
            // SAFETY: only reached from `tiles_avx512`, which requires AVX-512F.
            Avx512(unsafe { _mm512_fmadd_ps(x.0, w.0, self.0) })
        }
        #[inline(always)]
        fn add(self, other: Self) -> Self {
            // SAFETY: only reached from `tiles_avx512`, which requires AVX-512F.
            Avx512(unsafe { _mm512_add_ps(self.0, other.0) })
        }
        #[inline(always)]
        fn store(self, out: &mut [f32; NR]) {
            // SAFETY: writes exactly the 16 floats of `out`; only reached from `tiles_avx512`.
            unsafe { _mm512_storeu_ps(out.as_mut_ptr(), self.0) }
        }
        #[inline(always)]
        fn store_first(self, out: &mut [f32]) {
            let width = out.len().min(NR);
            let mask = ((1u32 << width) - 1) as __mmask16;
            // SAFETY: the mask writes only the first `width <= out.len()` floats; only reached
            // from `tiles_avx512`, which requires AVX-512F.
            unsafe { _mm512_mask_storeu_ps(out.as_mut_ptr(), mask, self.0) }
        }
    }

    /// Two AVX2 registers.
    #[derive(Clone, Copy)]
    struct Avx2(__m256, __m256);

    impl Lanes for Avx2 {
        type Elem = f32;
        #[inline(always)]
        fn load(v: &[f32; NR]) -> Self {
            // SAFETY: reads exactly the 16 floats of `v`; only reached from `tiles_avx2`.
            unsafe {
                Avx2(
                    _mm256_loadu_ps(v.as_ptr()),
                    _mm256_loadu_ps(v[8..].as_ptr()),
                )
            }
        }
        #[inline(always)]
        fn splat(x: f32) -> Self {
            // SAFETY: only reached from `tiles_avx2`, which requires AVX2.
            unsafe { Avx2(_mm256_set1_ps(x), _mm256_set1_ps(x)) }
        }
        #[inline(always)]
        fn mac(self, x: Self, w: Self) -> Self {
            // SAFETY: only reached from `tiles_avx2`, which requires AVX2 and FMA.
            unsafe {
                Avx2(
                    _mm256_fmadd_ps(x.0, w.0, self.0),
                    _mm256_fmadd_ps(x.1, w.1, self.1),
                )
            }
        }
        #[inline(always)]
        fn add(self, other: Self) -> Self {
            // SAFETY: only reached from `tiles_avx2`, which requires AVX2.
            unsafe {
                Avx2(
                    _mm256_add_ps(self.0, other.0),
                    _mm256_add_ps(self.1, other.1),
                )
            }
        }
        #[inline(always)]
        fn store(self, out: &mut [f32; NR]) {
            // SAFETY: writes exactly the 16 floats of `out`; only reached from `tiles_avx2`.
            unsafe {
                _mm256_storeu_ps(out.as_mut_ptr(), self.0);
                _mm256_storeu_ps(out[8..].as_mut_ptr(), self.1);
            }
        }
        #[inline(always)]
        fn store_first(self, out: &mut [f32]) {
            match out.split_first_chunk_mut::<8>() {
                Some((head, tail)) => {
                    // SAFETY: writes exactly the 8 floats of `head`; only reached from
                    // `tiles_avx2`.
                    unsafe { _mm256_storeu_ps(head.as_mut_ptr(), self.0) };
                    store_masked(tail, self.1);
                }
                None => store_masked(out, self.0),
            }
        }
    }

    /// Writes the first `out.len()` (at most 8) lanes of `v`.
    #[inline(always)]
    fn store_masked(out: &mut [f32], v: __m256) {
        let width = out.len().min(8) as i32;
        // SAFETY: only reached from `tiles_avx2`, which requires AVX2.
        unsafe {
            let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(width), lanes);
            // The mask enables only the first `width <= out.len()` lanes.
            _mm256_maskstore_ps(out.as_mut_ptr(), mask, v);
        }
    }

    /// The tile loop on AVX-512 registers.
    #[target_feature(enable = "avx512f,fma")]
    pub(super) fn tiles_avx512(job: &Job<f32>, out: &mut [f32]) {
        tiles::<Avx512>(job, out)
    }

    /// The tile loop on AVX2 registers.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn tiles_avx2(job: &Job<f32>, out: &mut [f32]) {
        tiles::<Avx2>(job, out)
    }
}

/// A tile loop over f32.
#[cfg(test)]
pub(super) type F32Loop = fn(&Job<f32>, &mut [f32]);

/// Every f32 variant of the tile loop this CPU can run, by name, for tests that compare them
/// all (dispatch only ever exercises the widest).
#[cfg(test)]
#[allow(unsafe_code)]
pub(super) fn f32_variants() -> Vec<(&'static str, F32Loop)> {
    let mut v: Vec<(&'static str, F32Loop)> =
        vec![("portable", |job, out| tiles::<Portable<f32>>(job, out))];
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx2") && has!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA, checked just above.
            v.push(("avx2", |job, out| unsafe { x86::tiles_avx2(job, out) }));
        }
        if has!("avx512f") && has!("fma") {
            // SAFETY: the CPU supports AVX-512F and FMA, checked just above.
            v.push(("avx512", |job, out| unsafe { x86::tiles_avx512(job, out) }));
        }
    }
    v
}
