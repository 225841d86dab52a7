//! Key generation: distributions have the shape they promise, workers get disjoint shares.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::collections::{BTreeMap, HashSet};

use rand::rngs::SmallRng;
use rand::SeedableRng;
use unistore_core::model::WorkerIdentity;
use unistore_core::template::Distribution;
use unistore_core::workload::KeyGenerator;
use unistore_core::Value;

fn worker(index: u32, count: u32) -> WorkerIdentity {
    WorkerIdentity { worker_id: format!("worker-{index}"), index, count }
}

fn draw(g: &KeyGenerator, n: usize, seed: u64) -> Vec<i64> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..n).map(|_| g.next(&mut rng).as_i64().unwrap()).collect()
}

#[test]
fn uniform_range_keys_cover_the_range_evenly() {
    let g = KeyGenerator::from_range(1, 100, Distribution::Uniform, &worker(0, 1)).unwrap();
    let keys = draw(&g, 100_000, 1);
    assert!(keys.iter().all(|k| (1..=100).contains(k)));
    let mut counts = BTreeMap::new();
    for k in keys {
        *counts.entry(k).or_insert(0u32) += 1;
    }
    assert_eq!(counts.len(), 100);
    assert!(counts.values().all(|c| (800..1200).contains(c)), "{counts:?}");
}

#[test]
fn zipfian_keys_are_skewed() {
    let pool: Vec<Value> = (1..=1000).map(Value::Int).collect();
    let g = KeyGenerator::from_pool(pool, Distribution::Zipfian { theta: 0.99 }, &worker(0, 1)).unwrap();
    let keys = draw(&g, 100_000, 2);
    let hottest = keys.iter().filter(|k| **k == 1).count();
    let top10 = keys.iter().filter(|k| **k <= 10).count();
    // Zipf(0.99) over 1000 keys: the top key takes ~13 % and the top 10 keys ~39 % of draws.
    assert!(hottest > 10_000 && hottest < 17_000, "top key {hottest}");
    assert!(top10 > 33_000 && top10 < 45_000, "top 10 {top10}");
}

#[test]
fn hotspot_sends_the_given_share_to_the_hot_keys() {
    let hot = Distribution::Hotspot { hot_fraction: 0.1, hot_probability: 0.9 };
    let g = KeyGenerator::from_range(0, 999, hot, &worker(0, 1)).unwrap();
    let keys = draw(&g, 100_000, 3);
    let in_hot = keys.iter().filter(|k| **k < 100).count() as f64 / 100_000.0;
    assert!((in_hot - 0.9).abs() < 0.01, "hot share {in_hot}");
}

#[test]
fn sequential_keys_wrap_around() {
    let g = KeyGenerator::from_range(10, 14, Distribution::Sequential, &worker(0, 1)).unwrap();
    assert_eq!(draw(&g, 7, 4), vec![10, 11, 12, 13, 14, 10, 11]);
}

#[test]
fn workers_draw_from_disjoint_shares() {
    let pool: Vec<Value> = (0..1000).map(Value::Int).collect();
    let mut seen: Vec<HashSet<i64>> = Vec::new();
    for i in 0..3 {
        let g = KeyGenerator::from_pool(pool.clone(), Distribution::Uniform, &worker(i, 3)).unwrap();
        seen.push(draw(&g, 20_000, 5).into_iter().collect());
        let r = KeyGenerator::from_range(1, 1000, Distribution::Uniform, &worker(i, 3)).unwrap();
        let keys: HashSet<i64> = draw(&r, 20_000, 6).into_iter().collect();
        let lo = 1 + 333 * i64::from(i);
        assert!(keys.iter().all(|k| *k >= lo && *k <= 1000), "worker {i} range share");
    }
    assert!(seen[0].is_disjoint(&seen[1]) && seen[1].is_disjoint(&seen[2]) && seen[0].is_disjoint(&seen[2]));
    let covered: usize = seen.iter().map(HashSet::len).sum();
    assert!(covered > 990, "shares cover the pool: {covered}");
}

#[test]
fn an_empty_pool_is_a_clear_error() {
    let e = KeyGenerator::from_pool(vec![], Distribution::Uniform, &worker(0, 1)).unwrap_err();
    assert!(e.to_string().contains("no rows"), "{e}");
}

#[test]
fn zipfian_over_a_large_range_is_skewed_and_in_range() {
    // Above a million keys the normalisation constant uses the integral tail.
    let z = Distribution::Zipfian { theta: 0.99 };
    let g = KeyGenerator::from_range(1, 50_000_000, z, &worker(0, 1)).unwrap();
    let keys = draw(&g, 200_000, 8);
    assert!(keys.iter().all(|k| (1..=50_000_000).contains(k)));
    let mut counts = BTreeMap::new();
    for k in &keys {
        *counts.entry(*k).or_insert(0u32) += 1;
    }
    let mut top: Vec<u32> = counts.values().copied().collect();
    top.sort_unstable_by(|a, b| b.cmp(a));
    // Zipf(0.99) over 5e7 keys: the hottest key takes about 1/zeta(5e7, 0.99) ~ 5.3 % of draws.
    let share = f64::from(top[0]) / keys.len() as f64;
    assert!(share > 0.045 && share < 0.062, "hottest key share {share}");
}

#[test]
fn zipfian_with_theta_above_one_still_works() {
    let pool: Vec<Value> = (1..=100).map(Value::Int).collect();
    let g = KeyGenerator::from_pool(pool, Distribution::Zipfian { theta: 1.5 }, &worker(0, 1)).unwrap();
    let keys = draw(&g, 50_000, 9);
    let first = keys.iter().filter(|k| **k == 1).count() as f64 / 50_000.0;
    // P(rank 1) = 1 / zeta(100, 1.5) ~ 0.42.
    assert!((first - 0.42).abs() < 0.02, "{first}");
}
