//! The bf16 products against an f64 reference over the bf16-rounded
//! inputs, over shapes that are not multiples of the tiles, strided and
//! transposed views, accumulation, threads, and the two engines.

use cfmem_kernels::{
    gemm, gemm_part, gemm_rows, matmul_bf16, matmul_f32, round_bf16, to_pairs, Engine, Error,
    MatRef, PackedA, PackedB, Start, Triangle,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.gen_range(-2.0f32..2.0)).collect()
}

/// `A·B` in f64 over the bf16-rounded inputs, and `Σ |a||b|` per element.
fn reference(a: MatRef<'_>, b: MatRef<'_>) -> (Vec<f64>, Vec<f64>) {
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    let mut c = vec![0.0; m * n];
    let mut s = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            for p in 0..k {
                let x = f64::from(round_bf16(a.at(i, p))) * f64::from(round_bf16(b.at(p, j)));
                c[i * n + j] += x;
                s[i * n + j] += x.abs();
            }
        }
    }
    (c, s)
}

/// Every element within the fp32 summation bound `k · 2⁻²³ · Σ |a||b|`
/// of the reference (the products themselves are exact).
fn check(c: &[f32], ldc: usize, n: usize, k: usize, want: &(Vec<f64>, Vec<f64>)) {
    for (e, (&w, &s)) in want.0.iter().zip(&want.1).enumerate() {
        let (i, j) = (e / n, e % n);
        let got = f64::from(c[i * ldc + j]);
        let tol = (k.max(1) as f64) * f64::from(f32::EPSILON) * s + 1e-30;
        assert!(
            (got - w).abs() <= tol,
            "({i}, {j}): {got} vs {w} (tol {tol})"
        );
    }
}

const SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (1, 2, 1),
    (13, 7, 33),
    (12, 1, 32),
    (11, 3, 31),
    (25, 129, 65),
    (7, 300, 17),
    (30, 9, 1100),
];

#[test]
fn products_match_the_reference_over_odd_shapes() {
    for (s, &(m, k, n)) in SHAPES.iter().enumerate() {
        let a = random(m * k, 2 * s as u64);
        let b = random(k * n, 2 * s as u64 + 1);
        let (a, b) = (
            MatRef::row_major(&a, m, k).unwrap(),
            MatRef::row_major(&b, k, n).unwrap(),
        );
        let want = reference(a, b);
        let mut c = vec![f32::NAN; m * n];
        matmul_bf16(a, b, &mut c, n, false, 1).unwrap();
        check(&c, n, n, k, &want);
    }
}

#[test]
fn strided_and_transposed_views_and_a_wider_output() {
    // A as the transpose of a k × m row-major matrix, B with rows padded
    // to a stride of n + 5, C with a leading dimension of n + 3 whose
    // padding is left as it was.
    let (m, k, n) = (19, 37, 45);
    let at = random(k * m, 7);
    let bp = random(k * (n + 5), 8);
    let a = MatRef::row_major(&at, k, m).unwrap().t();
    let b = MatRef::new(&bp, k, n, n + 5, 1).unwrap();
    let want = reference(a, b);
    let ldc = n + 3;
    let mut c = vec![-7.0f32; (m - 1) * ldc + n + 3];
    matmul_bf16(a, b, &mut c, ldc, false, 1).unwrap();
    check(&c, ldc, n, k, &want);
    for i in 0..m {
        assert!(c[i * ldc + n..i * ldc + n + 3].iter().all(|&x| x == -7.0));
    }
    // B·Aᵀ as well: a column-major B (a transposed view).
    let bt = b.t();
    let at_view = a.t();
    let want = reference(bt, at_view);
    let mut c2 = vec![0.0f32; n * m];
    matmul_bf16(bt, at_view, &mut c2, m, false, 1).unwrap();
    check(&c2, m, m, k, &want);
}

