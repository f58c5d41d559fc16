//! The workspace of the native step: every buffer a forward and backward
//! pass of one ensemble shape needs, allocated once; the passes write into
//! them and gradients accumulate in place.
//!
//! ```text
//! x₀ = wte[ids] + wpe                        (embed)
//! per layer l:  a1 = LN1(x_l)                 (stats kept)
//!               qkv = b_qkv + a1·W_qkv
//!               y, P = attention(qkv)         (P kept)
//!               r = x_l + b_o + y·W_o
//!               a2 = LN2(r);  h = b_fc + a2·W_fc;  g = gelu(h)
//!               x_{l+1} = r + b_proj + g·W_proj
//! af = LN_f(x_L);  logits = af·W_head (wteᵀ when tied)
//! ```
//! The backward pass runs the same list in reverse; every product of it is
//! `dY·Wᵀ` (the input's gradient) or `Xᵀ·dY` (the weight's, added to the
//! gradient buffer).
//!
//! In bf16, `a1`, `a2` and `g` exist only as the bf16 pairs their row
//! kernels round them to (what `X·W` reads; `Xᵀ·dY` regroups the same
//! pairs), the biases of `qkv` and `h` start the products' accumulators,
//! and the weights are packed once per step: the products pay no packing
//! pass for them. fp32 and bf16 round the same fp32 values the same way
//! wherever they are packed, so where a value is rounded does not change a
//! record.

use cfmem_kernels::{MatRef, PackedA, Start, Triangle};

use super::attention::{self, Shape};
use super::layout::{Host, Slot, Slots};
use super::products::{Left, Packs, Products, Weights, Which};
use super::rows::{self, Out};
use super::Precision;
use crate::data::HostBatch;
use crate::error::{Error, Result};
use crate::model::ModelConfig;

/// An activation that is the left operand of a product (forward `X·W`,
/// backward `Xᵀ·dY`): fp32 rows, or in bf16 only the bf16 pairs its
/// producer rounds it to (half the memory, no packing pass).
#[derive(Debug)]
pub(super) enum Operand {
    F32(Vec<f32>),
    Pairs(PackedA),
}

/// A left operand's rows as they are kept: fp32, or bf16 pairs.
#[derive(Clone, Copy)]
pub(super) enum Act<'a> {
    F32(&'a [f32]),
    Pairs(&'a PackedA),
}

impl<'a> Act<'a> {
    /// Model `m`'s `n` rows of `c`, as the left operand of `X·W`.
    fn rows(self, m: usize, n: usize, c: usize) -> Result<Left<'a>> {
        Ok(match self {
            Act::F32(v) => Left::View(MatRef::row_major(&v[m * n * c..][..n * c], n, c)?),
            Act::Pairs(p) => Left::Rows(p, m * n..(m + 1) * n),
        })
    }

    /// Model `m`'s rows transposed, as the left operand of `Xᵀ·dY`
    /// (regrouped into `scratch` from bf16 pairs).
    pub(super) fn transposed(
        self,
        m: usize,
        n: usize,
        c: usize,
        scratch: &'a mut PackedA,
        threads: usize,
    ) -> Result<Left<'a>> {
        Ok(match self {
            Act::F32(v) => Left::View(MatRef::row_major(&v[m * n * c..][..n * c], n, c)?.t()),
            Act::Pairs(p) => {
                scratch.transpose_of(p, m * n..(m + 1) * n, threads)?;
                Left::Packed(scratch)
            }
        })
    }
}

impl Operand {
    fn new(precision: Precision, rows: usize, c: usize) -> Self {
        match precision {
            Precision::Bf16 => {
                let mut p = PackedA::empty();
                p.rows_for(rows, c);
                Operand::Pairs(p)
            }
            Precision::Fp32 => Operand::F32(vec![0f32; rows * c]),
        }
    }

    /// Where its producer writes `rows` rows of `c`.
    fn out(&mut self, rows: usize, c: usize) -> Out<'_> {
        match self {
            Operand::F32(v) => Out::F32(&mut v[..rows * c]),
            Operand::Pairs(p) => Out::Pairs(p.rows_for(rows, c)),
        }
    }

    /// The rows as they are kept.
    pub(super) fn get(&self) -> Act<'_> {
        match self {
            Operand::F32(v) => Act::F32(v),
            Operand::Pairs(p) => Act::Pairs(p),
        }
    }
}

/// One layer's kept activations, `[K, N, ·]`.
#[derive(Debug)]
pub(super) struct Acts {
    pub(super) a1: Operand,
    pub(super) st1: Vec<f32>,
    pub(super) qkv: Vec<f32>,
    pub(super) att: Vec<f32>,
    pub(super) y: Vec<f32>,
    pub(super) r: Vec<f32>,
    pub(super) a2: Operand,
    pub(super) st2: Vec<f32>,
    pub(super) h: Vec<f32>,
    pub(super) g: Operand,
}

