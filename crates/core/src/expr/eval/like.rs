//! `like` patterns: compiled once into an exact, prefix, suffix or infix match when
//! the pattern allows, else a general wildcard matcher.

/// A compiled `like` pattern: `%` matches any run of characters, `_` exactly one,
/// and a backslash makes the next character literal. The whole string must match.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(in crate::expr) enum LikePattern {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Infix(String),
    General(Vec<LikeTok>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(in crate::expr) enum LikeTok {
    Lit(char),
    One,
    Any,
}

fn literal(toks: &[LikeTok]) -> Option<String> {
    toks.iter()
        .map(|t| match t {
            LikeTok::Lit(c) => Some(*c),
            LikeTok::One | LikeTok::Any => None,
        })
        .collect()
}

impl LikePattern {
    pub(in crate::expr) fn new(pattern: &str) -> LikePattern {
        let mut toks = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => toks.push(LikeTok::Lit(chars.next().unwrap_or('\\'))),
                '%' => {
                    if toks.last() != Some(&LikeTok::Any) {
                        toks.push(LikeTok::Any);
                    }
                }
                '_' => toks.push(LikeTok::One),
                c => toks.push(LikeTok::Lit(c)),
            }
        }
        let n = toks.len();
        let starts_any = toks.first() == Some(&LikeTok::Any);
        let ends_any = toks.last() == Some(&LikeTok::Any);
        if let Some(s) = literal(&toks) {
            return LikePattern::Exact(s);
        }
        if ends_any && !starts_any {
            if let Some(s) = literal(&toks[..n - 1]) {
                return LikePattern::Prefix(s);
            }
        }
        if starts_any && !ends_any {
            if let Some(s) = literal(&toks[1..]) {
                return LikePattern::Suffix(s);
            }
        }
        if starts_any && ends_any && n >= 2 {
            if let Some(s) = literal(&toks[1..n - 1]) {
                return LikePattern::Infix(s);
            }
        }
        LikePattern::General(toks)
    }

    pub(in crate::expr) fn matches(&self, s: &str) -> bool {
        match self {
            LikePattern::Exact(p) => s == p,
            LikePattern::Prefix(p) => s.starts_with(p.as_str()),
            LikePattern::Suffix(p) => s.ends_with(p.as_str()),
            LikePattern::Infix(p) => s.contains(p.as_str()),
            LikePattern::General(toks) => {
                let chars: Vec<char> = s.chars().collect();
                wildcard_match(toks, &chars)
            }
        }
    }
}

/// Iterative wildcard matching with single-star backtracking: O(len(s) * len(pat))
/// at worst, no recursion.
fn wildcard_match(pat: &[LikeTok], s: &[char]) -> bool {
    let (mut p, mut i) = (0usize, 0usize);
    // The last `%` seen and the input position it is currently assumed to stop at.
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        match pat.get(p) {
            Some(LikeTok::Any) => {
                star = Some((p, i));
                p += 1;
                continue;
            }
            Some(LikeTok::One) => {
                p += 1;
                i += 1;
                continue;
            }
            Some(LikeTok::Lit(c)) if *c == s[i] => {
                p += 1;
                i += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, si)) => {
                p = sp + 1;
                i = si + 1;
                star = Some((sp, si + 1));
            }
            None => return false,
        }
    }
    pat[p..].iter().all(|t| *t == LikeTok::Any)
}
