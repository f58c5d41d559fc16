//! The backward pass of the native step: the forward pass's list in
//! reverse, every product `dY·Wᵀ` (the input's gradient) or `Xᵀ·dY` (the
//! weight's, added to the gradient buffer), every row kernel's backward
//! adding to the residual stream's gradient in place.

use cfmem_kernels::{MatRef, PackedA, Start, Triangle};

use super::attention::{self, Shape};
use super::products::{Packs, Products, Right, Weights, Which};
use super::rows;
use super::step::{Act, Workspace};
use crate::data::HostBatch;
use crate::error::{Error, Result};

impl Workspace {
    /// The backward pass of the last forward pass and [`Workspace::loss`]:
    /// the parameters' gradients, in [`Workspace::grads`].
    ///
    /// # Errors
    /// As the products; [`Error::NativeLayout`] for a workspace built
    /// without the backward pass's buffers.
    pub fn backward(&mut self, theta: &[f32], hb: &HostBatch) -> Result<()> {
        let Some(gr) = self.grads.as_mut() else {
            return Err(Error::NativeLayout(
                "an evaluation workspace has no backward pass".into(),
            ));
        };
        let threads = self.prod.threads;
        let cfg = &self.cfg;
        let (k, t) = (self.k, hb.t);
        let n = hb.batch * t;
        let (d, f, v) = (cfg.d_model, cfg.d_ff, cfg.vocab_size);
        let kn = k * n;
        let sl = &self.slots;
        let (p, w, packs) = (&self.prod, &self.weights, &mut self.packs);
        let tr = &mut self.transposed;
        gr.params.fill(0.0);
        let g = &mut gr.params;
        // The head.
        input_product(
            p,
            packs,
            w,
            theta,
            w.head(),
            &self.logits,
            &mut gr.da,
            (k, n, v, d),
        )?;
        weight_product(
            p,
            packs,
            tr,
            w,
            w.head(),
            Act::F32(&self.af),
            &self.logits,
            g,
            (k, n, d, v),
        )?;
        gr.dx[..kn * d].fill(0.0);
        {
            let (dg, db) = pair(g, sl.lnf_g.all(k), sl.lnf_b.all(k));
            rows::layer_norm_backward(
                threads,
                &self.xs[cfg.n_layer][..kn * d],
                &theta[sl.lnf_g.all(k)],
                &self.stf[..2 * kn],
                &gr.da[..kn * d],
                &mut gr.dx[..kn * d],
                (dg, db),
                (n, d),
            );
        }
        let shape = Shape {
            t,
            d,
            h: cfg.n_head,
            scale: 1.0 / ((d / cfg.n_head) as f32).sqrt(),
        };
        for (l, ls) in sl.layers.iter().enumerate().rev() {
            let a = &mut self.layers[l];
            let x_in = &self.xs[l][..kn * d];
            // x_{l+1} = r + b_proj + g·W_proj
            rows::col_sums(threads, &gr.dx[..kn * d], k, n, &mut g[ls.b_proj.all(k)]);
            weight_product(
                p,
                packs,
                tr,
                w,
                w.index(l, Which::Proj),
                a.g.get(),
                &gr.dx,
                g,
                (k, n, f, d),
            )?;
            input_product(
                p,
                packs,
                w,
                theta,
                w.index(l, Which::Proj),
                &gr.dx,
                &mut gr.dh,
                (k, n, d, f),
            )?;
            // g = gelu(h), h = b_fc + a2·W_fc
            rows::gelu_backward(threads, &a.h[..kn * f], &mut gr.dh[..kn * f], f);
            rows::col_sums(threads, &gr.dh[..kn * f], k, n, &mut g[ls.b_fc.all(k)]);
            weight_product(
                p,
                packs,
                tr,
                w,
                w.index(l, Which::Fc),
                a.a2.get(),
                &gr.dh,
                g,
                (k, n, d, f),
            )?;
            input_product(
                p,
                packs,
                w,
                theta,
                w.index(l, Which::Fc),
                &gr.dh,
                &mut gr.da,
                (k, n, f, d),
            )?;
            // a2 = LN2(r); the residual's gradient is dx plus LN2's.
            {
                let (dg, db) = pair(g, ls.ln2_g.all(k), ls.ln2_b.all(k));
                rows::layer_norm_backward(
                    threads,
                    &a.r[..kn * d],
                    &theta[ls.ln2_g.all(k)],
                    &a.st2[..2 * kn],
                    &gr.da[..kn * d],
                    &mut gr.dx[..kn * d],
                    (dg, db),
                    (n, d),
                );
            }
            // r = x + b_o + y·W_o
            rows::col_sums(threads, &gr.dx[..kn * d], k, n, &mut g[ls.b_o.all(k)]);
            weight_product(
                p,
                packs,
                tr,
                w,
                w.index(l, Which::O),
                Act::F32(&a.y),
                &gr.dx,
                g,
                (k, n, d, d),
            )?;
            input_product(
                p,
                packs,
                w,
                theta,
                w.index(l, Which::O),
                &gr.dx,
                &mut gr.dy,
                (k, n, d, d),
            )?;
            let windows = k * hb.batch;
            attention::backward(
                p,
                shape,
                &a.qkv[..kn * 3 * d],
                &gr.dy[..kn * d],
                &mut a.att[..windows * shape.h * t * t],
                &mut gr.dqkv[..kn * 3 * d],
            )?;
            // qkv = b_qkv + a1·W_qkv
            rows::col_sums(
                threads,
                &gr.dqkv[..kn * 3 * d],
                k,
                n,
                &mut g[ls.b_qkv.all(k)],
            );
            weight_product(
                p,
                packs,
                tr,
                w,
                w.index(l, Which::Qkv),
                a.a1.get(),
                &gr.dqkv,
                g,
                (k, n, d, 3 * d),
            )?;
            input_product(
                p,
                packs,
                w,
                theta,
                w.index(l, Which::Qkv),
                &gr.dqkv,
                &mut gr.da,
                (k, n, 3 * d, d),
            )?;
            // a1 = LN1(x)
            let (dg, db) = pair(g, ls.ln1_g.all(k), ls.ln1_b.all(k));
            rows::layer_norm_backward(
                threads,
                x_in,
                &theta[ls.ln1_g.all(k)],
                &a.st1[..2 * kn],
                &gr.da[..kn * d],
                &mut gr.dx[..kn * d],
                (dg, db),
                (n, d),
            );
        }
        let (dwte, dwpe) = pair(g, sl.wte.all(k), sl.wpe.all(k));
        rows::embed_backward(
            &gr.dx[..kn * d],
            &hb.ids,
            dwte,
            dwpe,
            (n, t, d),
            (v, cfg.ctx),
        );
        Ok(())
    }
}

