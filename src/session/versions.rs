//! Protocol versions: negotiation for the legacy era (2024-11-05 … 2025-11-25) and the per-request
//! versions of the modern era (2026-07-28).
//!
//! Legacy: the gateway answers `initialize` itself: if the client asks for a version it speaks, it
//! agrees; otherwise it offers its latest, as the lifecycle spec requires. The `MCP-Protocol-Version`
//! header on later requests must name a supported version (HTTP 400 otherwise).
//!
//! Modern: there is no handshake; every request names its version in `_meta` (and, on HTTP, in the
//! `MCP-Protocol-Version` header). [`MODERN`] lists what the gateway serves that way; [`ALL`] is
//! what `server/discover` and the -32022 error advertise (the gateway is dual-era, so a client may
//! also fall back to `initialize` at any legacy version).

/// Versions the front speaks, newest first. The index is stored in sealed session ids.
pub const SUPPORTED: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// The newest legacy-era version.
pub const LATEST: &str = SUPPORTED[0];

/// The version assumed when a request carries no `MCP-Protocol-Version` header (per the
/// 2025-06-18 transport spec, for backwards compatibility).
pub const ASSUMED_WITHOUT_HEADER: &str = "2025-03-26";

/// Modern-era (per-request `_meta`) versions the gateway serves, newest first.
pub const MODERN: [&str; 1] = ["2026-07-28"];

/// The newest modern-era version (the gateway probes downstreams with it).
pub const LATEST_MODERN: &str = MODERN[0];

/// Every version the gateway speaks, newest first: what `server/discover` advertises.
pub const ALL: [&str; 5] = [
    MODERN[0],
    SUPPORTED[0],
    SUPPORTED[1],
    SUPPORTED[2],
    SUPPORTED[3],
];

/// [`ALL`] as a JSON array (pre-encoded for `server/discover` and -32022 `data.supported`).
pub const ALL_JSON: &str = r#"["2026-07-28","2025-11-25","2025-06-18","2025-03-26","2024-11-05"]"#;

/// Whether `version` is a modern-era version the gateway serves.
pub fn is_modern(version: &[u8]) -> bool {
    MODERN.iter().any(|v| v.as_bytes() == version)
}

/// Index of `version` in [`SUPPORTED`], if the gateway speaks it.
pub fn index_of(version: &[u8]) -> Option<u8> {
    SUPPORTED
        .iter()
        .position(|v| v.as_bytes() == version)
        .map(|i| i as u8)
}

/// The version to answer an `initialize` that requested `requested`.
pub fn negotiate(requested: Option<&[u8]>) -> u8 {
    requested.and_then(index_of).unwrap_or(0)
}

/// Whether JSON-RPC batches are allowed on a session of this version (only 2025-03-26 had them).
pub fn allows_batches(version_index: u8) -> bool {
    SUPPORTED.get(version_index as usize) == Some(&"2025-03-26")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_agrees_or_offers_latest() {
        assert_eq!(
            SUPPORTED[negotiate(Some(b"2024-11-05")) as usize],
            "2024-11-05"
        );
        assert_eq!(SUPPORTED[negotiate(Some(b"1999-01-01")) as usize], LATEST);
        assert_eq!(SUPPORTED[negotiate(None) as usize], LATEST);
    }

    #[test]
    fn the_advertised_lists_agree() {
        let parsed: Vec<String> = serde_json::from_str(ALL_JSON).unwrap();
        assert_eq!(parsed, ALL);
        assert!(is_modern(b"2026-07-28"));
        assert!(!is_modern(LATEST.as_bytes()));
        assert!(ALL
            .iter()
            .all(|v| is_modern(v.as_bytes()) != index_of(v.as_bytes()).is_some()));
    }

    #[test]
    fn only_2025_03_26_allows_batches() {
        for (i, v) in SUPPORTED.iter().enumerate() {
            assert_eq!(allows_batches(i as u8), *v == "2025-03-26");
        }
    }
}