#[test]
fn accumulation_adds_to_what_is_there() {
    let (m, k, n) = (14, 260, 40);
    let a = random(m * k, 11);
    let b = random(k * n, 12);
    let (a, b) = (
        MatRef::row_major(&a, m, k).unwrap(),
        MatRef::row_major(&b, k, n).unwrap(),
    );
    let (mut want, s) = reference(a, b);
    let c0 = random(m * n, 13);
    for (w, &x) in want.iter_mut().zip(&c0) {
        *w += f64::from(x);
    }
    let mut c = c0.clone();
    matmul_bf16(a, b, &mut c, n, true, 1).unwrap();
    let s: Vec<f64> = s
        .iter()
        .zip(&c0)
        .map(|(s, &x)| s + f64::from(x).abs())
        .collect();
    check(&c, n, n, k + 1, &(want, s));
    // k = 0: C = 0, or unchanged when accumulating.
    let empty: [f32; 0] = [];
    let (a0, b0) = (
        MatRef::row_major(&empty, 3, 0).unwrap(),
        MatRef::row_major(&empty, 0, 2).unwrap(),
    );
    let mut z = vec![5.0f32; 6];
    matmul_bf16(a0, b0, &mut z, 2, true, 1).unwrap();
    assert_eq!(z, [5.0; 6]);
    matmul_bf16(a0, b0, &mut z, 2, false, 1).unwrap();
    assert_eq!(z, [0.0; 6]);
}

#[test]
fn engines_and_thread_counts_agree_bit_for_bit() {
    // The portable engine adds the same products in vdpbf16ps's order, so
    // on normal numbers the two give the same bits; threads split rows,
    // which changes no sum.
    let (m, k, n) = (53, 301, 70);
    let a = random(m * k, 21);
    let b = random(k * n, 22);
    let pa = PackedA::pack(MatRef::row_major(&a, m, k).unwrap());
    let pb = PackedB::pack(MatRef::row_major(&b, k, n).unwrap());
    let run = |engine, threads| {
        let mut c = vec![0.0f32; m * n];
        gemm(engine, &pa, &pb, &mut c, n, false, threads).unwrap();
        c
    };
    let portable = run(Engine::Portable, 1);
    assert_eq!(portable, run(Engine::Portable, 2));
    if Engine::Avx512Bf16.available() {
        let fast = run(Engine::Avx512Bf16, 1);
        let same = fast
            .iter()
            .zip(&portable)
            .filter(|(x, y)| x.to_bits() == y.to_bits())
            .count();
        assert_eq!(same, m * n, "{same} of {} elements agree", m * n);
        assert_eq!(fast, run(Engine::Avx512Bf16, 2));
    } else {
        eprintln!("AVX512-BF16 not on this CPU: the portable engine only");
    }
}

#[test]
fn bad_shapes_are_errors_not_panics() {
    let x = [0.0f32; 6];
    assert!(matches!(
        MatRef::new(&x, 2, 3, 4, 1),
        Err(Error::OutOfBounds {
            need: 7,
            len: 6,
            ..
        })
    ));
    assert!(MatRef::new(&x, 2, 3, 3, 1).is_ok());
    assert!(MatRef::new(&x, 3, 2, usize::MAX, 1).is_err());
    let a = MatRef::row_major(&x, 2, 3).unwrap();
    let mut c = [0.0f32; 4];
    let err = matmul_bf16(a, a, &mut c, 2, false, 1).unwrap_err();
    assert!(matches!(err, Error::Inner { k: 3, kb: 2, .. }), "{err}");
    let err = matmul_bf16(a, a.t(), &mut c[..3], 2, false, 1).unwrap_err();
    assert!(err.to_string().contains("needs 4 elements, has 3"), "{err}");
    let err = matmul_bf16(a, a.t(), &mut c, 1, false, 1).unwrap_err();
    assert!(matches!(err, Error::Output { ldc: 1, .. }), "{err}");
    if !Engine::Avx512Bf16.available() {
        let pa = PackedA::pack(a);
        let pb = PackedB::pack(a.t());
        let err = gemm(Engine::Avx512Bf16, &pa, &pb, &mut c, 2, false, 1).unwrap_err();
        assert_eq!(err, Error::Unavailable("avx512-bf16"));
    }
}

