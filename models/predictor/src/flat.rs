//! Numeric instances parsed straight into one `f64` buffer: a nested JSON array of numbers (or
//! booleans) scanned byte by byte, giving exactly the values the JSON path (`serde_json::Value`,
//! then `flatten_numbers`) would give, without a `Value` per element.
//!
//! Numbers whose value one IEEE operation gives exactly (at most 2^53 as a significand, a power
//! of ten up to 1e22) are computed here the way serde_json computes them; any other number is
//! handed to serde_json itself. Anything that is not a strictly rectangular array of numbers
//! (objects, strings, null, ragged arrays, malformed JSON) returns `false` and takes the JSON
//! path, which says precisely what is wrong.

/// Deepest nesting scanned here; deeper arrays take the JSON path.
const MAX_DEPTH: usize = 32;

/// Largest significand converted here: every integer up to it is an exact `f64`.
const MAX_EXACT: u64 = 1 << 53;

/// Powers of ten that are exact `f64`s.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Appends the numbers of `text` to `out` when it is a rectangular nested array of numbers
/// with exactly `volume` values; otherwise leaves `out` as it was and returns `false`.
pub fn parse_into(text: &str, volume: usize, out: &mut Vec<f64>) -> bool {
    let start = out.len();
    let ok = volume > 0
        && Scanner {
            bytes: text.as_bytes(),
            at: 0,
            out,
        }
        .array()
        .is_some()
        && out.len() - start == volume;
    if !ok {
        out.truncate(start);
    }
    ok
}

struct Scanner<'a, 'o> {
    bytes: &'a [u8],
    at: usize,
    out: &'o mut Vec<f64>,
}

impl Scanner<'_, '_> {
    /// The whole text as one array. Only strictly rectangular arrays pass: every row at a
    /// depth has the same length and every number sits at the same depth (where the JSON path
    /// would accept more, it takes over).
    fn array(&mut self) -> Option<()> {
        self.skip_ws();
        self.expect(b'[')?;
        // Row length at each depth once a row there has closed, and the open rows' counts.
        let mut shape = [usize::MAX; MAX_DEPTH];
        let mut counts = [0usize; MAX_DEPTH];
        let mut depth = 0usize;
        let mut leaf = None;
        loop {
            // At the start of an element, or at the `]` of an empty array.
            self.skip_ws();
            let b = *self.bytes.get(self.at)?;
            if b == b']' && counts[depth] == 0 {
                self.at += 1;
            } else {
                if b == b'[' {
                    self.at += 1;
                    depth += 1;
                    if depth >= MAX_DEPTH || leaf.is_some_and(|l| l < depth) {
                        return None;
                    }
                    counts[depth] = 0;
                    continue;
                }
                match leaf {
                    None => leaf = Some(depth),
                    Some(l) if l == depth => {}
                    Some(_) => return None,
                }
                let v = self.scalar()?;
                self.out.push(v);
                counts[depth] += 1;
                if self.separator()? {
                    continue;
                }
            }
            // A row closed at `depth`: inner rows finish first, so lengths are recorded as
            // they come.
            loop {
                match shape[depth] {
                    usize::MAX => shape[depth] = counts[depth],
                    n if n == counts[depth] => {}
                    _ => return None,
                }
                if depth == 0 {
                    self.skip_ws();
                    return (self.at == self.bytes.len()).then_some(());
                }
                depth -= 1;
                counts[depth] += 1;
                if self.separator()? {
                    // The next element must be a row too; `[` is checked above.
                    break;
                }
            }
        }
    }

    /// What follows an element: `,` (`true`: another element) or `]` (`false`: the row ends).
    fn separator(&mut self) -> Option<bool> {
        self.skip_ws();
        let more = match *self.bytes.get(self.at)? {
            b',' => true,
            b']' => false,
            _ => return None,
        };
        self.at += 1;
        Some(more)
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        (self.bytes.get(self.at) == Some(&b)).then(|| self.at += 1)
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        let end = self.at + word.len();
        if self.bytes.get(self.at..end) == Some(word) {
            self.at = end;
            true
        } else {
            false
        }
    }

