//! A peer as the A2A client needs it: where it is, which dialect to speak, how to authenticate.
//! Built by the caller at the boundary (the planner, from its catalog); nothing here knows where
//! the peer came from.

use secrecy::SecretString;

/// The dialect to speak to a peer (spec §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialectChoice {
    V03,
    V10,
    /// From the agent card; without one, v0.3 with a fallback to v1.0 on a dialect refusal.
    Auto,
}

/// How the gateway authenticates to a peer (spec §5.13).
#[derive(Debug, Clone)]
pub enum PeerAuth {
    None,
    Bearer {
        token: SecretString,
    },
    /// A bearer token read from an allow-listed environment variable.
    BearerEnv {
        env_var: String,
    },
    /// DID-signed requests, with an OAuth bearer from the variable or from Hydra.
    DidSigned {
        token_env_var: Option<String>,
    },
}

/// One remote A2A agent.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The catalog endpoint (JSON-RPC at this URL with one trailing `/`).
    pub endpoint: String,
    pub dialect: DialectChoice,
    pub auth: PeerAuth,
}
