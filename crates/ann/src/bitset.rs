//! A fixed-length bit set of row ids: the allowed rows of a filtered search (rows that are
//! neither deleted nor filtered out).

/// Bits `0..len`, packed 64 to a word. Bits past `len` are always zero.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bitset {
    words: Vec<u64>,
    len: usize,
}

impl Bitset {
    /// `len` clear bits.
    pub fn new(len: usize) -> Self {
        Bitset {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    /// `len` set bits.
    pub fn full(len: usize) -> Self {
        let mut b = Bitset {
            words: vec![u64::MAX; len.div_ceil(64)],
            len,
        };
        b.mask_tail();
        b
    }

    /// Bit `i` set iff `f(i)`.
    pub fn from_fn(len: usize, mut f: impl FnMut(usize) -> bool) -> Self {
        let mut b = Bitset::new(len);
        for i in 0..len {
            if f(i) {
                b.set(i);
            }
        }
        b
    }

    /// From packed words (bit `i` is bit `i % 64` of word `i / 64`), resized to `len`.
    pub fn from_words(mut words: Vec<u64>, len: usize) -> Self {
        words.resize(len.div_ceil(64), 0);
        let mut b = Bitset { words, len };
        b.mask_tail();
        b
    }

    fn mask_tail(&mut self) {
        let r = self.len % 64;
        if r != 0 {
            if let Some(w) = self.words.last_mut() {
                *w &= (1u64 << r) - 1;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether bit `i` is set (false past the end).
    #[inline]
    pub fn get(&self, i: usize) -> bool {
        i < self.len && (self.words[i >> 6] >> (i & 63)) & 1 == 1
    }

    /// Sets bit `i` (ignored past the end).
    #[inline]
    pub fn set(&mut self, i: usize) {
        if i < self.len {
            self.words[i >> 6] |= 1u64 << (i & 63);
        }
    }

    /// Clears bit `i` (ignored past the end).
    #[inline]
    pub fn unset(&mut self, i: usize) {
        if i < self.len {
            self.words[i >> 6] &= !(1u64 << (i & 63));
        }
    }

    /// Number of set bits.
    pub fn count_ones(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The set bits, ascending.
    pub fn iter_ones(&self) -> Ones<'_> {
        Ones {
            words: &self.words,
            next_word: 0,
            cur: 0,
        }
    }

    /// The packed words.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.words.capacity() * 8
    }
}

/// Iterator over the set bits of a [`Bitset`], ascending.
pub struct Ones<'a> {
    words: &'a [u64],
    next_word: usize,
    cur: u64,
}

impl Iterator for Ones<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        loop {
            if self.cur != 0 {
                let t = self.cur.trailing_zeros() as usize;
                self.cur &= self.cur - 1;
                return Some((self.next_word - 1) * 64 + t);
            }
            if self.next_word >= self.words.len() {
                return None;
            }
            self.cur = self.words[self.next_word];
            self.next_word += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_count_iterate() {
        let mut b = Bitset::new(130);
        for i in [0, 5, 63, 64, 129, 500] {
            b.set(i);
        }
        assert_eq!(b.count_ones(), 5);
        assert_eq!(b.iter_ones().collect::<Vec<_>>(), vec![0, 5, 63, 64, 129]);
        assert!(b.get(63) && !b.get(62) && !b.get(500));
        b.unset(63);
        assert!(!b.get(63));
        let f = Bitset::full(70);
        assert_eq!(f.count_ones(), 70);
        assert_eq!(f.iter_ones().last(), Some(69));
        let w = Bitset::from_words(vec![u64::MAX, u64::MAX], 65);
        assert_eq!(w.count_ones(), 65);
        assert_eq!(Bitset::from_fn(10, |i| i % 3 == 0).count_ones(), 4);
    }
}
