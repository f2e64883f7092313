//! Protocol version negotiation for the legacy era (2024-11-05 … 2025-11-25).
//!
//! The gateway answers `initialize` itself: if the client asks for a version it speaks, it agrees;
//! otherwise it offers its latest, as the lifecycle spec requires. The `MCP-Protocol-Version` header on
//! later requests must name a supported version (HTTP 400 otherwise).

/// Versions the front speaks, newest first. The index is stored in sealed session ids.
pub const SUPPORTED: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// The newest legacy-era version.
pub const LATEST: &str = SUPPORTED[0];

/// The version assumed when a request carries no `MCP-Protocol-Version` header (per the
/// 2025-06-18 transport spec, for backwards compatibility).
pub const ASSUMED_WITHOUT_HEADER: &str = "2025-03-26";

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
    fn only_2025_03_26_allows_batches() {
        for (i, v) in SUPPORTED.iter().enumerate() {
            assert_eq!(allows_batches(i as u8), *v == "2025-03-26");
        }
    }
}
