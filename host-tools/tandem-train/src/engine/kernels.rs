//! The arithmetic of the training engine on flat row-major `f32` buffers: a checked matrix
//! product over [`gemm`], im2col/col2im for convolutions, pooling and batch normalisation.

/// A matrix operand: its values and the strides of a row step and a column step.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    pub data: &'a [f32],
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> Mat<'a> {
    /// A row-major `rows × cols` matrix.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Self { data, row_stride: cols, col_stride: 1 }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        Self { data, row_stride: 1, col_stride: cols }
    }

    /// True if every element of a `rows × cols` view lies inside the buffer.
    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0
            || cols == 0
            || (rows - 1) * self.row_stride + (cols - 1) * self.col_stride < self.data.len()
    }
}

/// `dst = a × b` (or `dst += a × b` with `accumulate`), `a` is `m × k`, `b` is `k × n` and `dst`
/// row-major `m × n`. Single-threaded: the engine runs peers in parallel instead, and a fixed
/// order of operations keeps runs reproducible.
pub(crate) fn matmul(m: usize, n: usize, k: usize, dst: &mut [f32], a: Mat, b: Mat, accumulate: bool) {
    assert!(dst.len() >= m * n && a.fits(m, k) && b.fits(k, n), "matmul operands out of bounds");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    // SAFETY: the assertion above keeps every element the product reads or writes inside the
    // three slices; `dst` is borrowed mutably, so it aliases neither operand.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Geometry of a convolution over `[N, C, H, W]` (a 1-D one has `H = 1` and a `1 × k` kernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvGeometry {
    pub channels: usize,
    pub outputs: usize,
    pub groups: usize,
    pub height: usize,
    pub width: usize,
    pub kernel: (usize, usize),
    pub stride: (usize, usize),
    pub pad: (usize, usize),
}

impl ConvGeometry {
    pub fn out_height(&self) -> usize {
        (self.height + 2 * self.pad.0 - self.kernel.0) / self.stride.0 + 1
    }

    pub fn out_width(&self) -> usize {
        (self.width + 2 * self.pad.1 - self.kernel.1) / self.stride.1 + 1
    }

    /// Output positions per channel.
    pub fn positions(&self) -> usize {
        self.out_height() * self.out_width()
    }

    /// Rows of the column matrix: every input channel times every kernel tap.
    pub fn col_rows(&self) -> usize {
        self.channels * self.kernel.0 * self.kernel.1
    }

    /// The output columns `lo..hi` whose input column `ox · stride + j − pad` lies inside the
    /// row, for kernel column `j`.
    fn valid_columns(&self, j: usize) -> (usize, usize) {
        let (s, p, w) = (self.stride.1, self.pad.1, self.width);
        let lo = p.saturating_sub(j).div_ceil(s);
        let hi = if w + p > j { ((w + p - j - 1) / s + 1).min(self.out_width()) } else { 0 };
        (lo, hi.max(lo))
    }

    /// Every run of one column-matrix row that reads a strided run of one input row:
    /// `f(row, first position, first input offset, length)`, offsets within one sample; the
    /// input step is the horizontal stride. Positions on the padding belong to no run.
    fn for_each_run(&self, mut f: impl FnMut(usize, usize, usize, usize)) {
        let (oh, ow) = (self.out_height(), self.out_width());
        let (kh, kw) = self.kernel;
        for c in 0..self.channels {
            for i in 0..kh {
                for j in 0..kw {
                    let row = (c * kh + i) * kw + j;
                    let (lo, hi) = self.valid_columns(j);
                    if lo == hi {
                        continue;
                    }
                    for oy in 0..oh {
                        let Some(y) =
                            (oy * self.stride.0 + i).checked_sub(self.pad.0).filter(|&y| y < self.height)
                        else {
                            continue;
                        };
                        let x0 = lo * self.stride.1 + j - self.pad.1;
                        f(row, oy * ow + lo, (c * self.height + y) * self.width + x0, hi - lo);
                    }
                }
            }
        }
    }

    /// The column matrix `[col_rows, n · positions]` of a batch `[n, C, H, W]`.
    pub fn im2col(&self, x: &[f32], n: usize, cols: &mut Vec<f32>) {
        let (sample, p, step) = (self.channels * self.height * self.width, self.positions(), self.stride.1);
        let width = n * p;
        cols.clear();
        cols.resize(self.col_rows() * width, 0.0);
        for s in 0..n {
            let xs = &x[s * sample..(s + 1) * sample];
            self.for_each_run(|row, pos, from, len| {
                let dst = &mut cols[row * width + s * p + pos..][..len];
                if step == 1 {
                    dst.copy_from_slice(&xs[from..from + len]);
                } else {
                    dst.iter_mut().zip(xs[from..].iter().step_by(step)).for_each(|(d, v)| *d = *v);
                }
            });
        }
    }

