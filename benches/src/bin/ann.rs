//! The ANN benchmark: builds one index over a TEXMEX dataset (as written by
//! `../shared/bench/gen_dataset.py`) and prints, for each search parameter, one JSON line:
//! `{"index":"hnsw","param":"ef=64","recall_at_10":0.953,"qps_1thread":5123.4,"build_s":12.3,"mem_bytes":123456}`.
//!
//! recall@10 is |top-10 ∩ ground-truth top-10| / 10 averaged over the queries; QPS is
//! single-threaded, one query per call through `AnnIndex::search` (what a query node
//! calls), the median of `--repeats` passes after a warm-up; build time uses `--threads`
//! threads; mem_bytes is the index's `memory_bytes()` (vectors included).
//!
//! ```text
//! cargo run --release --manifest-path benches/Cargo.toml --bin ann -- \
//!   --data DIR --index hnsw --m 16 --ef-construction 200 --ef 10,16,24,32,48,64,96,128
//! ```

// Benchmarks measure wall time on purpose, so this binary reads the clock directly
// (std::time::Instant) instead of going through the runtime seam.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use quiver_ann::{AnnIndex, Bitset, HnswParams, IndexParams, IvfParams, Metric, SearchParams};

const USAGE: &str = "usage: ann --data DIR --index hnsw|hnsw_sq8|ivf_flat|ivf_sq8|flat [options]
  --m N                 HNSW M (16)
  --ef-construction N   HNSW efConstruction (200)
  --ef LIST             HNSW search ef sweep, comma separated (10,16,24,32,48,64,96,128,192,256)
  --nlist N             IVF lists (1024)
  --nprobe LIST         IVF nprobe sweep (1,2,4,8,16,32,64)
  --rerank N            SQ8 candidates re-ranked exactly (default: min(ef, 4k) / 4k)
  --threads N           build threads (available parallelism)
  --queries N           use only the first N queries
  --repeats N           timed passes per point; the median is reported (3)
  --seed N              build seed
  --roundtrip           serialize and reload the index before searching
  --filter-tag-lt10     filtered search: only rows with id % 100 < 10 (10%) are allowed,
                        scored against groundtruth.tag_lt10.ivecs";

struct Args {
    data: PathBuf,
    index: String,
    m: usize,
    ef_construction: usize,
    ef: Vec<usize>,
    nlist: usize,
    nprobe: Vec<usize>,
    rerank: Option<usize>,
    threads: usize,
    queries: Option<usize>,
    repeats: usize,
    seed: u64,
    roundtrip: bool,
    filter_tag_lt10: bool,
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.trim()
        .parse::<T>()
        .map_err(|_| format!("{flag}: not a number: {v:?}"))
}

fn list(flag: &str, v: &str) -> Result<Vec<usize>, String> {
    let out: Vec<usize> = v
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| number(flag, s))
        .collect::<Result<_, _>>()?;
    if out.is_empty() {
        return Err(format!("{flag}: empty list"));
    }
    Ok(out)
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        data: PathBuf::new(),
        index: "hnsw".to_string(),
        m: 16,
        ef_construction: 200,
        ef: vec![10, 16, 24, 32, 48, 64, 96, 128, 192, 256],
        nlist: 1024,
        nprobe: vec![1, 2, 4, 8, 16, 32, 64],
        rerank: None,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        queries: None,
        repeats: 3,
        seed: HnswParams::default().seed,
        roundtrip: false,
        filter_tag_lt10: false,
    };
    let mut have_data = false;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        match flag.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--roundtrip" => {
                a.roundtrip = true;
                continue;
            }
            "--filter-tag-lt10" => {
                a.filter_tag_lt10 = true;
                continue;
            }
            _ => {}
        }
        let v = match inline {
            Some(v) => v,
            None => it.next().ok_or_else(|| format!("{flag} needs a value"))?,
        };
        match flag.as_str() {
            "--data" => {
                a.data = PathBuf::from(v);
                have_data = true;
            }
            "--index" => a.index = v.to_ascii_lowercase(),
            "--m" | "-M" | "--M" => a.m = number(&flag, &v)?,
            "--ef-construction" | "--efc" | "--efConstruction" => {
                a.ef_construction = number(&flag, &v)?
            }
            "--ef" => a.ef = list(&flag, &v)?,
            "--nlist" => a.nlist = number(&flag, &v)?,
            "--nprobe" => a.nprobe = list(&flag, &v)?,
            "--rerank" => a.rerank = Some(number(&flag, &v)?),
            "--threads" => a.threads = number::<usize>(&flag, &v)?.max(1),
            "--queries" => a.queries = Some(number(&flag, &v)?),
            "--repeats" => a.repeats = number::<usize>(&flag, &v)?.max(1),
            "--seed" => a.seed = number(&flag, &v)?,
            other => return Err(format!("unknown option {other}")),
        }
    }
    if !have_data {
        return Err("--data is required".to_string());
    }
    Ok(a)
}

