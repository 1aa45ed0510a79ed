//! One type over every index kind ([`AnnIndex`]), and the Milvus-style build and search
//! parameters that select and tune them ([`IndexParams`], [`SearchParams`]).

use quiver_core::search::distance::Metric;
use serde::{Deserialize, Serialize};

use crate::bitset::Bitset;
use crate::distance::Space;
use crate::error::AnnError;
use crate::flat::FlatIndex;
use crate::hnsw::{Hnsw, HnswParams, MAX_M};
use crate::ivf::{IvfFlat, IvfParams, MAX_NLIST};
use crate::sq8::{HnswSq8, IvfSq8};

/// Beam width when the search does not give `ef` (raised to `k` when smaller).
pub const DEFAULT_EF: usize = 64;
/// Lists probed when the search does not give `nprobe`.
pub const DEFAULT_NPROBE: usize = 16;
/// Largest `ef` / `efConstruction` accepted (Milvus's limit).
pub const MAX_EF: usize = 32768;

/// The kinds of index, with their codes in the serialized header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IndexKind {
    Flat,
    Hnsw,
    HnswSq8,
    IvfFlat,
    IvfSq8,
}

impl IndexKind {
    /// The code in the serialized header.
    pub fn code(self) -> u16 {
        match self {
            IndexKind::Flat => 1,
            IndexKind::Hnsw => 2,
            IndexKind::HnswSq8 => 3,
            IndexKind::IvfFlat => 4,
            IndexKind::IvfSq8 => 5,
        }
    }

    pub fn from_code(c: u16) -> Option<IndexKind> {
        match c {
            1 => Some(IndexKind::Flat),
            2 => Some(IndexKind::Hnsw),
            3 => Some(IndexKind::HnswSq8),
            4 => Some(IndexKind::IvfFlat),
            5 => Some(IndexKind::IvfSq8),
            _ => None,
        }
    }

    /// The Milvus `index_type` name.
    pub fn milvus_name(self) -> &'static str {
        match self {
            IndexKind::Flat => "FLAT",
            IndexKind::Hnsw => "HNSW",
            IndexKind::HnswSq8 => "HNSW_SQ",
            IndexKind::IvfFlat => "IVF_FLAT",
            IndexKind::IvfSq8 => "IVF_SQ8",
        }
    }
}

/// What to build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum IndexParams {
    Flat,
    Hnsw(HnswParams),
    HnswSq8(HnswParams),
    IvfFlat(IvfParams),
    /// `refine`: keep the f32 rows and re-rank on them.
    IvfSq8 {
        ivf: IvfParams,
        refine: bool,
    },
}

impl Default for IndexParams {
    fn default() -> Self {
        IndexParams::autoindex()
    }
}

/// Milvus-style `key = value` parameters, keys case-insensitive: (lower-cased key,
/// the key as the client spelled it, for messages; value).
struct Kv(Vec<(String, String, String)>);

impl Kv {
    fn new<I, K, V>(params: I) -> Kv
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        Kv(params
            .into_iter()
            .map(|(k, v)| {
                let key = k.as_ref().trim();
                (
                    key.to_ascii_lowercase(),
                    key.to_string(),
                    v.as_ref().trim().to_string(),
                )
            })
            .collect())
    }

    /// The last value given for any of `keys`, with the key as the client spelled it.
    fn get(&self, keys: &[&str]) -> Option<(&str, &str)> {
        self.0
            .iter()
            .rev()
            .find(|(k, _, _)| keys.contains(&k.as_str()))
            .map(|(_, spelled, v)| (spelled.as_str(), v.as_str()))
    }

    /// An integer in `lo..=hi`; Milvus's words when it is not (`param 'M' (4096)
    /// should be in range [2, 2048]`).
    fn usize(&self, keys: &[&str], lo: usize, hi: usize) -> Result<Option<usize>, AnnError> {
        let Some((k, v)) = self.get(keys) else {
            return Ok(None);
        };
        // Integers may arrive as JSON numbers rendered as floats ("16.0").
        let x = v.parse::<usize>().ok().or_else(|| {
            v.parse::<f64>()
                .ok()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= usize::MAX as f64)
                .map(|f| f as usize)
        });
        match x {
            Some(x) if (lo..=hi).contains(&x) => Ok(Some(x)),
            Some(_) => Err(AnnError::InvalidParam(format!(
                "param '{k}' ({v}) should be in range [{lo}, {hi}]"
            ))),
            None if v.parse::<i128>().is_ok() => Err(AnnError::InvalidParam(format!(
                "param '{k}' ({v}) should be in range [{lo}, {hi}]"
            ))),
            None => Err(AnnError::InvalidParam(format!(
                "param '{k}' ({v:?}) should be an integer in range [{lo}, {hi}]"
            ))),
        }
    }

    fn u64(&self, keys: &[&str]) -> Result<Option<u64>, AnnError> {
        match self.get(keys) {
            None => Ok(None),
            Some((k, v)) => v.parse::<u64>().map(Some).map_err(|_| {
                AnnError::InvalidParam(format!("{k} must be an unsigned integer, got {v:?}"))
            }),
        }
    }

    fn f32(&self, keys: &[&str]) -> Result<Option<f32>, AnnError> {
        match self.get(keys) {
            None => Ok(None),
            Some((k, v)) => match v.parse::<f32>() {
                Ok(x) if x.is_finite() && x > 0.0 => Ok(Some(x)),
                _ => Err(AnnError::InvalidParam(format!(
                    "{k} must be a positive number, got {v:?}"
                ))),
            },
        }
    }

    fn bool(&self, keys: &[&str]) -> Result<Option<bool>, AnnError> {
        match self.get(keys) {
            None => Ok(None),
            Some((k, v)) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(Some(true)),
                "false" | "0" => Ok(Some(false)),
                _ => Err(AnnError::InvalidParam(format!(
                    "{k} must be true or false, got {v:?}"
                ))),
            },
        }
    }
}

