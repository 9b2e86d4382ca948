//! Choosing a deployed model for a request from a traffic split.
//!
//! - [`pick_weighted`]: weighted random, from a uniform draw.
//! - [`pick_sticky`]: deterministic per routing key, by weighted rendezvous hashing: every
//!   (key, deployed model) pair gets a stable pseudo-random score scaled by the model's weight, and
//!   the best score wins. The share each model gets is its percent; a key stays on its model while
//!   the split is unchanged (in every process, since the hash is fixed); and when the split
//!   changes, only keys whose winner changed move: about as few as the change requires.

use crate::TrafficSplit;

/// The deployed model for a uniform `draw` in `0..100`; `None` when the split is empty.
pub fn pick_weighted(split: &TrafficSplit, draw: u32) -> Option<&str> {
    let mut acc = 0;
    for (id, pct) in split {
        acc += pct;
        if draw < acc {
            return Some(id);
        }
    }
    None
}

/// The deployed model for a routing key; `None` when no model holds traffic.
pub fn pick_sticky<'a>(split: &'a TrafficSplit, key: &str) -> Option<&'a str> {
    split
        .iter()
        .filter(|(_, pct)| **pct > 0)
        .map(|(id, pct)| {
            // u in (0, 1]; the score -ln(u)/w is exponential with rate w, so the smallest score
            // belongs to model i with probability w_i / sum(w).
            let u = ((stable_hash(key, id) >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
            (id.as_str(), -u.ln() / f64::from(*pct))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(id, _)| id)
}

/// FNV-1a over both strings, finished with splitmix64: fixed across builds and machines (unlike
/// std's hasher), well mixed.
fn stable_hash(a: &str, b: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in a.bytes().chain([0xff]).chain(b.bytes()) {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn split(pairs: &[(&str, u32)]) -> TrafficSplit {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn weighted_covers_the_split() {
        let s = split(&[("1", 90), ("2", 10)]);
        let ones = (0..100)
            .filter(|&d| pick_weighted(&s, d) == Some("1"))
            .count();
        assert_eq!(ones, 90);
        assert_eq!(pick_weighted(&TrafficSplit::new(), 5), None);
    }

    #[test]
    fn sticky_shares_follow_the_split_and_few_keys_move() {
        let keys: Vec<String> = (0..20_000).map(|i| format!("user-{i}")).collect();
        let a = split(&[("1", 90), ("2", 10)]);
        let b = split(&[("1", 80), ("2", 20)]);
        let on_a: Vec<&str> = keys.iter().map(|k| pick_sticky(&a, k).unwrap()).collect();
        let twos = on_a.iter().filter(|&&m| m == "2").count() as f64 / keys.len() as f64;
        assert!((twos - 0.10).abs() < 0.01, "share of model 2: {twos}");
        // Same split, same answer, every time.
        assert!(keys
            .iter()
            .zip(&on_a)
            .all(|(k, m)| pick_sticky(&a, k) == Some(*m)));
        // 90/10 -> 80/20 needs 10% of keys to move; rendezvous moves about that many, and only
        // towards the model that gained.
        let moved: Vec<(&str, &str)> = keys
            .iter()
            .zip(&on_a)
            .map(|(k, m)| (*m, pick_sticky(&b, k).unwrap()))
            .filter(|(x, y)| x != y)
            .collect();
        let fraction = moved.len() as f64 / keys.len() as f64;
        assert!(fraction < 0.13, "{fraction} of keys moved");
        assert!(moved.iter().all(|(from, to)| *from == "1" && *to == "2"));
        // A model with 0% gets no key.
        let c = split(&[("1", 100), ("2", 0)]);
        assert!(keys.iter().all(|k| pick_sticky(&c, k) == Some("1")));
    }
}
