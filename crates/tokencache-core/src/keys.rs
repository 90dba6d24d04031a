//! [`Keys`]: a listing of a cache's keys that shares the key strings.

use std::fmt;
use std::ops::{Deref, Range};
use std::sync::Arc;

/// A listing of keys, as [`Cache::all_keys`](crate::Cache::all_keys) and
/// [`Cache::keys_with_prefix`](crate::Cache::keys_with_prefix) return it: a shared slice
/// of shared strings.
///
/// Cloning a `Keys` or taking a [`Keys::slice`] of it copies no key: a cache that keeps
/// its listing between writes (the memory backend does) hands out the same one to every
/// caller, much as V8 hands out references to an object's key strings. It dereferences to
/// `[Arc<str>]`; iterating a `&Keys` gives `&str`.
///
/// ```
/// use tokencache_core::Keys;
///
/// let keys = Keys::from(vec!["a::1".to_owned(), "a::2".to_owned(), "b::1".to_owned()]);
/// assert_eq!(keys.len(), 3);
/// assert!(keys.contains("a::2"));
/// assert_eq!(keys.slice(0..2), ["a::1", "a::2"]);
/// let listed: Vec<&str> = keys.iter().collect();
/// assert_eq!(listed, ["a::1", "a::2", "b::1"]);
/// ```
#[derive(Clone)]
pub struct Keys {
    all: Arc<[Arc<str>]>,
    range: Range<usize>,
}

impl Keys {
    /// No keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// The keys, as strings.
    #[inline]
    pub fn iter(&self) -> KeysIter<'_> {
        KeysIter(self.as_slice().iter())
    }

    /// The keys as a slice of shared strings.
    #[inline]
    pub fn as_slice(&self) -> &[Arc<str>] {
        &self.all[self.range.clone()]
    }

    /// Whether `key` is one of the keys (a linear search).
    pub fn contains(&self, key: &str) -> bool {
        self.iter().any(|k| k == key)
    }

    /// The keys at `range` (positions in this listing), sharing this listing's slice.
    ///
    /// # Panics
    ///
    /// When `range` is not within `0..self.len()`, like slice indexing.
    #[inline]
    pub fn slice(&self, range: Range<usize>) -> Keys {
        let _ = &self.as_slice()[range.clone()];
        Keys {
            all: self.all.clone(),
            range: self.range.start + range.start..self.range.start + range.end,
        }
    }

    /// The keys as owned strings (one allocation a key).
    pub fn to_strings(&self) -> Vec<String> {
        self.iter().map(str::to_owned).collect()
    }
}

impl Default for Keys {
    fn default() -> Self {
        Keys {
            all: Arc::from([]),
            range: 0..0,
        }
    }
}

impl Deref for Keys {
    type Target = [Arc<str>];

    #[inline]
    fn deref(&self) -> &[Arc<str>] {
        self.as_slice()
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl From<Vec<Arc<str>>> for Keys {
    fn from(keys: Vec<Arc<str>>) -> Self {
        let range = 0..keys.len();
        Keys {
            all: keys.into(),
            range,
        }
    }
}

impl From<Vec<String>> for Keys {
    fn from(keys: Vec<String>) -> Self {
        keys.into_iter().collect()
    }
}

impl From<Keys> for Vec<String> {
    fn from(keys: Keys) -> Self {
        keys.to_strings()
    }
}

impl FromIterator<Arc<str>> for Keys {
    fn from_iter<I: IntoIterator<Item = Arc<str>>>(iter: I) -> Self {
        Keys::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl FromIterator<String> for Keys {
    fn from_iter<I: IntoIterator<Item = String>>(iter: I) -> Self {
        iter.into_iter().map(Arc::<str>::from).collect()
    }
}

impl<'a> FromIterator<&'a str> for Keys {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> Self {
        iter.into_iter().map(Arc::<str>::from).collect()
    }
}

/// The keys of a [`Keys`], as `&str`.
#[derive(Clone, Debug)]
pub struct KeysIter<'a>(std::slice::Iter<'a, Arc<str>>);

impl<'a> Iterator for KeysIter<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        self.0.next().map(|k| &**k)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for KeysIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|k| &**k)
    }
}

impl ExactSizeIterator for KeysIter<'_> {}

impl<'a> IntoIterator for &'a Keys {
    type Item = &'a str;
    type IntoIter = KeysIter<'a>;

    #[inline]
    fn into_iter(self) -> KeysIter<'a> {
        self.iter()
    }
}

/// The keys of an owned [`Keys`], as shared strings (each a reference count, no copy).
#[derive(Clone, Debug)]
pub struct KeysIntoIter {
    keys: Keys,
}

impl Iterator for KeysIntoIter {
    type Item = Arc<str>;

    fn next(&mut self) -> Option<Arc<str>> {
        let range = &mut self.keys.range;
        let at = range.next()?;
        Some(self.keys.all[at].clone())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.keys.range.size_hint()
    }
}

impl ExactSizeIterator for KeysIntoIter {}

impl IntoIterator for Keys {
    type Item = Arc<str>;
    type IntoIter = KeysIntoIter;

    fn into_iter(self) -> KeysIntoIter {
        KeysIntoIter { keys: self }
    }
}

impl PartialEq for Keys {
    fn eq(&self, other: &Keys) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Keys {}

impl<S: AsRef<str>> PartialEq<[S]> for Keys {
    fn eq(&self, other: &[S]) -> bool {
        self.iter().eq(other.iter().map(AsRef::as_ref))
    }
}

impl<S: AsRef<str>> PartialEq<&[S]> for Keys {
    fn eq(&self, other: &&[S]) -> bool {
        *self == **other
    }
}

impl<S: AsRef<str>, const N: usize> PartialEq<[S; N]> for Keys {
    fn eq(&self, other: &[S; N]) -> bool {
        *self == other[..]
    }
}

impl<S: AsRef<str>> PartialEq<Vec<S>> for Keys {
    fn eq(&self, other: &Vec<S>) -> bool {
        *self == other[..]
    }
}

impl<S: AsRef<str>> PartialEq<Keys> for Vec<S> {
    fn eq(&self, other: &Keys) -> bool {
        *other == self[..]
    }
}

impl serde::Serialize for Keys {
    fn serialize<Se: serde::Serializer>(&self, serializer: Se) -> Result<Se::Ok, Se::Error> {
        serializer.collect_seq(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slice_shares_and_compares_by_content() {
        let keys: Keys = ["a", "b", "c", "d"].into_iter().collect();
        let middle = keys.slice(1..3);
        assert_eq!(middle, ["b", "c"]);
        assert_eq!(middle.slice(1..2), vec!["c"]);
        assert!(Arc::ptr_eq(&middle[0], &keys[1]));
        assert_eq!(middle.iter().rev().collect::<Vec<_>>(), ["c", "b"]);
        assert_eq!(middle.clone().into_iter().count(), 2);
        assert_eq!(middle, Keys::from(vec!["b".to_owned(), "c".to_owned()]));
        assert_ne!(middle, keys);
        assert!(Keys::new().is_empty());
        assert_eq!(format!("{middle:?}"), r#"["b", "c"]"#);
        assert_eq!(serde_json::to_string(&middle).unwrap(), r#"["b","c"]"#);
        assert_eq!(Vec::<String>::from(middle), ["b", "c"]);
    }

    #[test]
    #[should_panic]
    fn a_slice_out_of_range_panics() {
        let keys: Keys = ["a"].into_iter().collect();
        let _ = keys.slice(0..2);
    }
}