impl IndexParams {
    /// What `AUTOINDEX` builds: HNSW with M = 16, efConstruction = 200.
    pub fn autoindex() -> IndexParams {
        IndexParams::Hnsw(HnswParams::default())
    }

    pub fn kind(&self) -> IndexKind {
        match self {
            IndexParams::Flat => IndexKind::Flat,
            IndexParams::Hnsw(_) => IndexKind::Hnsw,
            IndexParams::HnswSq8(_) => IndexKind::HnswSq8,
            IndexParams::IvfFlat(_) => IndexKind::IvfFlat,
            IndexParams::IvfSq8 { .. } => IndexKind::IvfSq8,
        }
    }

    /// Parses Milvus's `index_type` and index params: `FLAT`, `HNSW` (`M`,
    /// `efConstruction`), `HNSW_SQ` (same, `sq_type` must be `SQ8` if given), `IVF_FLAT`
    /// (`nlist`), `IVF_SQ8` (`nlist`, `refine`, default true), `AUTOINDEX` or empty
    /// (HNSW, M = 16, efConstruction = 200). Also accepted: `seed`, and for IVF
    /// `max_iter` and `train_per_list`. Unknown keys (such as `metric_type`) are ignored.
    pub fn from_milvus<I, K, V>(index_type: &str, params: I) -> Result<IndexParams, AnnError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let kv = Kv::new(params);
        let hnsw = |kv: &Kv| -> Result<HnswParams, AnnError> {
            let d = HnswParams::default();
            Ok(HnswParams {
                m: kv.usize(&["m"], 2, MAX_M)?.unwrap_or(d.m),
                ef_construction: kv
                    .usize(&["efconstruction", "ef_construction"], 1, MAX_EF)?
                    .unwrap_or(d.ef_construction),
                seed: kv.u64(&["seed"])?.unwrap_or(d.seed),
            })
        };
        let ivf = |kv: &Kv| -> Result<IvfParams, AnnError> {
            let d = IvfParams::default();
            Ok(IvfParams {
                nlist: kv.usize(&["nlist"], 1, MAX_NLIST)?.unwrap_or(d.nlist),
                iterations: kv
                    .usize(&["max_iter", "iterations"], 0, 1000)?
                    .unwrap_or(d.iterations),
                train_per_list: kv
                    .usize(&["train_per_list"], 1, 1 << 16)?
                    .unwrap_or(d.train_per_list),
                seed: kv.u64(&["seed"])?.unwrap_or(d.seed),
            })
        };
        match index_type.trim().to_ascii_uppercase().as_str() {
            "" | "AUTOINDEX" | "HNSW" => Ok(IndexParams::Hnsw(hnsw(&kv)?)),
            "FLAT" => Ok(IndexParams::Flat),
            "HNSW_SQ" | "HNSW_SQ8" => {
                if let Some((_, t)) = kv.get(&["sq_type"]) {
                    if !t.eq_ignore_ascii_case("SQ8") {
                        return Err(AnnError::InvalidParam(format!(
                            "sq_type {t:?} is not supported (only SQ8)"
                        )));
                    }
                }
                Ok(IndexParams::HnswSq8(hnsw(&kv)?))
            }
            "IVF_FLAT" => Ok(IndexParams::IvfFlat(ivf(&kv)?)),
            "IVF_SQ8" => Ok(IndexParams::IvfSq8 {
                ivf: ivf(&kv)?,
                refine: kv.bool(&["refine"])?.unwrap_or(true),
            }),
            other => Err(AnnError::InvalidParam(format!(
                "unsupported index type {other:?}"
            ))),
        }
    }
}