    /// A number, or a boolean as 0/1 (as the JSON path takes them).
    fn scalar(&mut self) -> Option<f64> {
        if self.literal(b"true") {
            return Some(1.0);
        }
        if self.literal(b"false") {
            return Some(0.0);
        }
        let begin = self.at;
        let negative = self.bytes.get(self.at) == Some(&b'-');
        if negative {
            self.at += 1;
        }
        let mut significand = 0u64;
        let mut exact = true;
        // Integer part: `0` alone or a non-zero digit first (JSON has no leading zeros).
        match self.bytes.get(self.at) {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(&mut significand, &mut exact),
            _ => return None,
        }
        if matches!(self.bytes.get(self.at), Some(b'0'..=b'9')) {
            return None;
        }
        let mut exponent = 0i64;
        let mut integer = true;
        if self.bytes.get(self.at) == Some(&b'.') {
            integer = false;
            self.at += 1;
            let from = self.at;
            self.digits(&mut significand, &mut exact);
            if self.at == from {
                return None;
            }
            exponent -= (self.at - from) as i64;
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.at) {
            integer = false;
            self.at += 1;
            let sign = match self.bytes.get(self.at) {
                Some(b'-') => {
                    self.at += 1;
                    -1
                }
                Some(b'+') => {
                    self.at += 1;
                    1
                }
                _ => 1,
            };
            let from = self.at;
            let mut e = 0i64;
            while let Some(&d @ b'0'..=b'9') = self.bytes.get(self.at) {
                e = e.saturating_mul(10).saturating_add(i64::from(d - b'0'));
                self.at += 1;
            }
            if self.at == from {
                return None;
            }
            exponent = exponent.saturating_add(sign * e);
        }
        // `-0` as an integer differs between serde_json versions: leave it to serde_json.
        let simple = exact
            && significand <= MAX_EXACT
            && exponent.unsigned_abs() < POW10.len() as u64
            && !(integer && negative && significand == 0);
        if !simple {
            // The number is valid JSON: serde_json computes it as the JSON path would.
            let token = std::str::from_utf8(&self.bytes[begin..self.at]).ok()?;
            return serde_json::from_str::<f64>(token).ok();
        }
        // One correctly rounded operation, the same one serde_json performs here. Both are
        // computed and one is picked: integers and decimals alternate unpredictably in real
        // data, and a mispredicted branch costs more than the spare operation.
        let magnitude = significand as f64;
        let pow = POW10[exponent.unsigned_abs() as usize];
        let (scaled_up, scaled_down) = (magnitude * pow, magnitude / pow);
        let value = if exponent >= 0 {
            scaled_up
        } else {
            scaled_down
        };
        // The sign as serde_json applies it (`-0.0` for "-0.0").
        Some(f64::from_bits(
            value.to_bits() | (u64::from(negative) << 63),
        ))
    }

    /// Decimal digits appended to `significand`; `exact` turns false once it overflows.
    fn digits(&mut self, significand: &mut u64, exact: &mut bool) {
        while let Some(&d @ b'0'..=b'9') = self.bytes.get(self.at) {
            match significand
                .checked_mul(10)
                .and_then(|s| s.checked_add(u64::from(d - b'0')))
            {
                Some(s) => *significand = s,
                None => *exact = false,
            }
            self.at += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use litehouse_models::instances::flatten_numbers;

    fn json_path(text: &str) -> Vec<f64> {
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        flatten_numbers(&value).unwrap().0
    }

    fn same_bits(text: &str) {
        let expected = json_path(text);
        let mut out = vec![];
        assert!(parse_into(text, expected.len(), &mut out), "{text}");
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&out), bits(&expected), "{text}");
    }

