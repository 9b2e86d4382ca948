//! The byte dot-product tile loop of [`super::DirectConv`] for 8-bit models: unsigned input
//! bytes times signed weight bytes, four products per 32-bit lane per instruction
//! (`vpdpbusd`, AVX-512 VNNI or AVX-VNNI), accumulated exactly in i32.
//!
//! Each window run is read four bytes at a time; a run whose length is not a multiple of four
//! reads up to three bytes past its end, which meet zero weights (the padded input carries
//! slack bytes so the read stays in bounds). The i32 sums wrap like the instruction does: the
//! importer only picks this loop when the true result fits in i32, and wrapping sums are exact
//! modulo 2^32, so the final value is exact.

use std::marker::PhantomData;

use super::conv_tiles::NR;
use super::tile_order::{visit, TileLoop};

/// Bytes per dot-product group: one 32-bit lane's four products.
pub(super) const GROUP: usize = 4;
/// Bytes of one packed weight row: `NR` channels by `GROUP` depth values.
pub(super) const ROW: usize = NR * GROUP;

/// Everything the byte tile loop reads.
pub(super) struct DotJob<'a> {
    /// The zero-padded NHWC input as unsigned bytes, with at least `GROUP - 1` bytes after it.
    pub xp: &'a [u8],
    /// Offset in `xp` of each output pixel's window.
    pub bases: &'a [usize],
    /// Offset from the window's base of each run of contiguous window values.
    pub segments: &'a [usize],
    /// Groups of `GROUP` bytes per run (the run rounded up).
    pub groups: usize,
    /// Output channels.
    pub cout: usize,
    /// Packed weights: `[panels][segments * groups][NR][GROUP]`, zero beyond each run and
    /// beyond `cout`.
    pub panels: &'a [i8],
    /// Accumulator start values per output channel.
    pub init: &'a [i32],
    /// Per-channel weight shifts `q`, padded to whole panels, or empty when all zero.
    pub shifts: &'a [i32],
    /// Each output pixel's window sum `S` (empty with no shifts): `q * S` is added on store.
    pub sums: &'a [i32],
}

/// Whether this CPU has a byte dot-product instruction (otherwise the importer keeps the
/// multiply-add loop, which is faster than emulating it).
pub(super) fn native() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if (has!("avx512vnni") && has!("avx512f")) || (has!("avxvnni") && has!("avx2")) {
            return true;
        }
    }
    false
}

/// Runs the tile loop with the best instruction the CPU has.
pub(super) fn dispatch(job: &DotJob, out: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512vnni") && has!("avx512f") {
            // SAFETY: the CPU supports AVX-512F and AVX-512 VNNI, checked just above.
            #[allow(unsafe_code)]
            unsafe {
                x86::tiles_vnni512(job, out)
            };
            return;
        }
        if has!("avxvnni") && has!("avx2") {
            // SAFETY: the CPU supports AVX2 and AVX-VNNI, checked just above.
            #[allow(unsafe_code)]
            unsafe {
                x86::tiles_vnni256(job, out)
            };
            return;
        }
    }
    tiles::<Portable>(job, out)
}

/// Sixteen i32 accumulators, each summing four byte products per step.
trait DotLanes: Copy {
    /// A weight row held in registers.
    type Weights: Copy;
    /// Loads a weight row: lane `j` gets bytes `GROUP * j ..`.
    fn weights(row: &[i8; ROW]) -> Self::Weights;
    /// All lanes from an array.
    fn load(v: &[i32; NR]) -> Self;
    /// Every lane zero.
    fn zero() -> Self;
    /// Adds, in every lane `j`, the four products of the input bytes `x` (little-endian in
    /// the u32) with lane `j`'s weight bytes.
    fn dot(self, x: u32, w: Self::Weights) -> Self;
    /// Lane-wise wrapping sum.
    fn add(self, other: Self) -> Self;
    /// `self + q * s`, lane by lane, wrapping.
    fn add_scaled(self, q: &[i32; NR], s: i32) -> Self {
        let mut lanes = [0i32; NR];
        self.store(&mut lanes);
        for (l, &q) in lanes.iter_mut().zip(q) {
            *l = l.wrapping_add(q.wrapping_mul(s));
        }
        Self::load(&lanes)
    }
    /// Writes the lanes out.
    fn store(self, out: &mut [i32; NR]);
    /// Writes the first `out.len()` lanes (at most `NR`) and nothing past them.
    fn store_first(self, out: &mut [i32]) {
        let mut lanes = [0i32; NR];
        self.store(&mut lanes);
        for (o, l) in out.iter_mut().zip(lanes) {
            *o = l;
        }
    }
}

