//! The key consistent hashing balances on: the client's address, a request header, or the
//! path.

use wireloop_middleware::http1::Request;

use crate::balance::hash_bytes;

/// What a request's hash key is made of.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum HashKey {
    /// The client's IP address (the default).
    #[default]
    ClientIp,
    /// The value of this request header (requests without it hash as empty).
    Header(String),
    /// The request target's path (without the query).
    Path,
}

impl HashKey {
    /// Parses `client-ip`, `header:NAME` or `path`.
    pub fn parse(s: &str) -> Result<HashKey, String> {
        match s {
            "client-ip" => Ok(HashKey::ClientIp),
            "path" => Ok(HashKey::Path),
            _ => match s.strip_prefix("header:") {
                Some(name) if !name.is_empty() && !name.contains([' ', ':']) => {
                    Ok(HashKey::Header(name.to_string()))
                }
                _ => Err(format!(
                    "unknown hash key {s:?} (client-ip, header:NAME, path)"
                )),
            },
        }
    }

    /// The hash of `req`'s key (`client_ip` as the client's address).
    pub fn hash(&self, req: &Request<'_>, client_ip: &str) -> u64 {
        match self {
            HashKey::ClientIp => hash_bytes(client_ip.as_bytes()),
            HashKey::Header(name) => hash_bytes(req.header(name).unwrap_or(b"")),
            HashKey::Path => {
                let t = req.target();
                hash_bytes(t.split('?').next().unwrap_or(t).as_bytes())
            }
        }
    }
}