/// Per-search knobs; `None` means the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchParams {
    /// HNSW beam width (raised to `k`).
    pub ef: Option<usize>,
    /// IVF lists probed.
    pub nprobe: Option<usize>,
    /// SQ8 candidates re-ranked exactly (raised to `k`).
    pub rerank: Option<usize>,
    /// Milvus's `refine_k`: re-rank `ceil(refine_k * k)` candidates (if `rerank` is unset).
    pub refine_k: Option<f32>,
}

impl SearchParams {
    /// Parses Milvus search params: `ef`, `nprobe`, `refine_k`, and `rerank` (a count).
    /// Unknown keys are ignored.
    pub fn from_milvus<I, K, V>(params: I) -> Result<SearchParams, AnnError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let kv = Kv::new(params);
        Ok(SearchParams {
            ef: kv.usize(&["ef"], 1, MAX_EF)?,
            nprobe: kv.usize(&["nprobe"], 1, MAX_NLIST)?,
            rerank: kv.usize(&["rerank"], 1, MAX_EF)?,
            refine_k: kv.f32(&["refine_k"])?,
        })
    }

    /// The beam width for a top-`k` search: `ef` (default [`DEFAULT_EF`]), at least `k`.
    pub fn ef_for(&self, k: usize) -> usize {
        self.ef.unwrap_or(DEFAULT_EF).max(k).max(1)
    }

    /// The lists to probe out of `nlist`: `nprobe` (default [`DEFAULT_NPROBE`]), clamped.
    pub fn nprobe_for(&self, nlist: usize) -> usize {
        self.nprobe.unwrap_or(DEFAULT_NPROBE).clamp(1, nlist.max(1))
    }

    /// SQ8 candidates to re-rank for a top-`k` search with beam `ef`: `rerank`, else
    /// `ceil(refine_k * k)`, else `min(ef, 4k)`; never below `k`. (Re-ranking the whole
    /// beam was measured too: at 384-d it cost 3% at ef=64 and 15% at ef=256 and did
    /// not change recall@10 beyond 1e-4, because the quantized walk's order is already
    /// right among the best 4k.)
    pub fn rerank_for(&self, k: usize, ef: usize) -> usize {
        let r = match (self.rerank, self.refine_k) {
            (Some(r), _) => r,
            (None, Some(f)) => (k as f64 * f64::from(f)).ceil() as usize,
            (None, None) => ef.min(4 * k),
        };
        r.max(k)
    }
}

/// Any index. (Variant sizes differ, but there is one index per segment, not millions.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum AnnIndex {
    Flat(FlatIndex),
    Hnsw(Hnsw),
    HnswSq8(HnswSq8),
    IvfFlat(IvfFlat),
    IvfSq8(IvfSq8),
}

impl AnnIndex {
    /// Builds the index `params` describe over `data` (row-major, `data.len() / dim` rows;
    /// row id = position) with up to `threads` threads (pass
    /// `quiver_core::rt::compute_parallelism()`, and run it inside `rt::compute`).
    pub fn build(
        params: &IndexParams,
        metric: Metric,
        dim: usize,
        data: &[f32],
        threads: usize,
    ) -> Result<AnnIndex, AnnError> {
        Ok(match params {
            IndexParams::Flat => AnnIndex::Flat(FlatIndex::build(metric, dim, data)?),
            IndexParams::Hnsw(p) => AnnIndex::Hnsw(Hnsw::build(metric, dim, data, p, threads)?),
            IndexParams::HnswSq8(p) => {
                AnnIndex::HnswSq8(HnswSq8::build(metric, dim, data, p, threads)?)
            }
            IndexParams::IvfFlat(p) => {
                AnnIndex::IvfFlat(IvfFlat::build(metric, dim, data, p, threads)?)
            }
            IndexParams::IvfSq8 { ivf, refine } => {
                AnnIndex::IvfSq8(IvfSq8::build(metric, dim, data, ivf, *refine, threads)?)
            }
        })
    }

