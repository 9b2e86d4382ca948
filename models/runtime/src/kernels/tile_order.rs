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
    /// The output element.
    type Out;
    /// Offset of each output pixel's window in the input.
    fn bases(&self) -> &[usize];
    /// Number of weight panels.
    fn panels(&self) -> usize;
    /// Accumulates `M` pixels (window offsets `bases`) by the `P` panels from panel `t` on.
    fn tile<const M: usize, const P: usize>(
        &self,
        bases: [usize; M],
        t: usize,
    ) -> [[Self::Acc; P]; M];
    /// Writes panel `t` of pixel `p`.
    fn store(&self, out: &mut [Self::Out], p: usize, t: usize, acc: Self::Acc);
}

/// Runs every tile of `tl` into `out`.
#[inline(always)]
pub(super) fn visit<L: TileLoop>(tl: &L, out: &mut [L::Out]) {
    let pixels = tl.bases().len();
    let panels = tl.panels();
    let grouped = pixels - pixels % MR;
    for t in 0..panels {
        for p in (0..grouped).step_by(MR) {
            let mut bases = [0usize; MR];
            bases.copy_from_slice(&tl.bases()[p..p + MR]);
            let acc = tl.tile::<MR, 1>(bases, t);
            for (i, row) in acc.into_iter().enumerate() {
                tl.store(out, p + i, t, row[0]);
            }
        }
    }
    for p in grouped..pixels {
        let base = [tl.bases()[p]];
        let mut t = 0;
        while t + LONE_PANELS <= panels {
            let [acc] = tl.tile::<1, LONE_PANELS>(base, t);
            for (i, a) in acc.into_iter().enumerate() {
                tl.store(out, p, t + i, a);
            }
            t += LONE_PANELS;
        }
        for t in t..panels {
            let [[acc]] = tl.tile::<1, 1>(base, t);
            tl.store(out, p, t, acc);
        }
    }
}