/// A TEXMEX file (`.fvecs` / `.ivecs`): each record is an i32 dimension then that many
/// 4-byte values. Returns (dim, raw little-endian values).
fn read_texmex(path: &Path) -> Result<(usize, Vec<u32>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() < 4 {
        return Err(format!("{}: empty file", path.display()));
    }
    let dim = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if dim <= 0 {
        return Err(format!("{}: bad dimension {dim}", path.display()));
    }
    let dim = dim as usize;
    let rec = 4 * (dim + 1);
    if bytes.len() % rec != 0 {
        return Err(format!(
            "{}: {} bytes is not a whole number of {rec}-byte records",
            path.display(),
            bytes.len()
        ));
    }
    let mut out = Vec::with_capacity(bytes.len() / rec * dim);
    for r in bytes.chunks_exact(rec) {
        if r[..4] != bytes[..4] {
            return Err(format!(
                "{}: records of different dimensions",
                path.display()
            ));
        }
        out.extend(
            r[4..]
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
    }
    Ok((dim, out))
}

fn read_fvecs(path: &Path) -> Result<(usize, Vec<f32>), String> {
    let (dim, raw) = read_texmex(path)?;
    Ok((dim, raw.into_iter().map(f32::from_bits).collect()))
}

fn read_metric(path: &Path) -> Result<Metric, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let meta: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = meta
        .get("metric")
        .and_then(|m| m.as_str())
        .ok_or_else(|| format!("{}: no \"metric\"", path.display()))?;
    Metric::parse(name).ok_or_else(|| format!("{}: unknown metric {name:?}", path.display()))
}

/// A dataset directory as `gen_dataset.py` writes it.
struct Dataset {
    dim: usize,
    /// Base rows, row-major.
    base: Vec<f32>,
    queries: Vec<f32>,
    /// Queries used (`--queries` caps it).
    nq: usize,
    /// Ground-truth ids, `gk` per query.
    gt: Vec<u32>,
    gk: usize,
    metric: Metric,
}

fn load_dataset(a: &Args) -> Result<Dataset, String> {
    let (dim, base) = read_fvecs(&a.data.join("base.fvecs"))?;
    let (qdim, queries) = read_fvecs(&a.data.join("query.fvecs"))?;
    // The generator's filtered ground truth: the exact neighbours among rows whose tag
    // (`id % 100`) is below 10.
    let gt_file = if a.filter_tag_lt10 {
        "groundtruth.tag_lt10.ivecs"
    } else {
        "groundtruth.ivecs"
    };
    let (gk, gt) = read_texmex(&a.data.join(gt_file))?;
    let metric = read_metric(&a.data.join("meta.json"))?;
    if qdim != dim {
        return Err(format!("query dimension {qdim} != base dimension {dim}"));
    }
    let mut nq = queries.len() / dim;
    if let Some(limit) = a.queries {
        nq = nq.min(limit);
    }
    if gt.len() / gk < nq {
        return Err(format!(
            "ground truth has {} rows for {nq} queries",
            gt.len() / gk
        ));
    }
    Ok(Dataset {
        dim,
        base,
        queries,
        nq,
        gt,
        gk,
        metric,
    })
}

/// Search parameters to sweep, each with its label (`ef=64`).
type Sweep = Vec<(String, SearchParams)>;