impl Acts {
    fn new(rows: usize, windows: usize, cfg: &ModelConfig, precision: Precision) -> Self {
        let (d, f, t, h) = (cfg.d_model, cfg.d_ff, cfg.ctx, cfg.n_head);
        let z = |n: usize| vec![0f32; n];
        Self {
            a1: Operand::new(precision, rows, d),
            st1: z(rows * 2),
            qkv: z(rows * 3 * d),
            att: z(windows * h * t * t),
            y: z(rows * d),
            r: z(rows * d),
            a2: Operand::new(precision, rows, d),
            st2: z(rows * 2),
            h: z(rows * f),
            g: Operand::new(precision, rows, f),
        }
    }
}

/// The backward pass's buffers (training only).
#[derive(Debug, Default)]
pub(super) struct Grads {
    pub(super) dx: Vec<f32>,
    pub(super) da: Vec<f32>,
    pub(super) dqkv: Vec<f32>,
    pub(super) dy: Vec<f32>,
    pub(super) dh: Vec<f32>,
    /// The parameters' gradients, laid out as the parameters.
    pub(super) params: Vec<f32>,
}

/// What evaluation keeps per predicted position: the target's negative
/// log-likelihood, whether the argmax was right, and the mean and
/// deviation of `log p` (when asked for), model-major `[K, B·T]`.
#[derive(Debug, Default)]
pub(crate) struct Evaluated {
    rows: Vec<f32>,
    /// Positions per model (`B · T` of the batch).
    pub n: usize,
}

impl Evaluated {
    /// Row `i`'s negative log-likelihood, correctness, μ and σ.
    #[inline]
    pub fn row(&self, i: usize) -> (f32, bool, f32, f32) {
        let r = &self.rows[4 * i..4 * i + 4];
        (r[0], r[1] != 0.0, r[2], r[3])
    }
}

/// Buffers for an ensemble of `K` models on batches of up to `batch`
/// windows of up to `ctx` tokens: a forward pass, and (for training) the
/// loss and the backward pass.
#[derive(Debug)]
pub(crate) struct Workspace {
    pub(super) cfg: ModelConfig,
    pub(super) slots: Slots,
    pub(super) k: usize,
    pub(super) batch: usize,
    pub(super) prod: Products,
    pub(super) weights: Weights,
    pub(super) packs: Packs,
    /// An activation's transpose, regrouped from its bf16 pairs.
    pub(super) transposed: PackedA,
    /// The residual stream entering each layer and leaving the last
    /// (`L + 1`; evaluation keeps two, alternating).
    pub(super) xs: Vec<Vec<f32>>,
    /// Each layer's activations (evaluation keeps one set, reused).
    pub(super) layers: Vec<Acts>,
    pub(super) af: Vec<f32>,
    pub(super) stf: Vec<f32>,
    /// Logits, then (after [`Workspace::loss`]) their gradient.
    pub(super) logits: Vec<f32>,
    pub(super) nll: Vec<f32>,
    pub(super) grads: Option<Grads>,
    /// The shape of the last forward pass: windows and tokens per window.
    pub(super) last: (usize, usize),
}

impl Workspace {
    /// Buffers for `host`'s ensemble (shape `cfg`) on batches of up to
    /// `batch` windows; `train` adds the backward pass's.
    pub fn new(
        cfg: &ModelConfig,
        host: &Host,
        batch: usize,
        precision: Precision,
        train: bool,
    ) -> Self {
        let (k, d, f, v) = (host.k, cfg.d_model, cfg.d_ff, cfg.vocab_size);
        let rows = k * batch * cfg.ctx;
        let windows = k * batch;
        let z = |n: usize| vec![0f32; n];
        let n_sets = if train { cfg.n_layer } else { 1 };
        let n_xs = if train { cfg.n_layer + 1 } else { 2 };
        Self {
            cfg: cfg.clone(),
            slots: host.slots.clone(),
            k,
            batch,
            prod: Products::new(precision, 1),
            weights: Weights::new(&host.slots, k, d, f, v),
            packs: Packs::new(),
            transposed: PackedA::empty(),
            xs: (0..n_xs).map(|_| z(rows * d)).collect(),
            layers: (0..n_sets)
                .map(|_| Acts::new(rows, windows, cfg, precision))
                .collect(),
            af: z(rows * d),
            stf: z(rows * 2),
            logits: z(rows * v),
            nll: z(rows),
            grads: train.then(|| Grads {
                dx: z(rows * d),
                da: z(rows * d),
                dqkv: z(rows * 3 * d),
                dy: z(rows * d),
                dh: z(rows * f),
                params: z(host.slots.total),
            }),
            last: (0, 0),
        }
    }