    #[test]
    fn the_same_values_as_the_json_path() {
        for text in [
            "[5, 162, 60]",
            "[[0.1, 0.2], [1e-3, -7]]",
            "[0.30000000000000004, 123456789012345678, true, false]",
            "[[[1],[2]],[[3],[4]]]",
            " [ 1 ,\t2\r\n, 3 ] ",
            "[-0, -0.0, 0e5, -0E-3, 1E+2, 2.5e-1]",
            "[18446744073709551615, 18446744073709551616, -9223372036854775808]",
            "[1e308, 1e-320, 4.9e-324, 2.2250738585072014e-308]",
            "[0.1234567890123456789012345, 9007199254740993, 1e23, 123456789e-30]",
        ] {
            same_bits(text);
        }
    }

    #[test]
    fn generated_numbers_match_the_json_path_bit_for_bit() {
        let mut rng = fastrand::Rng::with_seed(21);
        for _ in 0..2_000 {
            let numbers: Vec<String> = (0..16)
                .map(|_| {
                    let mut s = String::new();
                    if rng.bool() {
                        s.push('-');
                    }
                    let int_digits = rng.usize(1..=20);
                    s.push(char::from(b'0' + rng.u8(1..=9)));
                    for _ in 1..int_digits {
                        s.push(char::from(b'0' + rng.u8(0..=9)));
                    }
                    if rng.u8(0..4) == 0 {
                        s = s.replace(|c: char| c.is_ascii_digit(), "").to_string() + "0";
                    }
                    if rng.bool() {
                        s.push('.');
                        for _ in 0..rng.usize(1..=24) {
                            s.push(char::from(b'0' + rng.u8(0..=9)));
                        }
                    }
                    if rng.u8(0..3) == 0 {
                        s.push(if rng.bool() { 'e' } else { 'E' });
                        match rng.u8(0..3) {
                            0 => s.push('-'),
                            1 => s.push('+'),
                            _ => {}
                        }
                        s.push_str(&rng.u16(0..=330).to_string());
                    }
                    s
                })
                .collect();
            let text = format!("[{}]", numbers.join(","));
            // Exponents past f64's range are errors on both paths.
            if serde_json::from_str::<serde_json::Value>(&text).is_err() {
                let mut out = vec![];
                assert!(!parse_into(&text, 16, &mut out), "{text}");
                continue;
            }
            same_bits(&text);
        }
    }

    #[test]
    fn anything_else_is_left_to_the_json_path() {
        for (text, volume) in [
            ("[1, 2]", 3),
            ("[[1, 2], [3]]", 3),
            ("[[1], [2, 3]]", 3),
            ("[1, [2, 3]]", 3),
            ("[[2, 3], 1]", 3),
            ("[[1, 2], [[3, 4]]]", 4),
            ("[]", 0),
            ("[[], []]", 0),
            (r#"["a", 1]"#, 2),
            (r#"{"x": [1]}"#, 1),
            ("[null, 1]", 2),
            ("[1, 2", 2),
            ("[1, 2,]", 2),
            ("[1,, 2]", 2),
            ("[,1]", 1),
            ("[1 2]", 2),
            ("[1, 2] x", 2),
            ("[1, 2]]", 2),
            ("[01, 2]", 2),
            ("[1., 2]", 2),
            ("[.5, 2]", 2),
            ("[+1, 2]", 2),
            ("[1e, 2]", 2),
            ("[-, 2]", 2),
            ("[1e999, 2]", 2),
            ("[NaN, 2]", 2),
            ("[truex, 2]", 2),
            ("\u{feff}[1, 2]", 2),
            ("[1, 2]\u{a0}", 2),
            ("7", 1),
            (&format!("{}1{}", "[".repeat(40), "]".repeat(40)), 1),
        ] {
            let mut out = vec![9.0];
            assert!(!parse_into(text, volume, &mut out), "{text}");
            assert_eq!(out, vec![9.0], "{text}: nothing appended");
        }
    }
}