#[test]
fn exact_on_numbers_bf16_holds() {
    // Small integers are bf16 numbers and their sums are exact in f32.
    let (m, k, n) = (5, 6, 34);
    let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 - 3.0).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 - 2.0).collect();
    let mut c = vec![0.0f32; m * n];
    let (av, bv) = (
        MatRef::row_major(&a, m, k).unwrap(),
        MatRef::row_major(&b, k, n).unwrap(),
    );
    matmul_bf16(av, bv, &mut c, n, false, 1).unwrap();
    for i in 0..m {
        for j in 0..n {
            let want: f32 = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            assert_eq!(c[i * n + j], want, "({i}, {j})");
        }
    }
}

/// `A·B` in f64 over the fp32 inputs, and `Σ |a||b|` per element.
fn reference_f32(a: MatRef<'_>, b: MatRef<'_>) -> (Vec<f64>, Vec<f64>) {
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    let mut c = vec![0.0; m * n];
    let mut s = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            for p in 0..k {
                let x = f64::from(a.at(i, p)) * f64::from(b.at(p, j));
                c[i * n + j] += x;
                s[i * n + j] += x.abs();
            }
        }
    }
    (c, s)
}

#[test]
fn fp32_products_match_the_reference_in_every_layout() {
    // Row-major, transposed and strided operands, a wider C, accumulation,
    // and two threads (the same bits as one).
    for (s, &(m, k, n)) in SHAPES.iter().enumerate() {
        let a = random(m * k, 40 + s as u64);
        let at: Vec<f32> = (0..m * k).map(|i| a[(i % m) * k + i / m]).collect();
        let b = random(k * (n + 2), 60 + s as u64);
        let views = [
            MatRef::row_major(&a, m, k).unwrap(),
            MatRef::row_major(&at, k, m).unwrap().t(),
        ];
        let bv = MatRef::new(&b, k, n, n + 2, 1).unwrap();
        for av in views {
            let want = reference_f32(av, bv);
            let ldc = n + 1;
            let c0 = random((m - 1) * ldc + n, 80 + s as u64);
            let mut c = c0.clone();
            matmul_f32(av, bv, &mut c, ldc, false, 1).unwrap();
            // fp32 products are rounded too: twice the summation bound.
            check(&c, ldc, n, 2 * k, &want);
            let mut c2 = c0.clone();
            matmul_f32(av, bv, &mut c2, ldc, false, 2).unwrap();
            assert_eq!(c, c2, "threads change the bits at {m}×{k}×{n}");
            let mut acc = c0.clone();
            matmul_f32(av, bv, &mut acc, ldc, true, 1).unwrap();
            for i in 0..m {
                for j in 0..n {
                    let (got, base) = (acc[i * ldc + j], c0[i * ldc + j]);
                    let want = f64::from(c[i * ldc + j]) + f64::from(base);
                    let tol = 1e-5 * (want.abs() + f64::from(base.abs()) + 1.0);
                    assert!((f64::from(got) - want).abs() <= tol, "({i}, {j})");
                }
            }
        }
    }
    let x = [0.0f32; 6];
    let a = MatRef::row_major(&x, 2, 3).unwrap();
    let mut c = [0.0f32; 4];
    assert!(matches!(
        matmul_f32(a, a, &mut c, 2, false, 1),
        Err(Error::Inner { .. })
    ));
    assert!(matches!(
        matmul_f32(a, a.t(), &mut c[..3], 2, false, 1),
        Err(Error::Output { .. })
    ));
}

