//! Confidence intervals for decode rates and for the paired difference
//! between the printed code and its baseline (the same photo conditions in
//! each trial, so the comparison is paired).

/// z for a two-sided 95 % interval.
pub const Z95: f64 = 1.959_963_985;

/// Wilson score interval for `k` successes out of `n`.
pub fn wilson(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Paired comparison of two readers of the same trials.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paired {
    pub n: usize,
    /// Trials where only the first succeeded.
    pub only_a: usize,
    /// Trials where only the second succeeded.
    pub only_b: usize,
}

impl Paired {
    /// Rate of `a` minus rate of `b`.
    pub fn diff(&self) -> f64 {
        (self.only_a as f64 - self.only_b as f64) / self.n.max(1) as f64
    }

    /// 95 % interval of [`Paired::diff`], Newcombe's method 10 (Wilson
    /// intervals of both margins with the correlation correction), which
    /// behaves where the Wald interval does not (few discordant pairs).
    pub fn diff_interval(&self, both: usize) -> (f64, f64) {
        let n = self.n;
        if n == 0 {
            return (-1.0, 1.0);
        }
        let a_ok = both + self.only_a;
        let b_ok = both + self.only_b;
        let (p1, p2) = (a_ok as f64 / n as f64, b_ok as f64 / n as f64);
        let (l1, u1) = wilson(a_ok, n);
        let (l2, u2) = wilson(b_ok, n);
        let neither = n - both - self.only_a - self.only_b;
        // Correlation of the 2 × 2 table with Newcombe's correction (as in
        // Altman et al., "Statistics with confidence", ch. 6): a positive
        // `ad - bc` shrinks by n/2, a small one counts as none.
        let (a, b, c, d) = (
            both as f64,
            self.only_a as f64,
            self.only_b as f64,
            neither as f64,
        );
        let denom = ((a + b) * (c + d) * (a + c) * (b + d)).sqrt();
        let cross = a * d - b * c;
        let corrected = if cross > n as f64 / 2.0 {
            cross - n as f64 / 2.0
        } else if cross < 0.0 {
            cross
        } else {
            0.0
        };
        let phi = if denom > 0.0 { corrected / denom } else { 0.0 };
        let dl = p1 - l1;
        let ul = u1 - p1;
        let dl2 = p2 - l2;
        let ul2 = u2 - p2;
        let d = p1 - p2;
        let lower = d - (dl * dl - 2.0 * phi * dl * ul2 + ul2 * ul2).max(0.0).sqrt();
        let upper = d + (ul * ul - 2.0 * phi * ul * dl2 + dl2 * dl2).max(0.0).sqrt();
        (lower.max(-1.0), upper.min(1.0))
    }

    /// Two-sided exact McNemar p-value (binomial test on the discordant
    /// pairs).
    pub fn mcnemar_p(&self) -> f64 {
        let m = self.only_a + self.only_b;
        if m == 0 {
            return 1.0;
        }
        let k = self.only_a.min(self.only_b);
        // P(X <= k) for X ~ Bin(m, 1/2), summed in log space.
        let mut log_c = 0.0f64; // ln C(m, 0)
        let mut tail = 0.0f64;
        let ln_half_m = m as f64 * 0.5f64.ln();
        for i in 0..=k {
            if i > 0 {
                log_c += ((m - i + 1) as f64).ln() - (i as f64).ln();
            }
            tail += (log_c + ln_half_m).exp();
        }
        (2.0 * tail).min(1.0)
    }
}