/// Plain arrays: any CPU (tests, and the reference for the vector forms).
#[derive(Clone, Copy)]
struct Portable([i32; NR]);

impl DotLanes for Portable {
    type Weights = [i8; ROW];
    #[inline(always)]
    fn weights(row: &[i8; ROW]) -> [i8; ROW] {
        *row
    }
    #[inline(always)]
    fn load(v: &[i32; NR]) -> Self {
        Portable(*v)
    }
    #[inline(always)]
    fn zero() -> Self {
        Portable([0; NR])
    }
    #[inline(always)]
    fn dot(self, x: u32, w: [i8; ROW]) -> Self {
        let x = x.to_le_bytes();
        let mut out = self.0;
        for (j, o) in out.iter_mut().enumerate() {
            let lane = &w[j * GROUP..][..GROUP];
            let sum: i32 = x.iter().zip(lane).map(|(&a, &b)| a as i32 * b as i32).sum();
            *o = o.wrapping_add(sum);
        }
        Portable(out)
    }
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        let mut out = self.0;
        for (o, v) in out.iter_mut().zip(other.0) {
            *o = o.wrapping_add(v);
        }
        Portable(out)
    }
    #[inline(always)]
    fn store(self, out: &mut [i32; NR]) {
        *out = self.0;
    }
}

/// All output tiles, in the order of [`visit`] (the same as the multiply-add loop's).
#[inline(always)]
fn tiles<V: DotLanes>(job: &DotJob, out: &mut [i32]) {
    let depth = job.segments.len() * job.groups * ROW;
    let panels = job.panels.chunks_exact(depth).collect();
    let lanes = PhantomData;
    visit(&DotTiles::<V> { job, panels, lanes }, out)
}

/// The byte loop over one job, with its weight panels split out.
struct DotTiles<'a, V> {
    job: &'a DotJob<'a>,
    panels: Vec<&'a [i8]>,
    lanes: PhantomData<V>,
}

impl<V: DotLanes> TileLoop for DotTiles<'_, V> {
    type Acc = V;
    type Weight = i8;
    type Out = i32;
    #[inline(always)]
    fn bases(&self) -> &[usize] {
        self.job.bases
    }
    #[inline(always)]
    fn panels(&self) -> &[&[i8]] {
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
        panels: [&[i8]; P],
        starts: [V; P],
    ) -> [[V; P]; M] {
        tile(self.job, bases, panels, starts)
    }
    #[inline(always)]
    fn store(&self, out: &mut [i32], p: usize, t: usize, acc: V) {
        store(self.job, out, p, t, acc)
    }
}

/// Start values of panel `t` (zero beyond the last channel).
#[inline(always)]
fn start<V: DotLanes>(job: &DotJob, t: usize) -> V {
    let c0 = t * NR;
    let mut s = [0i32; NR];
    let width = job.cout.saturating_sub(c0).min(NR);
    s[..width].copy_from_slice(&job.init[c0..c0 + width]);
    V::load(&s)
}

/// Writes panel `t` of pixel `p` (plus the shifts' window term), dropping the lanes beyond
/// the last channel.
#[inline(always)]
fn store<V: DotLanes>(job: &DotJob, out: &mut [i32], p: usize, t: usize, acc: V) {
    let c0 = t * NR;
    let acc = match job.shifts.get(c0..c0 + NR) {
        Some(q) => acc.add_scaled(q.try_into().unwrap_or_else(|_| unreachable!()), job.sums[p]),
        None => acc,
    };
    let width = (job.cout - c0).min(NR);
    let dst = &mut out[p * job.cout + c0..][..width];
    match <&mut [i32; NR]>::try_from(&mut *dst) {
        Ok(full) => acc.store(full),
        Err(_) => acc.store_first(dst),
    }
}

