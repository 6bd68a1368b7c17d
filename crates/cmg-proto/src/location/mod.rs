//! Client location: where a client is (boundaries and boundary groups) and which
//! management points it should use from there (intranet ones by locality, gateways as
//! internet management points). I/O-free: the site resolves with it, and the client and
//! the tests read its types. Signing and serving the answer are the site's.

mod boundary;
mod resolve;

pub use boundary::{Boundary, BoundaryError};
pub use resolve::{
    resolve, BoundaryGroup, Candidate, CandidateKind, GatewayMp, Locality, LocationPolicy,
    ManagementPoint, Neighbour, Resolution,
};