#[test]
fn packing_into_a_used_buffer_gives_a_fresh_pack() {
    // A buffer that held a larger matrix (with other values in its pads)
    // packs a smaller one as a fresh buffer does, in every layout and on
    // two threads.
    let big = random(61 * 77, 90);
    let (m, k) = (29, 13);
    let x = random(m * k, 91);
    let xt: Vec<f32> = (0..m * k).map(|i| x[(i % m) * k + i / m]).collect();
    let views = [
        MatRef::row_major(&x, m, k).unwrap(),
        MatRef::row_major(&xt, k, m).unwrap().t(),
    ];
    for v in views {
        let fresh_a = PackedA::pack(v);
        let fresh_b = PackedB::pack(v.t());
        for threads in [1, 2, 3] {
            let mut pa = PackedA::pack(MatRef::row_major(&big, 61, 77).unwrap());
            pa.pack_into(v, threads);
            let mut pb = PackedB::pack(MatRef::row_major(&big, 61, 77).unwrap());
            pb.pack_into(v.t(), threads);
            // Compared through products with an identity-like operand:
            // the packs must multiply the same.
            let eye: Vec<f32> = (0..k * k).map(|i| f32::from(i % (k + 1) == 0)).collect();
            let eye = PackedB::pack(MatRef::row_major(&eye, k, k).unwrap());
            let eye_a: Vec<f32> = (0..k * k).map(|i| f32::from(i % (k + 1) == 0)).collect();
            let eye_a = PackedA::pack(MatRef::row_major(&eye_a, k, k).unwrap());
            let run_a = |p: &PackedA| {
                let mut c = vec![0.0f32; m * k];
                gemm(Engine::Portable, p, &eye, &mut c, k, false, 1).unwrap();
                c
            };
            let run_b = |p: &PackedB| {
                let mut c = vec![0.0f32; k * m];
                gemm(Engine::Portable, &eye_a, p, &mut c, m, false, 1).unwrap();
                c
            };
            assert_eq!(run_a(&pa), run_a(&fresh_a), "A, {threads} threads");
            assert_eq!(run_b(&pb), run_b(&fresh_b), "B, {threads} threads");
            assert_eq!((pa.rows(), pa.depth()), (m, k));
            assert_eq!((pb.cols(), pb.depth()), (m, k));
        }
    }
}

#[test]
fn triangular_parts_equal_the_full_product_where_they_matter() {
    // Square causal matrices as attention has them, sizes around the
    // tiles, both layouts of A, both engines, one and two threads.
    let engines: Vec<Engine> = [Engine::Portable, Engine::Avx512Bf16]
        .into_iter()
        .filter(|e| e.available())
        .collect();
    for (s, &t) in [1usize, 5, 12, 13, 37, 64, 100].iter().enumerate() {
        let x = random(t * t, 200 + s as u64);
        let lower: Vec<f32> = (0..t * t)
            .map(|e| if e % t <= e / t { x[e] } else { 0.0 })
            .collect();
        let upper: Vec<f32> = (0..t * t)
            .map(|e| if e % t >= e / t { x[e] } else { 0.0 })
            .collect();
        let b = random(t * 33, 300 + s as u64);
        let pb = PackedB::pack(MatRef::row_major(&b, t, 33).unwrap());
        for &engine in &engines {
            for threads in [1, 2] {
                let full = |pa: &PackedA| {
                    let mut c = vec![0.0f32; t * 33];
                    gemm(engine, pa, &pb, &mut c, 33, false, threads).unwrap();
                    c
                };
                for (tri, a) in [(Triangle::LowerA, &lower), (Triangle::UpperA, &upper)] {
                    let rows = MatRef::row_major(a, t, t).unwrap();
                    // The same matrix as the transpose of its transpose:
                    // the panels layout.
                    let at: Vec<f32> = (0..t * t).map(|e| a[(e % t) * t + e / t]).collect();
                    let panels = MatRef::row_major(&at, t, t).unwrap().t();
                    for view in [rows, panels] {
                        let pa = PackedA::pack(view);
                        let want = full(&pa);
                        for acc in [false, true] {
                            let mut c = if acc {
                                vec![1.5f32; t * 33]
                            } else {
                                vec![f32::NAN; t * 33]
                            };
                            gemm_part(engine, &pa, &pb, &mut c, 33, acc, threads, tri).unwrap();
                            for (e, (&got, &w)) in c.iter().zip(&want).enumerate() {
                                let w = if acc { w + 1.5 } else { w };
                                let tol = if acc { 1e-5 * (w.abs() + 1.0) } else { 0.0 };
                                assert!(
                                    (got - w).abs() <= tol,
                                    "{tri:?} t={t} {engine} acc={acc} at {e}: {got} vs {w}"
                                );
                            }
                        }
                    }
                }
                // Only the lower triangle of a square C wanted: tiles above
                // the diagonal are left as they were.
                let q = random(t * 9, 400 + s as u64);
                let kt = random(9 * t, 500 + s as u64);
                let pa = PackedA::pack(MatRef::row_major(&q, t, 9).unwrap());
                let pk = PackedB::pack(MatRef::row_major(&kt, 9, t).unwrap());
                let mut want = vec![0.0f32; t * t];
                gemm(engine, &pa, &pk, &mut want, t, false, threads).unwrap();
                let mut c = vec![-9.0f32; t * t];
                gemm_part(
                    engine,
                    &pa,
                    &pk,
                    &mut c,
                    t,
                    false,
                    threads,
                    Triangle::LowerC,
                )
                .unwrap();
                for i in 0..t {
                    for j in 0..t {
                        let e = i * t + j;
                        if j <= i {
                            assert_eq!(c[e], want[e], "LowerC t={t} ({i}, {j})");
                        } else if (j / 32) * 32 > (i / 12) * 12 + 11 {
                            assert_eq!(c[e], -9.0, "LowerC t={t} ({i}, {j}) was written");
                        }
                    }
                }
            }
        }
    }
}