/// One tile: `M` pixels by `P` panels, even and odd groups in two accumulator sets. Runs are
/// read as pairs of groups (and pairs of weight rows) from slices of one known length, so the
/// inner loop has no bounds checks.
#[inline(always)]
fn tile<V: DotLanes, const M: usize, const P: usize>(
    job: &DotJob,
    bases: [usize; M],
    panels: [&[i8]; P],
    start: [V; P],
) -> [[V; P]; M] {
    let mut even = [start; M];
    let mut odd = [[V::zero(); P]; M];
    let groups = job.groups;
    let pairs = groups / 2;
    let block = groups * ROW;
    for (index, &offset) in job.segments.iter().enumerate() {
        let mut rows: [&[[u8; 2 * GROUP]]; M] = [&[]; M];
        let mut last = [0u32; M];
        for i in 0..M {
            let run = &job.xp[bases[i] + offset..][..groups * GROUP];
            let (two, rest) = run.as_chunks::<{ 2 * GROUP }>();
            rows[i] = &two[..pairs];
            if let Some(bytes) = rest.first_chunk::<GROUP>() {
                last[i] = u32::from_le_bytes(*bytes);
            }
        }
        let mut weights: [&[[i8; 2 * ROW]]; P] = [&[]; P];
        let mut last_w: [&[i8]; P] = [&[]; P];
        for q in 0..P {
            let (two, rest) = panels[q][index * block..][..block].as_chunks::<{ 2 * ROW }>();
            weights[q] = &two[..pairs];
            last_w[q] = rest;
        }
        for k in 0..pairs {
            let mut x0 = [0u32; M];
            let mut x1 = [0u32; M];
            for i in 0..M {
                let (a, b) = rows[i][k].split_at(GROUP);
                x0[i] = u32::from_le_bytes(group(a));
                x1[i] = u32::from_le_bytes(group(b));
            }
            for q in 0..P {
                let (a, b) = weights[q][k].split_at(ROW);
                let (w0, w1) = (V::weights(row(a)), V::weights(row(b)));
                for i in 0..M {
                    even[i][q] = even[i][q].dot(x0[i], w0);
                    odd[i][q] = odd[i][q].dot(x1[i], w1);
                }
            }
        }
        if groups % 2 == 1 {
            for q in 0..P {
                let w = V::weights(row(last_w[q]));
                for i in 0..M {
                    even[i][q] = even[i][q].dot(last[i], w);
                }
            }
        }
    }
    for i in 0..M {
        for q in 0..P {
            even[i][q] = even[i][q].add(odd[i][q]);
        }
    }
    even
}

/// A slice known to hold exactly one group of input bytes, as an array.
#[inline(always)]
fn group(bytes: &[u8]) -> [u8; GROUP] {
    // Callers pass exactly GROUP bytes, so the conversion cannot fail.
    bytes.try_into().unwrap_or_else(|_| unreachable!())
}

/// A slice known to hold exactly one weight row, as an array.
#[inline(always)]
fn row(w: &[i8]) -> &[i8; ROW] {
    // Callers pass exactly ROW bytes, so the conversion cannot fail.
    w.try_into().unwrap_or_else(|_| unreachable!())
}