    /// Adds a column matrix's gradient back onto the input gradient `[n, C, H, W]` (zeroed first).
    pub fn col2im(&self, cols: &[f32], n: usize, dx: &mut Vec<f32>) {
        let (sample, p, step) = (self.channels * self.height * self.width, self.positions(), self.stride.1);
        let width = n * p;
        dx.clear();
        dx.resize(n * sample, 0.0);
        for s in 0..n {
            let dxs = &mut dx[s * sample..(s + 1) * sample];
            self.for_each_run(|row, pos, from, len| {
                let src = &cols[row * width + s * p + pos..][..len];
                if step == 1 {
                    dxs[from..from + len].iter_mut().zip(src).for_each(|(d, v)| *d += v);
                } else {
                    dxs[from..].iter_mut().step_by(step).zip(src).for_each(|(d, v)| *d += v);
                }
            });
        }
    }
}

/// `[n, c, p]` → `[c, n · p]` (or back with `inverse`): channel-major for the convolution's product.
pub(crate) fn swap_batch_channels(
    src: &[f32],
    n: usize,
    c: usize,
    p: usize,
    inverse: bool,
    dst: &mut Vec<f32>,
) {
    dst.clear();
    dst.resize(n * c * p, 0.0);
    for s in 0..n {
        for ch in 0..c {
            let batch_major = (s * c + ch) * p;
            let channel_major = (ch * n + s) * p;
            let (from, to) =
                if inverse { (channel_major, batch_major) } else { (batch_major, channel_major) };
            dst[to..to + p].copy_from_slice(&src[from..from + p]);
        }
    }
}

/// 2×2 max pooling of `planes` planes of `h × w`; `argmax` receives the input index of each
/// output's maximum (the first, in row order, on ties).
pub(crate) fn max_pool2(
    x: &[f32],
    planes: usize,
    h: usize,
    w: usize,
    y: &mut Vec<f32>,
    argmax: &mut Vec<u32>,
) {
    let (oh, ow) = (h / 2, w / 2);
    y.resize(planes * oh * ow, 0.0);
    argmax.resize(planes * oh * ow, 0);
    let outputs = y.chunks_exact_mut(ow).zip(argmax.chunks_exact_mut(ow));
    for (row, (ys, args)) in outputs.enumerate() {
        let (plane, oy) = (row / oh, row % oh);
        let top = plane * h * w + 2 * oy * w;
        let (upper, lower) = (&x[top..top + 2 * ow], &x[top + w..top + w + 2 * ow]);
        let windows = upper.chunks_exact(2).zip(lower.chunks_exact(2));
        for (ox, ((u, l), (yv, at))) in windows.zip(ys.iter_mut().zip(args.iter_mut())).enumerate() {
            let (mut best, mut value) = (top + 2 * ox, u[0]);
            for (offset, v) in [(1, u[1]), (w, l[0]), (w + 1, l[1])] {
                if v > value {
                    (best, value) = (top + 2 * ox + offset, v);
                }
            }
            *yv = value;
            *at = best as u32;
        }
    }
}

