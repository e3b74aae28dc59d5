//! # wireloop-proxy
//!
//! Building a proxy means writing its policy, not its plumbing. This crate is the
//! plumbing for [`wireloop`]: an HTTP reverse proxy engine ([`HttpProxy`]; HTTP/1.1 and
//! HTTP/2 to clients, either to upstreams, [`UpstreamProtocol`]) that runs a
//! policy's phases ([`ProxyHttp`]) over upstream groups ([`Group`]) of weighted peers
//! ([`Peer`]) with balancing ([`balance`]), keep-alive pools per peer, health checks,
//! timeouts and retries. Everything runs inside the loop: plain return values, no async,
//! each connection's data in its own state.
//!
//! ```no_run
//! use wireloop::Server;
//! use wireloop_middleware::http1::{Request, Response};
//! use wireloop_proxy::{Balance, Filter, Group, HttpProxy, Peer, ProxyHttp, Session, Settings};
//!
//! /// Requests need `Authorization`; everything else goes to group 0.
//! struct Auth;
//!
//! impl ProxyHttp for Auth {
//!     type Ctx = ();
//!
//!     fn request_filter(&mut self, req: &Request<'_>, res: &mut Response<'_>,
//!                       _s: &Session<'_>, _ctx: &mut ()) -> Filter {
//!         if req.header("authorization").is_some() {
//!             return Filter::Continue;
//!         }
//!         res.status(401).header("WWW-Authenticate", "Bearer").body(b"no token\n");
//!         Filter::Answered
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let peers = vec![Peer::parse("http://127.0.0.1:9001")?, Peer::parse("http://127.0.0.1:9002")?];
//! let api = Group::new("api", peers, Balance::P2cEwma)?;
//! Server::builder()
//!     .listen("tcp://0.0.0.0:8080")?
//!     .serve(move |_| HttpProxy::new(Auth, vec![api.clone()], Settings::default()))?;
//! # Ok(())
//! # }
//! ```
//!
//! Modules: [`phases`] (the policy trait and its values), [`group`] and [`peer`]
//! (upstreams), [`budget`] (how many retries a group allows), [`balance`] (the balancers,
//! sans-IO), [`health`] (passive and active health checks), [`router`] (virtual hosts
//! and path prefixes to groups), [`key`] (hash keys), [`header_list`], [`settings`],
//! [`sni`] (the server name of a ClientHello, for routing TLS without terminating it),
//! [`access_log`], `config` (cargo feature `config`: a TOML configuration file), and the
//! engine behind [`HttpProxy`].
//!
//! ## Cargo features
//!
//! The engine needs `wireloop-middleware`'s `http1`, `tls` and `proxy-protocol` (always
//! on). Default:
//! `aws-lc-rs` (the TLS crypto provider for `https` peers, post-quantum `X25519MLKEM768`
//! first; or `ring`, one of the two is needed), `webpki-roots` (an `https` peer without a
//! client of its own trusts the Mozilla roots), `dns` (peers' host names resolved by the
//! core's hickory resolver, `wireloop/dns`).

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod access_log;
pub mod balance;
pub mod budget;
mod client_id;
#[cfg(feature = "config")]
pub mod config;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod group;
pub mod header_list;
pub mod health;
mod http;
pub mod key;
pub mod limits;
pub mod metrics;
pub mod peer;
pub mod phases;
pub mod router;
pub mod settings;
pub mod sni;

pub use balance::Balance;
pub use budget::RetryBudget;
pub use client_id::ClientId;
pub use group::{Group, UpstreamProtocol};
pub use header_list::HeaderList;
pub use health::HealthCheck;
pub use http::{HttpProxy, ProxyConn, ProxyState};
pub use key::HashKey;
pub use limits::Limits;
pub use metrics::Metrics;
pub use peer::Peer;
pub use phases::{
    Failure, FailureKind, Filter, ProxyHttp, Recovery, ResponseHeader, Session, Summary, Target,
    UpstreamRequest,
};
pub use router::{RouteError, Router};
pub use settings::{Settings, CLIENT_ALPN};