/// The x86-64 dot-product units. The `unsafe` blocks are there because the intrinsics require
/// CPU features: these types are private to this module and only used by the two entry points,
/// whose callers check the features first.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use std::arch::x86_64::*;

    use super::{tiles, DotJob, DotLanes, NR, ROW};

    /// One AVX-512 register.
    #[derive(Clone, Copy)]
    struct Vnni512(__m512i);

    impl DotLanes for Vnni512 {
        type Weights = __m512i;
        #[inline(always)]
        fn weights(row: &[i8; ROW]) -> __m512i {
            // SAFETY: reads exactly the 64 bytes of `row`; only reached from `tiles_vnni512`.
            unsafe { _mm512_loadu_si512(row.as_ptr().cast()) }
        }
        #[inline(always)]
        fn load(v: &[i32; NR]) -> Self {
            // SAFETY: reads exactly the 16 lanes of `v`; only reached from `tiles_vnni512`.
            Vnni512(unsafe { _mm512_loadu_si512(v.as_ptr().cast()) })
        }
        #[inline(always)]
        fn zero() -> Self {
            // SAFETY: only reached from `tiles_vnni512`, which requires AVX-512F.
            Vnni512(unsafe { _mm512_setzero_si512() })
        }
        #[inline(always)]
        fn dot(self, x: u32, w: __m512i) -> Self {
            // SAFETY: only reached from `tiles_vnni512`, which requires AVX-512 VNNI.
            Vnni512(unsafe { _mm512_dpbusd_epi32(self.0, _mm512_set1_epi32(x as i32), w) })
        }
        #[inline(always)]
        fn add(self, other: Self) -> Self {
            // SAFETY: only reached from `tiles_vnni512`, which requires AVX-512F.
            Vnni512(unsafe { _mm512_add_epi32(self.0, other.0) })
        }
        #[inline(always)]
        fn add_scaled(self, q: &[i32; NR], s: i32) -> Self {
            // SAFETY: reads exactly the 16 lanes of `q`; only reached from `tiles_vnni512`,
            // which requires AVX-512F.
            unsafe {
                let q = _mm512_loadu_si512(q.as_ptr().cast());
                Vnni512(_mm512_add_epi32(
                    self.0,
                    _mm512_mullo_epi32(q, _mm512_set1_epi32(s)),
                ))
            }
        }
        #[inline(always)]
        fn store(self, out: &mut [i32; NR]) {
            // SAFETY: writes exactly the 16 lanes of `out`; only reached from `tiles_vnni512`.
            unsafe { _mm512_storeu_si512(out.as_mut_ptr().cast(), self.0) }
        }
        #[inline(always)]
        fn store_first(self, out: &mut [i32]) {
            let width = out.len().min(NR);
            let mask = ((1u32 << width) - 1) as __mmask16;
            // SAFETY: the mask writes only the first `width <= out.len()` lanes; only reached
            // from `tiles_vnni512`, which requires AVX-512F.
            unsafe { _mm512_mask_storeu_epi32(out.as_mut_ptr().cast(), mask, self.0) }
        }
    }

    /// Two AVX2 registers.
    #[derive(Clone, Copy)]
    struct Vnni256(__m256i, __m256i);

    impl DotLanes for Vnni256 {
        type Weights = (__m256i, __m256i);
        #[inline(always)]
        fn weights(row: &[i8; ROW]) -> (__m256i, __m256i) {
            // SAFETY: reads exactly the 64 bytes of `row`; only reached from `tiles_vnni256`.
            unsafe {
                (
                    _mm256_loadu_si256(row.as_ptr().cast()),
                    _mm256_loadu_si256(row[32..].as_ptr().cast()),
                )
            }
        }
        #[inline(always)]
        fn load(v: &[i32; NR]) -> Self {
            // SAFETY: reads exactly the 16 lanes of `v`; only reached from `tiles_vnni256`.
            unsafe {
                Vnni256(
                    _mm256_loadu_si256(v.as_ptr().cast()),
                    _mm256_loadu_si256(v[8..].as_ptr().cast()),
                )
            }
        }
        #[inline(always)]
        fn zero() -> Self {
            // SAFETY: only reached from `tiles_vnni256`, which requires AVX2.
            unsafe { Vnni256(_mm256_setzero_si256(), _mm256_setzero_si256()) }
        }
        #[inline(always)]
        fn dot(self, x: u32, w: (__m256i, __m256i)) -> Self {
            // SAFETY: only reached from `tiles_vnni256`, which requires AVX-VNNI.
            unsafe {
                let x = _mm256_set1_epi32(x as i32);
                Vnni256(
                    _mm256_dpbusd_avx_epi32(self.0, x, w.0),
                    _mm256_dpbusd_avx_epi32(self.1, x, w.1),
                )
            }
        }
        #[inline(always)]
        fn add(self, other: Self) -> Self {
            // SAFETY: only reached from `tiles_vnni256`, which requires AVX2.
            unsafe {
                Vnni256(
                    _mm256_add_epi32(self.0, other.0),
                    _mm256_add_epi32(self.1, other.1),
                )
            }
        }
        #[inline(always)]
        fn store(self, out: &mut [i32; NR]) {
            // SAFETY: writes exactly the 16 lanes of `out`; only reached from `tiles_vnni256`.
            unsafe {
                _mm256_storeu_si256(out.as_mut_ptr().cast(), self.0);
                _mm256_storeu_si256(out[8..].as_mut_ptr().cast(), self.1);
            }
        }
    }

    /// The tile loop on AVX-512 VNNI.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub(super) fn tiles_vnni512(job: &DotJob, out: &mut [i32]) {
        tiles::<Vnni512>(job, out)
    }

    /// The tile loop on AVX-VNNI.
    #[target_feature(enable = "avx2,avxvnni")]
    pub(super) fn tiles_vnni256(job: &DotJob, out: &mut [i32]) {
        tiles::<Vnni256>(job, out)
    }
}

/// A byte tile loop.
#[cfg(test)]
pub(super) type DotLoop = fn(&DotJob, &mut [i32]);

/// Every variant of the byte tile loop this CPU can run, by name, for tests that compare them
/// all (dispatch only ever exercises the widest).
#[cfg(test)]
#[allow(unsafe_code)]
pub(super) fn variants() -> Vec<(&'static str, DotLoop)> {
    let mut v: Vec<(&'static str, DotLoop)> =
        vec![("portable", |job, out| tiles::<Portable>(job, out))];
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avxvnni") && has!("avx2") {
            // SAFETY: the CPU supports AVX2 and AVX-VNNI, checked just above.
            v.push(("vnni256", |job, out| unsafe {
                x86::tiles_vnni256(job, out)
            }));
        }
        if has!("avx512vnni") && has!("avx512f") {
            // SAFETY: the CPU supports AVX-512F and AVX-512 VNNI, checked just above.
            v.push(("vnni512", |job, out| unsafe {
                x86::tiles_vnni512(job, out)
            }));
        }
    }
    v
}