    /// Take new weights: packed once here for bf16 products (call after
    /// every update, before [`Workspace::forward`]).
    ///
    /// # Errors
    /// As the products.
    pub fn load(&mut self, theta: &[f32]) -> Result<()> {
        self.prod.threads = rayon::current_num_threads();
        self.weights.load(theta, &self.prod)
    }

    /// The first `rows · V` logits of the last forward pass.
    pub fn logits(&self, rows: usize) -> &[f32] {
        &self.logits[..rows * self.cfg.vocab_size]
    }

    /// The gradients of the last [`Workspace::backward`], laid out as the
    /// parameters.
    pub fn grads(&self) -> &[f32] {
        self.grads.as_ref().map_or(&[], |g| &g.params)
    }

    fn check(&self, hb: &HostBatch, theta: &[f32]) -> Result<()> {
        let cfg = &self.cfg;
        if hb.k != self.k || hb.batch > self.batch || hb.t > cfg.ctx || hb.t == 0 {
            return Err(Error::InputShape {
                shape: [hb.k, hb.batch, hb.t],
                k: self.k,
                ctx: cfg.ctx,
            });
        }
        if let Some(&bad) = hb
            .ids
            .iter()
            .chain(&hb.targets)
            .find(|&&i| i as usize >= cfg.vocab_size)
        {
            return Err(Error::TokenOutOfVocabulary {
                id: bad,
                vocab_size: cfg.vocab_size,
            });
        }
        if theta.len() != self.slots.total {
            return Err(Error::NativeLayout(format!(
                "{} parameters given, {} expected",
                theta.len(),
                self.slots.total
            )));
        }
        Ok(())
    }

    /// The forward pass of `hb` under the weights `theta` (packed by the
    /// last [`Workspace::load`]): logits, and every activation the
    /// backward pass needs.
    ///
    /// # Errors
    /// [`Error::InputShape`] for a batch that does not fit,
    /// [`Error::TokenOutOfVocabulary`] for an id outside the vocabulary.
    pub fn forward(&mut self, theta: &[f32], hb: &HostBatch) -> Result<()> {
        self.check(hb, theta)?;
        let threads = rayon::current_num_threads();
        self.prod.threads = threads;
        let cfg = &self.cfg;
        let (k, t) = (self.k, hb.t);
        let n = hb.batch * t;
        let (d, f, v) = (cfg.d_model, cfg.d_ff, cfg.vocab_size);
        let kn = k * n;
        let sl = &self.slots;
        let train = self.grads.is_some();
        rows::embed(
            threads,
            &theta[sl.wte.all(k)],
            &theta[sl.wpe.all(k)],
            &hb.ids,
            &mut self.xs[0][..kn * d],
            (n, t, d),
            (v, cfg.ctx),
        );
        let shape = Shape {
            t,
            d,
            h: cfg.n_head,
            scale: 1.0 / ((d / cfg.n_head) as f32).sqrt(),
        };
        let p = &self.prod;
        let w = &self.weights;
        let packs = &mut self.packs;
        for (l, ls) in sl.layers.iter().enumerate() {
            let (xi, xo) = if train {
                (l, l + 1)
            } else {
                (l % 2, (l + 1) % 2)
            };
            let (x_in, x_out) = two(&mut self.xs, xi, xo);
            let (x_in, x_out) = (&x_in[..kn * d], &mut x_out[..kn * d]);
            let a = &mut self.layers[if train { l } else { 0 }];
            let ln = |s: Slot| &theta[s.all(k)];
            rows::layer_norm(
                threads,
                x_in,
                ln(ls.ln1_g),
                ln(ls.ln1_b),
                a.a1.out(kn, d),
                &mut a.st1[..2 * kn],
                (n, d),
            );
            forward_product(
                p,
                packs,
                w,
                theta,
                w.index(l, Which::Qkv),
                a.a1.get(),
                &mut a.qkv,
                (k, n, d, 3 * d),
                Some(ln(ls.b_qkv)),
            )?;
            let windows = k * hb.batch;
            attention::forward(
                p,
                shape,
                &a.qkv[..kn * 3 * d],
                &mut a.y[..kn * d],
                &mut a.att[..windows * shape.h * t * t],
            )?;
            rows::residual_bias(threads, &mut a.r[..kn * d], x_in, ln(ls.b_o), (n, d));
            forward_product(
                p,
                packs,
                w,
                theta,
                w.index(l, Which::O),
                Act::F32(&a.y),
                &mut a.r,
                (k, n, d, d),
                None,
            )?;
            rows::layer_norm(
                threads,
                &a.r[..kn * d],
                ln(ls.ln2_g),
                ln(ls.ln2_b),
                a.a2.out(kn, d),
                &mut a.st2[..2 * kn],
                (n, d),
            );
            forward_product(
                p,
                packs,
                w,
                theta,
                w.index(l, Which::Fc),
                a.a2.get(),
                &mut a.h,
                (k, n, d, f),
                Some(ln(ls.b_fc)),
            )?;
            rows::gelu_rows(threads, &a.h[..kn * f], a.g.out(kn, f), f);
            rows::residual_bias(threads, x_out, &a.r[..kn * d], ln(ls.b_proj), (n, d));
            forward_product(
                p,
                packs,
                w,
                theta,
                w.index(l, Which::Proj),
                a.g.get(),
                x_out,
                (k, n, f, d),
                None,
            )?;
        }
        let last = if train { cfg.n_layer } else { cfg.n_layer % 2 };
        rows::layer_norm(
            threads,
            &self.xs[last][..kn * d],
            &theta[sl.lnf_g.all(k)],
            &theta[sl.lnf_b.all(k)],
            Out::F32(&mut self.af[..kn * d]),
            &mut self.stf[..2 * kn],
            (n, d),
        );
        forward_product(
            p,
            packs,
            w,
            theta,
            w.head(),
            Act::F32(&self.af),
            &mut self.logits,
            (k, n, d, v),
            Some(&[]),
        )?;
        self.last = (hb.batch, t);
        Ok(())
    }