/// `x` (`m × k`, row-major) in the rows layout, written row by row as a
/// producer writes it.
fn rows_of(x: &[f32], m: usize, k: usize) -> PackedA {
    let mut p = PackedA::empty();
    for (i, row) in p.rows_for(m, k).chunks_mut(k.div_ceil(2)).enumerate() {
        to_pairs(&x[i * k..(i + 1) * k], row);
    }
    p
}

#[test]
fn a_range_of_rows_and_the_transpose_of_produced_rows() {
    // Two models' rows in one matrix: each model's product alone equals
    // the product of its own matrix; the transpose regrouped from produced
    // rows equals the transpose packed from fp32, bit for bit, for odd
    // sizes, ranges that do not start on a panel, and two threads.
    let (m, k, n) = (29, 37, 45);
    let x = random(2 * m * k, 600);
    let b = random(k * n, 601);
    let pb = PackedB::pack(MatRef::row_major(&b, k, n).unwrap());
    let both = rows_of(&x, 2 * m, k);
    for (model, range) in [(0, 0..m), (1, m..2 * m)] {
        let own =
            PackedA::pack(MatRef::row_major(&x[model * m * k..(model + 1) * m * k], m, k).unwrap());
        let (mut want, mut got) = (vec![0.0f32; m * n], vec![0.0f32; m * n]);
        gemm(Engine::Portable, &own, &pb, &mut want, n, false, 1).unwrap();
        gemm_rows(
            Engine::Portable,
            &both,
            range,
            &pb,
            &mut got,
            n,
            Start::Zero,
            2,
            Triangle::Full,
        )
        .unwrap();
        assert_eq!(got, want, "model {model}");
    }
    // Xᵀ of rows r0..r1 (k × len) times a len × 7 matrix.
    for (r0, r1) in [(0, 58), (3, 32), (29, 58), (5, 6)] {
        let len = r1 - r0;
        let c = random(len * 7, 602);
        let pc = PackedB::pack(MatRef::row_major(&c, len, 7).unwrap());
        let xr = MatRef::row_major(&x[r0 * k..r1 * k], len, k).unwrap();
        let from_fp32 = PackedA::pack(xr.t());
        for threads in [1, 2, 3] {
            let mut t = PackedA::pack(MatRef::row_major(&x, 2 * m, k).unwrap());
            t.transpose_of(&both, r0..r1, threads).unwrap();
            assert!(!t.is_rows());
            assert_eq!((t.rows(), t.depth()), (k, len));
            let (mut want, mut got) = (vec![0.0f32; k * 7], vec![0.0f32; k * 7]);
            gemm(Engine::Portable, &from_fp32, &pc, &mut want, 7, false, 1).unwrap();
            gemm(Engine::Portable, &t, &pc, &mut got, 7, false, 1).unwrap();
            assert_eq!(got, want, "rows {r0}..{r1}, {threads} threads");
        }
    }
    // Ranges that do not fit are errors.
    let mut t = PackedA::empty();
    assert!(matches!(
        t.transpose_of(&both, 50..70, 1),
        Err(Error::Layout { .. })
    ));
    let panels = PackedA::pack(MatRef::row_major(&x, 2 * m, k).unwrap().t().t());
    let mut c = vec![0.0f32; m * n];
    assert!(gemm_rows(
        Engine::Portable,
        &both,
        40..70,
        &pb,
        &mut c,
        n,
        Start::Zero,
        1,
        Triangle::Full
    )
    .is_err());
    let _ = panels;
    let xt: Vec<f32> = (0..2 * m * k)
        .map(|e| x[(e % (2 * m)) * k + e / (2 * m)])
        .collect();
    let by_panels = PackedA::pack(MatRef::row_major(&xt, k, 2 * m).unwrap().t());
    assert!(!by_panels.is_rows());
    assert!(matches!(
        gemm_rows(
            Engine::Portable,
            &by_panels,
            5..20,
            &pb,
            &mut c,
            n,
            Start::Zero,
            1,
            Triangle::Full
        ),
        Err(Error::Layout { .. })
    ));
    assert!(matches!(
        t.transpose_of(&by_panels, 0..4, 1),
        Err(Error::Layout { .. })
    ));
}

