//! Cache hints (2026-07-28 `ttlMs` / `cacheScope`): what a modern downstream says about how long,
//! and how widely, its list results may be cached, and how the gateway merges them.
//!
//! Key items: [`CacheHint`], [`LEGACY_HINT`], [`CacheHint::from_result`] (read at list fetch).
//!
//! Rules: a merged answer takes the minimum `ttlMs` of its sources and is `private` if any source
//! is. A legacy downstream gives no freshness information and may change its lists at any moment,
//! so what it contributes is immediately stale and private ([`LEGACY_HINT`], the Python SDK's own
//! defaults); so is a modern result that omits or garbles its hint (nothing is read into it). The
//! merge happens when a snapshot is built, never per request.

use simd_json::prelude::*;
use simd_json::OwnedValue;

/// How long, and how widely, a client may cache a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheHint {
    /// `ttlMs`.
    pub ttl_ms: u64,
    /// `cacheScope: "private"` (else `"public"`).
    pub private: bool,
}

/// What a legacy downstream's contribution is worth: immediately stale, private.
pub const LEGACY_HINT: CacheHint = CacheHint {
    ttl_ms: 0,
    private: true,
};

impl CacheHint {
    /// The hint of a merged answer: the minimum ttl, private if either is.
    pub fn merge(self, other: CacheHint) -> CacheHint {
        CacheHint {
            ttl_ms: self.ttl_ms.min(other.ttl_ms),
            private: self.private || other.private,
        }
    }

    /// The hint a modern result object carries; [`LEGACY_HINT`] where it is missing or malformed.
    pub fn from_result(result: &OwnedValue) -> CacheHint {
        CacheHint::from_fields(result.get("ttlMs"), result.get("cacheScope"))
    }

    /// The hint from a result's `ttlMs` and `cacheScope` members; [`LEGACY_HINT`] where either is
    /// missing or malformed.
    pub fn from_fields(ttl: Option<&OwnedValue>, scope: Option<&OwnedValue>) -> CacheHint {
        match (ttl.and_then(|t| t.as_u64()), scope.and_then(|s| s.as_str())) {
            (Some(ttl_ms), Some("public")) => CacheHint {
                ttl_ms,
                private: false,
            },
            (Some(ttl_ms), Some("private")) => CacheHint {
                ttl_ms,
                private: true,
            },
            _ => LEGACY_HINT,
        }
    }

    /// `"ttlMs":N,"cacheScope":"…"` (no braces, no trailing comma).
    pub fn write(self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\"ttlMs\":");
        out.extend_from_slice(crate::wire::format_u64_id(self.ttl_ms).as_bytes());
        out.extend_from_slice(if self.private {
            b",\"cacheScope\":\"private\""
        } else {
            b",\"cacheScope\":\"public\""
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(json: &str) -> CacheHint {
        let mut b = json.as_bytes().to_vec();
        CacheHint::from_result(&simd_json::to_owned_value(&mut b).unwrap())
    }

    #[test]
    fn hints_are_read_and_missing_ones_count_as_legacy() {
        assert_eq!(
            hint(r#"{"tools":[],"ttlMs":60000,"cacheScope":"public"}"#),
            CacheHint {
                ttl_ms: 60000,
                private: false
            }
        );
        assert_eq!(
            hint(r#"{"ttlMs":5,"cacheScope":"private"}"#),
            CacheHint {
                ttl_ms: 5,
                private: true
            }
        );
        for bad in [
            r#"{"tools":[]}"#,
            r#"{"ttlMs":-1,"cacheScope":"public"}"#,
            r#"{"ttlMs":10,"cacheScope":"world"}"#,
            r#"{"ttlMs":"10","cacheScope":"public"}"#,
        ] {
            assert_eq!(hint(bad), LEGACY_HINT, "{bad}");
        }
    }

    #[test]
    fn merging_takes_the_minimum_and_private_wins() {
        let a = CacheHint {
            ttl_ms: 100,
            private: false,
        };
        let b = CacheHint {
            ttl_ms: 50,
            private: false,
        };
        assert_eq!(
            a.merge(b),
            CacheHint {
                ttl_ms: 50,
                private: false
            }
        );
        assert_eq!(a.merge(LEGACY_HINT), LEGACY_HINT);
    }
}
