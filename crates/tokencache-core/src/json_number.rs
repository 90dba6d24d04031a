//! JSON numbers as auth0-spa-js writes them: integers stay integers, fractions stay fractions.

use serde::{Deserialize, Deserializer, Serializer};

/// Largest integer a JavaScript number (and an `f64`) holds exactly.
const MAX_SAFE: f64 = 9_007_199_254_740_991.0;

fn write_f64<S: Serializer>(v: f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() <= MAX_SAFE {
        s.serialize_i64(v as i64)
    } else {
        s.serialize_f64(v)
    }
}

/// `Option<f64>` that serializes integral values as JSON integers.
pub(crate) mod opt_f64 {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => write_f64(*v, s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Option::<f64>::deserialize(d)
    }
}

/// `f64` that serializes integral values as JSON integers.
pub(crate) mod f64_int {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        write_f64(*v, s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        f64::deserialize(d)
    }
}

/// A timestamp in whole seconds that also accepts a fractional JSON number (as
/// auth0-spa-js writes when `expires_in` was fractional), rounded down. Expiry compares
/// it with whole seconds, so rounding down never changes an outcome.
pub(crate) mod floor_i64 {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(*v)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let n = serde_json::Number::deserialize(d)?;
        if let Some(i) = n.as_i64() {
            return Ok(i);
        }
        match n.as_f64() {
            Some(f) if f.is_finite() && f.abs() <= MAX_SAFE => Ok(f.floor() as i64),
            _ => Err(serde::de::Error::custom("expiresAt out of range")),
        }
    }

    /// For an `Option<i64>`.
    pub(crate) mod opt {
        use super::*;

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<i64>, D::Error> {
            #[derive(Deserialize)]
            struct W(#[serde(with = "super")] i64);
            Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
        }
    }
}