/// Batch statistics of `[n, c, p]` per channel: `(mean, biased variance)`.
pub(crate) fn channel_moments(x: &[f32], n: usize, c: usize, p: usize) -> (Vec<f32>, Vec<f32>) {
    let count = (n * p) as f64;
    let mut mean = vec![0f64; c];
    for s in 0..n {
        for (ch, m) in mean.iter_mut().enumerate() {
            *m += x[(s * c + ch) * p..][..p].iter().map(|&v| v as f64).sum::<f64>();
        }
    }
    mean.iter_mut().for_each(|m| *m /= count);
    let mut var = vec![0f64; c];
    for s in 0..n {
        for (ch, v) in var.iter_mut().enumerate() {
            *v += x[(s * c + ch) * p..][..p].iter().map(|&x| (x as f64 - mean[ch]).powi(2)).sum::<f64>();
        }
    }
    let to_f32 = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect();
    (to_f32(mean), to_f32(var.into_iter().map(|v| v / count).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: Mat, b: Mat) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k)
                    .map(|t| {
                        a.data[i * a.row_stride + t * a.col_stride]
                            * b.data[t * b.row_stride + j * b.col_stride]
                    })
                    .sum();
            }
        }
        out
    }

    #[test]
    fn matmul_matches_the_definition_with_transposed_operands() {
        let a: Vec<f32> = (0..12).map(|v| v as f32 * 0.5 - 2.0).collect();
        let b: Vec<f32> = (0..20).map(|v| (v as f32).sin()).collect();
        // a as 3×4 and as the transpose of a 4×3; b as 4×5.
        for (am, bm) in [(Mat::rows(&a, 4), Mat::rows(&b, 5)), (Mat::transposed(&a, 3), Mat::rows(&b, 5))] {
            let mut dst = vec![1.0; 15];
            matmul(3, 5, 4, &mut dst, am, bm, false);
            let want = naive(3, 5, 4, am, bm);
            assert!(dst.iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-5), "{dst:?} vs {want:?}");
            matmul(3, 5, 4, &mut dst, am, bm, true);
            assert!(dst.iter().zip(&want).all(|(x, y)| (x - 2.0 * y).abs() < 1e-4));
        }
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn matmul_refuses_operands_too_short() {
        let mut dst = vec![0.0; 4];
        matmul(2, 2, 3, &mut dst, Mat::rows(&[0.0; 5], 3), Mat::rows(&[0.0; 6], 2), false);
    }

    /// The column matrix by its definition: `cols[(c, i, j), (s, oy, ox)] = x[s, c, oy·sh + i − ph,
    /// ox·sw + j − pw]`, zero on the padding.
    fn naive_im2col(g: &ConvGeometry, x: &[f32], n: usize) -> Vec<f32> {
        let (oh, ow) = (g.out_height() as isize, g.out_width() as isize);
        let (h, w) = (g.height as isize, g.width as isize);
        let mut cols = Vec::new();
        for c in 0..g.channels as isize {
            for i in 0..g.kernel.0 as isize {
                for j in 0..g.kernel.1 as isize {
                    for s in 0..n as isize {
                        for oy in 0..oh {
                            for ox in 0..ow {
                                let y = oy * g.stride.0 as isize + i - g.pad.0 as isize;
                                let xx = ox * g.stride.1 as isize + j - g.pad.1 as isize;
                                let inside = (0..h).contains(&y) && (0..w).contains(&xx);
                                let c_count = g.channels as isize;
                                cols.push(if inside {
                                    x[(((s * c_count + c) * h + y) * w + xx) as usize]
                                } else {
                                    0.0
                                });
                            }
                        }
                    }
                }
            }
        }
        cols
    }

    #[test]
    fn im2col_matches_its_definition_and_col2im_is_its_adjoint() {
        let n = 2;
        for (height, width, kernel, stride, pad) in [
            (5, 4, (3, 3), (2, 1), (1, 1)),
            (6, 7, (3, 3), (2, 2), (1, 1)),
            (1, 9, (1, 5), (1, 2), (0, 0)),
            (1, 8, (1, 5), (1, 1), (0, 2)),
            (4, 4, (1, 1), (1, 1), (0, 0)),
            (3, 3, (3, 3), (1, 1), (2, 2)),
        ] {
            let g = ConvGeometry { channels: 2, outputs: 3, groups: 1, height, width, kernel, stride, pad };
            let x: Vec<f32> = (0..n * 2 * height * width).map(|v| ((v * 7) % 11) as f32 - 5.0).collect();
            let mut cols = vec![9.0; 3];
            g.im2col(&x, n, &mut cols);
            assert_eq!(cols, naive_im2col(&g, &x, n), "{g:?}");
            // <im2col(x), c> = <x, col2im(c)> for any c: the backward pass is the true gradient.
            let c: Vec<f32> = (0..cols.len()).map(|v| ((v * 3) % 7) as f32 - 3.0).collect();
            let mut back = vec![9.0; 5];
            g.col2im(&c, n, &mut back);
            let lhs: f32 = cols.iter().zip(&c).map(|(a, b)| a * b).sum();
            let rhs: f32 = x.iter().zip(&back).map(|(a, b)| a * b).sum();
            assert_eq!(lhs, rhs, "{g:?}");
        }
    }

    #[test]
    fn max_pool_keeps_the_first_maximum() {
        let x = [1.0, 3.0, 3.0, 0.0, 2.0, 2.0, 2.0, 2.0];
        let (mut y, mut arg) = (Vec::new(), Vec::new());
        max_pool2(&x, 1, 2, 4, &mut y, &mut arg);
        assert_eq!(y, [3.0, 3.0]);
        assert_eq!(arg, [1, 2]);
    }
}
