//! Numeric instances parsed straight into one `f64` buffer: a nested JSON array of numbers (or
//! booleans) read by serde_json's own number parser, so the values are exactly those the JSON
//! path (`serde_json::Value`, then `flatten_numbers`) would give, without a `Value` per element.
//! Anything else (objects, strings, ragged arrays) returns `None` and takes the JSON path, which
//! says precisely what is wrong.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, SeqAccess, Visitor};

/// Appends the numbers of `text` to `out` when it is a rectangular nested array of numbers
/// with exactly `volume` values; otherwise leaves `out` as it was and returns `false`.
pub fn parse_into(text: &str, volume: usize, out: &mut Vec<f64>) -> bool {
    let start = out.len();
    let mut shape = Vec::new();
    let mut leaf = None;
    let mut de = serde_json::Deserializer::from_str(text);
    let ok = Level {
        depth: 0,
        shape: &mut shape,
        leaf: &mut leaf,
        out,
    }
    .deserialize(&mut de)
    .is_ok()
        && de.end().is_ok()
        && !shape.is_empty()
        && volume > 0
        && out.len() - start == volume;
    if !ok {
        out.truncate(start);
    }
    ok
}

/// One array level of the walk. Only strictly rectangular arrays pass: every row at a depth has
/// the same length and every number sits at the same depth (where the JSON path would accept
/// more, it takes over).
struct Level<'a> {
    depth: usize,
    /// Row length at each depth, once seen.
    shape: &'a mut Vec<Option<usize>>,
    /// The depth numbers live at, once one is seen.
    leaf: &'a mut Option<usize>,
    out: &'a mut Vec<f64>,
}

/// A number, or a nested array under a [`Level`].
struct Item<'a, 'b>(&'b mut Level<'a>);

impl<'de> DeserializeSeed<'de> for Level<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(mut self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(ArrayVisitor(&mut self))
    }
}

struct ArrayVisitor<'a, 'b>(&'b mut Level<'a>);

impl<'de> Visitor<'de> for ArrayVisitor<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of numbers")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let level = self.0;
        let mut n = 0usize;
        while seq.next_element_seed(Item(level))?.is_some() {
            n += 1;
        }
        // Inner rows finish before their parent, so lengths are recorded by depth as they come.
        let depth = level.depth;
        if level.shape.len() <= depth {
            level.shape.resize(depth + 1, None);
        }
        match level.shape[depth] {
            None => level.shape[depth] = Some(n),
            Some(m) if m == n => {}
            Some(_) => return Err(serde::de::Error::custom("ragged")),
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Item<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Item<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number or an array")
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        self.number(v as f64)
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        self.number(v as f64)
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        self.number(v)
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(), E> {
        // Booleans count as 0/1, as the JSON path takes them.
        self.number(f64::from(u8::from(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        let level = self.0;
        let depth = level.depth + 1;
        if level.leaf.is_some_and(|leaf| leaf <= depth) {
            return Err(serde::de::Error::custom(
                "an array where numbers were expected",
            ));
        }
        let mut inner = Level {
            depth,
            shape: level.shape,
            leaf: level.leaf,
            out: level.out,
        };
        ArrayVisitor(&mut inner).visit_seq(seq)
    }
}

impl Item<'_, '_> {
    fn number<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        let depth = self.0.depth + 1;
        match *self.0.leaf {
            None => *self.0.leaf = Some(depth),
            Some(leaf) if leaf == depth => {}
            Some(_) => return Err(E::custom("numbers at different depths")),
        }
        self.0.out.push(v);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use litehouse_models::instances::flatten_numbers;

    #[test]
    fn the_same_values_as_the_json_path() {
        for text in [
            "[5, 162, 60]",
            "[[0.1, 0.2], [1e-3, -7]]",
            "[0.30000000000000004, 123456789012345678, true]",
            "[[[1],[2]],[[3],[4]]]",
        ] {
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            let (expected, _) = flatten_numbers(&value).unwrap();
            let mut out = vec![];
            assert!(parse_into(text, expected.len(), &mut out), "{text}");
            assert_eq!(out, expected, "{text}");
        }
    }

    #[test]
    fn anything_else_is_left_to_the_json_path() {
        for (text, volume) in [
            ("[1, 2]", 3),
            ("[[1, 2], [3]]", 3),
            ("[1, [2, 3]]", 3),
            ("[[2, 3], 1]", 3),
            ("[[1, 2], [[3, 4]]]", 4),
            ("[]", 0),
            (r#"["a", 1]"#, 2),
            (r#"{"x": [1]}"#, 1),
            ("[1, 2", 2),
            ("[1, 2] x", 2),
            ("7", 1),
        ] {
            let mut out = vec![9.0];
            assert!(!parse_into(text, volume, &mut out), "{text}");
            assert_eq!(out, vec![9.0], "{text}: nothing appended");
        }
    }
}