/// The index to build: its name, its parameters and the search parameters to sweep.
fn index_plan(a: &Args) -> Result<(&'static str, IndexParams, Sweep), String> {
    let hnsw = HnswParams {
        m: a.m,
        ef_construction: a.ef_construction,
        seed: a.seed,
    };
    let ivf = IvfParams {
        nlist: a.nlist,
        seed: a.seed,
        ..IvfParams::default()
    };
    let ef_sweep = || -> Sweep {
        a.ef.iter()
            .map(|&ef| {
                let sp = SearchParams {
                    ef: Some(ef),
                    rerank: a.rerank,
                    ..SearchParams::default()
                };
                (format!("ef={ef}"), sp)
            })
            .collect()
    };
    let nprobe_sweep = || -> Sweep {
        a.nprobe
            .iter()
            .map(|&np| {
                let sp = SearchParams {
                    nprobe: Some(np),
                    rerank: a.rerank,
                    ..SearchParams::default()
                };
                (format!("nprobe={np}"), sp)
            })
            .collect()
    };
    Ok(match a.index.as_str() {
        "hnsw" => ("hnsw", IndexParams::Hnsw(hnsw), ef_sweep()),
        "hnsw_sq8" | "hnsw_sq" => ("hnsw_sq8", IndexParams::HnswSq8(hnsw), ef_sweep()),
        "ivf_flat" | "ivf" => ("ivf_flat", IndexParams::IvfFlat(ivf), nprobe_sweep()),
        "ivf_sq8" => (
            "ivf_sq8",
            IndexParams::IvfSq8 { ivf, refine: true },
            nprobe_sweep(),
        ),
        "flat" => (
            "flat",
            IndexParams::Flat,
            vec![("exact".to_string(), SearchParams::default())],
        ),
        other => return Err(format!("unknown index {other:?}\n{USAGE}")),
    })
}

/// Builds the index (and, with `--roundtrip`, serializes and reloads it); returns it
/// with the build time in seconds.
fn build_index(a: &Args, params: &IndexParams, d: &Dataset) -> Result<(AnnIndex, f64), String> {
    let t = Instant::now();
    let mut index = AnnIndex::build(params, d.metric, d.dim, &d.base, a.threads)
        .map_err(|e| format!("build: {e}"))?;
    let build_s = t.elapsed().as_secs_f64();
    if a.roundtrip {
        let t = Instant::now();
        let bytes = index.to_bytes();
        index = AnnIndex::from_bytes(&bytes).map_err(|e| format!("reload: {e}"))?;
        eprintln!(
            "ann: {} bytes serialized, round trip {:.2}s",
            bytes.len(),
            t.elapsed().as_secs_f64()
        );
    }
    Ok((index, build_s))
}

/// One sweep point: recall@10 of the first pass and the QPS of the median pass, after a
/// warm-up of up to 200 queries.
fn measure(
    index: &AnnIndex,
    qs: &[&[f32]],
    d: &Dataset,
    k: usize,
    sp: &SearchParams,
    allowed: Option<&Bitset>,
    repeats: usize,
) -> (f64, f64) {
    let (gt, gk, nq) = (&d.gt, d.gk, d.nq);
    for q in qs.iter().take(200) {
        black_box(index.search(q, k, sp, allowed));
    }
    let mut times = Vec::with_capacity(repeats);
    let mut recall = 0.0;
    for rep in 0..repeats {
        let mut hits = 0usize;
        let t = Instant::now();
        for (qi, q) in qs.iter().enumerate() {
            let res = index.search(q, k, sp, allowed);
            let truth = &gt[qi * gk..qi * gk + k];
            hits += res.iter().filter(|(row, _)| truth.contains(row)).count();
        }
        times.push(t.elapsed().as_secs_f64());
        if rep == 0 {
            recall = hits as f64 / (nq * 10).max(1) as f64;
        }
    }
    times.sort_by(f64::total_cmp);
    let qps = nq as f64 / times[times.len() / 2].max(1e-9);
    (recall, qps)
}

fn run(a: &Args) -> Result<(), String> {
    let mut d = load_dataset(a)?;
    let (dim, nq) = (d.dim, d.nq);
    let n = d.base.len() / dim;
    let k = 10.min(d.gk);
    let (name, params, sweep) = index_plan(a)?;
    eprintln!(
        "ann: {name} over {n} x {dim} {} rows, {nq} queries, {} build threads, kernels {}",
        d.metric.as_str(),
        a.threads,
        quiver_ann::distance::kernels().name
    );
    let (index, build_s) = build_index(a, &params, &d)?;
    d.base = Vec::new();
    let mem_bytes = index.memory_bytes();

    let qs: Vec<&[f32]> = d.queries.chunks_exact(dim).take(nq).collect();
    let allowed = a
        .filter_tag_lt10
        .then(|| Bitset::from_fn(n, |row| row % 100 < 10));
    let filter_field = if a.filter_tag_lt10 {
        ",\"filter\":\"tag<10\""
    } else {
        ""
    };
    for (label, sp) in &sweep {
        let (recall, qps) = measure(&index, &qs, &d, k, sp, allowed.as_ref(), a.repeats);
        println!(
            "{{\"index\":\"{name}\",\"param\":\"{label}\",\"recall_at_10\":{recall:.4},\"qps_1thread\":{qps:.1},\"build_s\":{build_s:.2},\"mem_bytes\":{mem_bytes}{filter_field}}}"
        );
    }
    Ok(())
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
