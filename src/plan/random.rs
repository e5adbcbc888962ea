//! The random source of a plan (`docs/PLAN.md` §2): SHA-256 in counter
//! mode, keyed by the published seed, so that anyone with the seed and a
//! SHA-256 draws the same numbers; no floating point anywhere.

use sha2::{Digest, Sha256};

/// One named stream of 64-bit numbers: number `i` is the first 8 bytes,
/// big-endian, of SHA-256 of `yisaozhi-plan-v1/` + name + `/` + `i` in
/// decimal + `/` + the seed's UTF-8 bytes.
pub struct Stream<'a> {
    seed: &'a str,
    name: &'static str,
    counter: u64,
}

impl<'a> Stream<'a> {
    pub fn new(seed: &'a str, name: &'static str) -> Stream<'a> {
        Stream {
            seed,
            name,
            counter: 0,
        }
    }

    /// The next number of the stream.
    pub fn next_u64(&mut self) -> u64 {
        let mut h = Sha256::new();
        h.update(b"yisaozhi-plan-v1/");
        h.update(self.name.as_bytes());
        h.update(b"/");
        h.update(self.counter.to_string().as_bytes());
        h.update(b"/");
        h.update(self.seed.as_bytes());
        self.counter += 1;
        let d = h.finalize();
        u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    }

    /// A whole number in `0..n` (`n` ≥ 1), every one equally likely:
    /// numbers of the stream at or above the largest multiple of `n` that
    /// fits in 2^64 are skipped, the first one below it is taken modulo `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        // 2^64 mod n, computed without 2^64.
        let skip_from = u64::MAX - (u64::MAX % n + 1) % n;
        loop {
            let x = self.next_u64();
            if x <= skip_from {
                return x % n;
            }
        }
    }

    /// How many numbers have been taken.
    pub fn taken(&self) -> u64 {
        self.counter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_sha256_of_its_label_counter_and_seed() {
        // Pinned against `printf 'yisaozhi-plan-v1/merchants/0/2026-W23' | sha256sum`.
        let mut s = Stream::new("2026-W23", "merchants");
        let first = s.next_u64();
        let want = {
            let d = Sha256::digest(b"yisaozhi-plan-v1/merchants/0/2026-W23");
            u64::from_be_bytes(d[..8].try_into().unwrap())
        };
        assert_eq!(first, want);
        assert_eq!(s.taken(), 1);
        assert_ne!(s.next_u64(), first);
    }

    #[test]
    fn below_stays_in_range_and_skips_only_the_incomplete_top_block() {
        let mut s = Stream::new("x", "teams");
        for n in [1u64, 2, 3, 7, 1000, u64::MAX] {
            for _ in 0..50 {
                assert!(s.below(n) < n);
            }
        }
        // For a power of two nothing is ever skipped.
        let mut a = Stream::new("y", "teams");
        let mut b = Stream::new("y", "teams");
        assert_eq!(a.below(1 << 20), b.next_u64() % (1 << 20));
    }
}