    /// Each model's mean token loss on the last forward pass's batch, and
    /// the logits turned into the gradient of the sum of those losses.
    pub fn loss(&mut self, hb: &HostBatch) -> Vec<f32> {
        let threads = rayon::current_num_threads();
        let (k, n, v) = (self.k, hb.batch * hb.t, self.cfg.vocab_size);
        rows::loss_backward(
            threads,
            &mut self.logits[..k * n * v],
            &mut self.nll[..k * n],
            &hb.targets,
            &hb.mask,
            &hb.counts,
            (n, v),
        );
        (0..k)
            .map(|m| {
                let s: f64 = self.nll[m * n..(m + 1) * n]
                    .iter()
                    .map(|&x| f64::from(x))
                    .sum();
                (s / f64::from(hb.counts[m].max(1.0))) as f32
            })
            .collect()
    }

    /// Evaluation rows of the last forward pass (`moments`: also μ and σ).
    pub fn evaluate(&mut self, hb: &HostBatch, moments: bool, out: &mut Evaluated) {
        let threads = rayon::current_num_threads();
        let (k, n, v) = (self.k, hb.batch * hb.t, self.cfg.vocab_size);
        out.rows.resize(4 * k * n, 0.0);
        rows::eval_rows(
            threads,
            &self.logits[..k * n * v],
            &hb.targets,
            &mut out.rows[..4 * k * n],
            v,
            moments,
        );
        out.n = n;
    }
}

/// `c_m = bias_m + x_m · W_m` for every model `m` (`x` rows of `din`, `c`
/// rows of `dout`, `n` rows per model, `bias` `K · dout` values); without
/// a bias `c_m += x_m · W_m` (`c` holds the residual and its bias), and
/// with an empty one `c_m = x_m · W_m`.
#[allow(clippy::too_many_arguments)]
fn forward_product(
    p: &Products,
    packs: &mut Packs,
    w: &Weights,
    theta: &[f32],
    i: usize,
    x: Act<'_>,
    c: &mut [f32],
    (k, n, din, dout): (usize, usize, usize, usize),
    bias: Option<&[f32]>,
) -> Result<()> {
    for m in 0..k {
        let b = w.right(theta, p, i, m, false)?;
        let c = &mut c[m * n * dout..][..n * dout];
        let start = match bias {
            Some([]) => Start::Zero,
            Some(v) => Start::Bias(&v[m * dout..][..dout]),
            None => Start::Acc,
        };
        p.mul_part(x.rows(m, n, din)?, b, c, dout, start, packs, Triangle::Full)?;
    }
    Ok(())
}

/// Two distinct elements of `v`, mutably.
fn two<T>(v: &mut [T], i: usize, j: usize) -> (&mut T, &mut T) {
    debug_assert_ne!(i, j);
    if i < j {
        let (a, b) = v.split_at_mut(j);
        (&mut a[i], &mut b[0])
    } else {
        let (a, b) = v.split_at_mut(i);
        (&mut b[0], &mut a[j])
    }
}
