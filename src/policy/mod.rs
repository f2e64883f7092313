//! Pure policy decisions on the request path: who is calling, may they call this, may they call now.
//!
//! Key types: [`Policy`] (carried in the Snapshot, so a reload swaps it atomically with the routes),
//! [`Principal`] (the authenticated caller), [`Decision`].
//!
//! Today the policy has no rules: every caller is [`Principal::Anonymous`] and every call is allowed.
//! The phases exist so that virtual keys, JWT/OIDC, per-key tool filters, rate limits, budgets and
//! approval gates slot in here without touching the request path's shape. Decisions are pure functions
//! of (policy, principal, request facts): no I/O, no locks.

/// Who is calling, as established by the authenticate phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No credential was required or presented (the default policy).
    Anonymous,
}

/// The outcome of an authorization, rate or approval check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Proceed.
    Allow,
    /// Refuse, with a reason the caller may see.
    Deny(&'static str),
}

/// What the policy phases know about a request: method and the (namespaced) target name, if any.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// JSON-RPC method.
    pub method: &'a str,
    /// Namespaced tool or prompt name, or resource URI.
    pub target: Option<&'a [u8]>,
}

/// The policy in force for one snapshot.
#[derive(Debug, Clone, Default)]
pub struct Policy {}

impl Policy {
    /// Establishes the caller from request credentials (none are configured yet).
    pub fn authenticate(&self, _authorization: Option<&[u8]>) -> Result<Principal, &'static str> {
        Ok(Principal::Anonymous)
    }

    /// Whether `who` may make this request at all.
    pub fn authorize(&self, _who: &Principal, _facts: RequestFacts<'_>) -> Decision {
        Decision::Allow
    }

    /// Whether `who` is within its rate and budget now.
    pub fn admit(&self, _who: &Principal, _facts: RequestFacts<'_>) -> Decision {
        Decision::Allow
    }

    /// Whether a catalog entry is visible to `who` (per-key tool filtering slots in here).
    pub fn visible(&self, _who: &Principal, _namespaced: &str) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_allows_everything() {
        let p = Policy::default();
        let who = p.authenticate(None).unwrap();
        let facts = RequestFacts {
            method: "tools/call",
            target: Some(b"a__b"),
        };
        assert_eq!(p.authorize(&who, facts), Decision::Allow);
        assert_eq!(p.admit(&who, facts), Decision::Allow);
        assert!(p.visible(&who, "a__b"));
    }
}
