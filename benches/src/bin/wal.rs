//! The WAL benchmark: appends per second and append latency (p50, p99) for 1 and 64
//! concurrent writers, on the object-storage WAL over a local-folder object store
//! (fsynced, as standalone runs it) with 0, 10 and 50 ms of injected latency per
//! request, and on the local-file WAL (fsync before every acknowledgement) as the
//! peer in the same run. One JSON line per configuration:
//! `{"wal":"object","latency_ms":10,"writers":64,"appends_per_s":..,"p50_ms":..,"p99_ms":..,"objects":..}`.
//!
//! ```text
//! cargo run --release -p quiver-benches --bin wal -- [--secs 3] [--dir /tmp/quiver-wal-bench] [--payload 512]
//! ```

// Benchmarks measure wall time on purpose, so this binary reads the clock directly.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use quiver_core::objstore::{FaultConfig, FaultyStore};
use quiver_core::rt::disk::StdDisk;
use quiver_core::wal::{Epoch, LocalWal, LocalWalOptions, ObjectWal, ObjectWalOptions, Wal};

struct Args {
    secs: f64,
    dir: PathBuf,
    payload: usize,
}

fn args() -> Args {
    let mut a = Args {
        secs: 3.0,
        dir: std::env::temp_dir().join("quiver-wal-bench"),
        payload: 512,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--secs" => a.secs = v.parse().expect("--secs"),
            "--dir" => a.dir = PathBuf::from(v),
            "--payload" => a.payload = v.parse().expect("--payload"),
            other => panic!("unknown option {other}"),
        }
    }
    a
}

/// Runs `writers` tasks appending back to back for `secs`; returns every append's
/// latency in microseconds and the wall time.
async fn drive(wal: Arc<dyn Wal>, writers: usize, secs: f64, payload: usize) -> (Vec<u64>, f64) {
    wal.fence(Epoch(1)).await.expect("fence");
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let wal = wal.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let p = Bytes::from(vec![7u8; payload]);
                while Instant::now() < until {
                    let t = Instant::now();
                    wal.append(Epoch(1), p.clone()).await.expect("append");
                    lat.push(t.elapsed().as_micros() as u64);
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("writer"));
    }
    (all, start.elapsed().as_secs_f64())
}

fn report(
    wal: &str,
    latency_ms: u64,
    writers: usize,
    mut lat: Vec<u64>,
    wall: f64,
    objects: usize,
) {
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize] as f64 / 1000.0;
    println!(
        "{{\"wal\":\"{wal}\",\"latency_ms\":{latency_ms},\"writers\":{writers},\"appends_per_s\":{:.0},\"p50_ms\":{:.2},\"p99_ms\":{:.2},\"objects\":{objects}}}",
        lat.len() as f64 / wall,
        pct(0.5),
        pct(0.99)
    );
}

fn count_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.flatten()
            .map(|e| {
                if e.path().is_dir() {
                    count_files(&e.path())
                } else {
                    1
                }
            })
            .sum()
    })
}

#[tokio::main]
async fn main() {
    let a = args();
    for writers in [1usize, 64] {
        for latency_ms in [0u64, 10, 50] {
            let dir = a.dir.join(format!("object-{writers}-{latency_ms}"));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("bench dir");
            let local = LocalFileSystem::new_with_prefix(&dir)
                .expect("store")
                .with_fsync(true);
            let faulty = FaultyStore::new(Arc::new(local), 1);
            faulty.set_config(FaultConfig {
                base_latency: Duration::from_millis(latency_ms),
                ..FaultConfig::default()
            });
            let store: Arc<dyn ObjectStore> = Arc::new(faulty);
            let wal = ObjectWal::open(
                store,
                ObjectPath::from("wal/bench"),
                ObjectWalOptions::default(),
            )
            .await
            .expect("open");
            let (lat, wall) = drive(Arc::new(wal), writers, a.secs, a.payload).await;
            report("object", latency_ms, writers, lat, wall, count_files(&dir));
        }
        let dir = a.dir.join(format!("local-{writers}"));
        let _ = std::fs::remove_dir_all(&dir);
        let wal =
            LocalWal::open(Arc::new(StdDisk), &dir, LocalWalOptions::default()).expect("open");
        let (lat, wall) = drive(Arc::new(wal), writers, a.secs, a.payload).await;
        report("local-fsync", 0, writers, lat, wall, count_files(&dir));
    }
}
