//! The order in which both tile loops ([`super::conv_tiles`] and [`super::dot_tiles`]) visit
//! output tiles: pixels in groups of `MR`, panel by panel (a panel stays in L1 across the
//! pixels); the remaining pixels one at a time over `LONE_PANELS` panels at once (a batch-1
//! FULLY_CONNECTED is all lone pixels), then over the last panels one by one.
//!
//! The loops plug in through [`TileLoop`], a trait rather than closures, so that everything
//! inlines into the callers compiled with CPU features (and the intrinsics with it).

/// Output pixels per tile: each weight load is used this many times.
pub(super) const MR: usize = 4;
/// Panels handled together for a lone pixel.
pub(super) const LONE_PANELS: usize = 4;

/// One tile loop, as the visiting order sees it.
pub(super) trait TileLoop {
    /// One panel's accumulators.
    type Acc: Copy;
    /// A packed weight element.
    type Weight;
    /// The output element.
    type Out;
    /// Offset of each output pixel's window in the input.
    fn bases(&self) -> &[usize];
    /// The packed weight panels.
    fn panels(&self) -> &[&[Self::Weight]];
    /// Start values of panel `t`.
    fn start(&self, t: usize) -> Self::Acc;
    /// Accumulates `M` pixels (window offsets `bases`) by `P` panels from their start values.
    fn tile<const M: usize, const P: usize>(
        &self,
        bases: [usize; M],
        panels: [&[Self::Weight]; P],
        starts: [Self::Acc; P],
    ) -> [[Self::Acc; P]; M];
    /// Writes panel `t` of pixel `p`.
    fn store(&self, out: &mut [Self::Out], p: usize, t: usize, acc: Self::Acc);
}

/// Runs the `M` pixels at `bases` by the `P` panels from panel `t` on.
#[inline(always)]
fn tile_at<L: TileLoop, const M: usize, const P: usize>(
    tl: &L,
    bases: [usize; M],
    t: usize,
) -> [[L::Acc; P]; M] {
    let mut panels: [&[L::Weight]; P] = [&[]; P];
    panels.copy_from_slice(&tl.panels()[t..t + P]);
    let mut starts = [tl.start(t); P];
    for (i, s) in starts.iter_mut().enumerate().skip(1) {
        *s = tl.start(t + i);
    }
    tl.tile(bases, panels, starts)
}

/// Runs every tile of `tl` into `out`.
#[inline(always)]
pub(super) fn visit<L: TileLoop>(tl: &L, out: &mut [L::Out]) {
    let pixels = tl.bases().len();
    let panels = tl.panels().len();
    let grouped = pixels - pixels % MR;
    for t in 0..panels {
        for p in (0..grouped).step_by(MR) {
            let mut bases = [0usize; MR];
            bases.copy_from_slice(&tl.bases()[p..p + MR]);
            let acc = tile_at::<L, MR, 1>(tl, bases, t);
            for (i, row) in acc.into_iter().enumerate() {
                tl.store(out, p + i, t, row[0]);
            }
        }
    }
    for p in grouped..pixels {
        let base = [tl.bases()[p]];
        let mut t = 0;
        while t + LONE_PANELS <= panels {
            let [acc] = tile_at::<L, 1, LONE_PANELS>(tl, base, t);
            for (i, a) in acc.into_iter().enumerate() {
                tl.store(out, p, t + i, a);
            }
            t += LONE_PANELS;
        }
        for t in t..panels {
            let [[acc]] = tile_at::<L, 1, 1>(tl, base, t);
            tl.store(out, p, t, acc);
        }
    }
}
