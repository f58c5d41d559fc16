//! The bf16 products against an f64 reference over the bf16-rounded
//! inputs, over shapes that are not multiples of the tiles, strided and
//! transposed views, accumulation, threads, and the two engines.

use cfmem_kernels::{gemm, matmul_bf16, round_bf16, Engine, Error, MatRef, PackedA, PackedB};
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