#[test]
fn a_bias_start_is_the_bias_written_then_accumulated_onto() {
    // C = bias + A·B with the bias loaded into the accumulators gives the
    // bits of writing the bias into C and adding the product to it; with
    // no pair to add (k = 0) C is the bias.
    let (m, k, n) = (17, 40, 70);
    let a = random(m * k, 700);
    let b = random(k * n, 701);
    let bias = random(n, 702);
    let pa = rows_of(&a, m, k);
    let pb = PackedB::pack(MatRef::row_major(&b, k, n).unwrap());
    for engine in [Engine::Portable, Engine::Avx512Bf16]
        .into_iter()
        .filter(|e| e.available())
    {
        let mut want: Vec<f32> = (0..m * n).map(|e| bias[e % n]).collect();
        gemm(engine, &pa, &pb, &mut want, n, true, 1).unwrap();
        let mut got = vec![f32::NAN; m * n];
        gemm_rows(
            engine,
            &pa,
            0..m,
            &pb,
            &mut got,
            n,
            Start::Bias(&bias),
            2,
            Triangle::Full,
        )
        .unwrap();
        assert_eq!(got, want, "{engine}");
        let empty = PackedA::pack(MatRef::row_major(&[], m, 0).unwrap());
        let none = PackedB::pack(MatRef::row_major(&[], 0, n).unwrap());
        let mut c = vec![f32::NAN; m * n];
        gemm_rows(
            engine,
            &empty,
            0..m,
            &none,
            &mut c,
            n,
            Start::Bias(&bias),
            1,
            Triangle::Full,
        )
        .unwrap();
        assert!(c.chunks(n).all(|row| row == &bias[..]));
        assert!(gemm_rows(
            engine,
            &pa,
            0..m,
            &pb,
            &mut c,
            n,
            Start::Bias(&bias[..5]),
            1,
            Triangle::Full
        )
        .is_err());
    }
}