/// `dx_m = dy_m · W_mᵀ` for every model (`dy` rows of `dout`, `dx` rows of
/// `din`).
#[allow(clippy::too_many_arguments)]
fn input_product(
    p: &Products,
    packs: &mut Packs,
    w: &Weights,
    theta: &[f32],
    i: usize,
    dy: &[f32],
    dx: &mut [f32],
    (k, n, dout, din): (usize, usize, usize, usize),
) -> Result<()> {
    for m in 0..k {
        let a = MatRef::row_major(&dy[m * n * dout..][..n * dout], n, dout)?;
        let b = w.right(theta, p, i, m, true)?;
        p.mul(a, b, &mut dx[m * n * din..][..n * din], din, false, packs)?;
    }
    Ok(())
}

/// The weight's gradient added to `grad`: `x_mᵀ · dy_m` for every model,
/// or `dy_mᵀ · x_m` for a matrix stored transposed (the tied head's `wte`).
#[allow(clippy::too_many_arguments)]
fn weight_product(
    p: &Products,
    packs: &mut Packs,
    transposed: &mut PackedA,
    w: &Weights,
    i: usize,
    x: Act<'_>,
    dy: &[f32],
    grad: &mut [f32],
    (k, n, din, dout): (usize, usize, usize, usize),
) -> Result<()> {
    let mat = w.matrices[i];
    for m in 0..k {
        let dym = MatRef::row_major(&dy[m * n * dout..][..n * dout], n, dout)?;
        let c = &mut grad[mat.slot.model(m)];
        if mat.transposed {
            let Act::F32(x) = x else {
                return Err(Error::NativeLayout(
                    "the head's input is kept in fp32".into(),
                ));
            };
            let xm = MatRef::row_major(&x[m * n * din..][..n * din], n, din)?;
            p.mul(dym.t(), Right::View(xm), c, din, true, packs)?;
        } else {
            let xt = x.transposed(m, n, din, transposed, p.threads)?;
            p.mul_part(
                xt,
                Right::View(dym),
                c,
                dout,
                Start::Acc,
                packs,
                Triangle::Full,
            )?;
        }
    }
    Ok(())
}

/// Two disjoint ranges of `v`, mutably.
fn pair(
    v: &mut [f32],
    a: std::ops::Range<usize>,
    b: std::ops::Range<usize>,
) -> (&mut [f32], &mut [f32]) {
    if a.start < b.start {
        let (x, y) = v.split_at_mut(b.start);
        (&mut x[a], &mut y[..b.end - b.start])
    } else {
        let (x, y) = v.split_at_mut(a.start);
        let (ya, _) = y.split_at_mut(a.end - a.start);
        (ya, &mut x[b])
    }
}
