use super::*;
use quiver_core::rt::Rng;

fn naive_l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn naive_dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-3 * b.abs().max(1.0)
}

#[test]
fn every_kernel_set_agrees_with_naive_loops() {
    let mut rng = Rng::seed_from_u64(11);
    let mut sets = vec![portable_kernels()];
    sets.extend(avx2_kernels());
    sets.extend(avx512_kernels());
    for len in [1usize, 7, 8, 15, 16, 31, 32, 33, 64, 100, 128, 257] {
        let a: Vec<f32> = (0..len).map(|_| rng.normal()).collect();
        let b: Vec<f32> = (0..len).map(|_| rng.normal()).collect();
        let s: Vec<f32> = (0..len).map(|_| rng.next_f32() * 0.1).collect();
        let c: Vec<u8> = (0..len).map(|_| rng.index(256) as u8).collect();
        let want_sq8_l2: f32 = (0..len)
            .map(|i| {
                let d = a[i] - s[i] * f32::from(c[i]);
                d * d
            })
            .sum();
        let want_sq8_dot: f32 = (0..len).map(|i| a[i] * f32::from(c[i])).sum();
        // The extreme table values the integer kernel is specified for.
        let t: Vec<i16> = (0..len)
            .map(|i| match i % 3 {
                0 => 16383,
                1 => -16383,
                _ => rng.index(32767) as i16 - 16383,
            })
            .collect();
        let want_idot: i64 = (0..len).map(|i| i64::from(t[i]) * i64::from(c[i])).sum();
        for k in &sets {
            assert_eq!(
                i64::from((k.sq8_idot)(&t, &c)),
                want_idot,
                "{} sq8 idot {len}",
                k.name
            );
            assert!(
                close((k.l2)(&a, &b), naive_l2(&a, &b)),
                "{} l2 {len}",
                k.name
            );
            assert!(
                close((k.dot)(&a, &b), naive_dot(&a, &b)),
                "{} dot {len}",
                k.name
            );
            assert!(close((k.neg_dot)(&a, &b), -naive_dot(&a, &b)));
            assert!(
                close((k.sq8_l2)(&a, &s, &c), want_sq8_l2),
                "{} sq8 l2",
                k.name
            );
            assert!(
                close((k.sq8_dot)(&a, &c), want_sq8_dot),
                "{} sq8 dot",
                k.name
            );
        }
    }
}

#[test]
fn space_prepares_pads_and_scores() {
    let s = Space::new(Metric::Cosine, 3).unwrap();
    assert_eq!(s.padded_dim(), 8);
    let q = s.prepare(&[3.0, 0.0, 4.0]);
    assert_eq!(q.len(), 8);
    assert!((q[0] - 0.6).abs() < 1e-6 && (q[2] - 0.8).abs() < 1e-6);
    assert!(q[3..].iter().all(|&x| x == 0.0));
    let v = s.prepare(&[6.0, 0.0, 8.0]);
    let d = s.distance(&q, &v);
    assert!((s.to_score(d) - 1.0).abs() < 1e-6);
    let l2 = Space::new(Metric::L2, 2).unwrap();
    assert_eq!(
        l2.distance(&l2.prepare(&[0.0, 0.0]), &l2.prepare(&[3.0, 4.0])),
        25.0
    );
    assert!(Space::new(Metric::L2, 0).is_err());
    for m in [Metric::L2, Metric::IP, Metric::Cosine] {
        assert_eq!(metric_from_code(metric_code(m)), Some(m));
    }
}