    pub fn kind(&self) -> IndexKind {
        match self {
            AnnIndex::Flat(_) => IndexKind::Flat,
            AnnIndex::Hnsw(_) => IndexKind::Hnsw,
            AnnIndex::HnswSq8(_) => IndexKind::HnswSq8,
            AnnIndex::IvfFlat(_) => IndexKind::IvfFlat,
            AnnIndex::IvfSq8(_) => IndexKind::IvfSq8,
        }
    }

    pub fn space(&self) -> &Space {
        match self {
            AnnIndex::Flat(x) => x.space(),
            AnnIndex::Hnsw(x) => x.space(),
            AnnIndex::HnswSq8(x) => x.space(),
            AnnIndex::IvfFlat(x) => x.space(),
            AnnIndex::IvfSq8(x) => x.space(),
        }
    }

    pub fn metric(&self) -> Metric {
        self.space().metric()
    }

    pub fn dim(&self) -> usize {
        self.space().dim()
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            AnnIndex::Flat(x) => x.len(),
            AnnIndex::Hnsw(x) => x.len(),
            AnnIndex::HnswSq8(x) => x.len(),
            AnnIndex::IvfFlat(x) => x.len(),
            AnnIndex::IvfSq8(x) => x.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes of the structure, including the vectors it holds.
    pub fn memory_bytes(&self) -> usize {
        match self {
            AnnIndex::Flat(x) => x.memory_bytes(),
            AnnIndex::Hnsw(x) => x.memory_bytes(),
            AnnIndex::HnswSq8(x) => x.memory_bytes(),
            AnnIndex::IvfFlat(x) => x.memory_bytes(),
            AnnIndex::IvfSq8(x) => x.memory_bytes(),
        }
    }

    /// The top `k` rows for `query` as (row id, Milvus score), best first: squared L2
    /// ascending, IP / COSINE similarity descending. `allowed`, if given, restricts the
    /// result to its set rows (rows past its end are excluded); its population count
    /// picks between the filtered index walk and an exact scan of the allowed rows.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        allowed: Option<&Bitset>,
    ) -> Vec<(u32, f32)> {
        let space = *self.space();
        let mut out = self.search_distances(query, k, params, allowed);
        for hit in &mut out {
            hit.1 = space.to_score(hit.1);
        }
        out
    }

    /// As [`AnnIndex::search`], but with the internal distances (smaller is better).
    pub fn search_distances(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        allowed: Option<&Bitset>,
    ) -> Vec<(u32, f32)> {
        match self {
            AnnIndex::Flat(x) => match allowed {
                None => x.search(query, k, None),
                Some(a) => x.search_allowed(query, k, a),
            },
            AnnIndex::Hnsw(x) => {
                let ef = params.ef_for(k);
                match allowed {
                    None => x.search(query, k, ef, None),
                    Some(a) => x.search_filtered(query, k, ef, a, a.count_ones()),
                }
            }
            AnnIndex::HnswSq8(x) => {
                let ef = params.ef_for(k);
                let rr = params.rerank_for(k, ef);
                match allowed {
                    None => x.search(query, k, ef, rr, None),
                    Some(a) => x.search_filtered(query, k, ef, rr, a, a.count_ones()),
                }
            }
            AnnIndex::IvfFlat(x) => {
                let np = params.nprobe_for(x.nlist());
                match allowed {
                    None => x.search(query, k, np, None),
                    Some(a) => x.search_filtered(query, k, np, a, a.count_ones()),
                }
            }
            AnnIndex::IvfSq8(x) => {
                let np = params.nprobe_for(x.nlist());
                let rr = params.rerank_for(k, 4 * k);
                match allowed {
                    None => x.search(query, k, np, rr, None),
                    Some(a) => x.search_filtered(query, k, np, rr, a, a.count_ones()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::clustered;

    #[test]
    fn parses_milvus_params() {
        let p = IndexParams::from_milvus("HNSW", [("M", "32"), ("efConstruction", "100")]).unwrap();
        assert_eq!(
            p,
            IndexParams::Hnsw(HnswParams {
                m: 32,
                ef_construction: 100,
                seed: HnswParams::default().seed
            })
        );
        let auto = IndexParams::from_milvus("AUTOINDEX", [("metric_type", "L2")]).unwrap();
        assert_eq!(auto, IndexParams::autoindex());
        assert_eq!(
            auto,
            IndexParams::Hnsw(HnswParams {
                m: 16,
                ef_construction: 200,
                ..HnswParams::default()
            })
        );
        let ivf = IndexParams::from_milvus("ivf_flat", [("nlist", "1024.0")]).unwrap();
        assert!(matches!(ivf, IndexParams::IvfFlat(p) if p.nlist == 1024));
        let sq = IndexParams::from_milvus("IVF_SQ8", [("nlist", "64"), ("refine", "false")]);
        assert!(matches!(sq, Ok(IndexParams::IvfSq8 { refine: false, .. })));
        assert_eq!(
            IndexParams::from_milvus("HNSW_SQ", [("sq_type", "SQ8")]).map(|p| p.kind()),
            Ok(IndexKind::HnswSq8)
        );
        assert!(IndexParams::from_milvus("HNSW_SQ", [("sq_type", "FP16")]).is_err());
        assert!(IndexParams::from_milvus("HNSW", [("M", "1")]).is_err());
        assert!(IndexParams::from_milvus("HNSW", [("M", "x")]).is_err());
        assert!(IndexParams::from_milvus("DISKANN", [("M", "8")]).is_err());
        assert_eq!(
            IndexParams::from_milvus("FLAT", Vec::<(String, String)>::new()),
            Ok(IndexParams::Flat)
        );

        let s = SearchParams::from_milvus([("ef", "8"), ("nprobe", "4")]).unwrap();
        assert_eq!(s.ef_for(10), 10);
        assert_eq!(s.ef_for(5), 8);
        assert_eq!(s.nprobe_for(2), 2);
        assert_eq!(SearchParams::default().ef_for(10), DEFAULT_EF);
        assert_eq!(SearchParams::default().rerank_for(10, 32), 32);
        assert_eq!(SearchParams::default().rerank_for(10, 256), 40);
        let r = SearchParams::from_milvus([("refine_k", "2.5")]).unwrap();
        assert_eq!(r.rerank_for(10, 64), 25);
        assert!(SearchParams::from_milvus([("ef", "0")]).is_err());
    }

    #[test]
    fn every_kind_searches_with_milvus_scores() {
        let dim = 8;
        let data = clustered(400, dim, 12);
        let q = &data[3 * dim..4 * dim];
        let kinds = [
            IndexParams::Flat,
            IndexParams::from_milvus("HNSW", [("M", "8"), ("efConstruction", "40")]).unwrap(),
            IndexParams::from_milvus("HNSW_SQ", [("M", "8"), ("efConstruction", "40")]).unwrap(),
            IndexParams::from_milvus("IVF_FLAT", [("nlist", "8")]).unwrap(),
            IndexParams::from_milvus("IVF_SQ8", [("nlist", "8")]).unwrap(),
        ];
        for metric in [Metric::L2, Metric::IP, Metric::Cosine] {
            let flat = AnnIndex::build(&IndexParams::Flat, metric, dim, &data, 1).unwrap();
            let want = flat.search(q, 5, &SearchParams::default(), None);
            // Milvus scores: L2 ascending, similarities descending.
            if metric == Metric::L2 {
                assert!(want.windows(2).all(|w| w[0].1 <= w[1].1));
                assert_eq!(want[0], (3, 0.0));
            } else {
                assert!(want.windows(2).all(|w| w[0].1 >= w[1].1));
            }
            if metric == Metric::IP {
                let v = &data[want[0].0 as usize * dim..][..dim];
                let dot: f32 = v.iter().zip(q).map(|(a, b)| a * b).sum();
                assert!((want[0].1 - dot).abs() <= 1e-3 * dot.abs().max(1.0));
            }
            if metric == Metric::Cosine {
                assert!((want[0].1 - 1.0).abs() < 1e-4);
            }
            for p in &kinds {
                let idx = AnnIndex::build(p, metric, dim, &data, 2).unwrap();
                assert_eq!(idx.kind(), p.kind());
                assert_eq!((idx.len(), idx.dim(), idx.metric()), (400, dim, metric));
                assert!(idx.memory_bytes() >= 400 * dim);
                let sp = SearchParams {
                    ef: Some(64),
                    nprobe: Some(8),
                    ..SearchParams::default()
                };
                let got = idx.search(q, 5, &sp, None);
                assert_eq!(got.len(), 5);
                assert_eq!(got[0].0, want[0].0, "{metric:?} {:?}", p.kind());
                let allowed = Bitset::from_fn(400, |i| i % 3 == 0);
                let got = idx.search(q, 5, &sp, Some(&allowed));
                assert!(got.iter().all(|h| h.0 % 3 == 0));
            }
        }
    }
}
