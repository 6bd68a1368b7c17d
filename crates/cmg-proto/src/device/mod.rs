//! The device contract: what a `cmg client` agent and the site (and the reference
//! management point) say to each other. Wire types only, I/O-free; signing and
//! verifying the location answer are `cmg-token::location`'s, serving it is the
//! site's, following it is the agent's.
//!
//! - [`location`]: the location request a client sends (`POST` [`LOCATION_PATH`] on the
//!   site, or through a gateway at `<gateway>/CCM_Proxy_{MutualAuth,ServerAuth}/<mp
//!   role id>/`[`LOCATION_ENDPOINT`]) and the answer the site signs;
//! - [`mplist`]: the site's management point list, which the reference management
//!   point answers `.sms_aut?MPLIST` / `MPLIST2` from;
//! - [`policy`]: the reference management point's policy listing and bodies
//!   (`/SMS_MP/.sms_pol?assignments`, `/SMS_MP/.sms_pol?<id>`).
//!
//! Client identity never travels in a body: the site takes it from the client
//! certificate or the bearer device token the request was authenticated with.

pub mod location;
pub mod mplist;
pub mod policy;

pub use location::{
    CandidateList, ClientAuth, ClientSettingsInForce, ContentKind, ContentLocation, ListError,
    LocationAnswer, LocationCandidate, LocationRequest, Via, LOCATION_FORMAT,
    LOCATION_FORMATS_READ, LOCATION_JWS_TYPE, MAX_ADDRESSES, MAX_LOCATION_ANSWER_BYTES,
    MAX_LOCATION_REQUEST_BYTES,
};
pub use mplist::{ListedMp, ManagementPointList, MAX_MP_LIST_BYTES, MP_LIST_PATH};
pub use policy::{
    is_policy_id, PolicyAssignment, PolicyAssignments, ASSIGNMENTS_QUERY, MAX_POLICY_BODY_BYTES,
};

/// The site's location service (HTTPS, the site API listener): `POST`, a
/// [`LocationRequest`] as JSON; answers `200` with the signed answer (compact JWS,
/// `Content-Type: application/jose`).
pub const LOCATION_PATH: &str = "/api/v1/location";

/// The endpoint of every management point role that the site publishes for its own
/// location service: `<gateway>/CCM_Proxy_MutualAuth/<role id>/CCM_Location` (and
/// `CCM_Proxy_ServerAuth/...` for token clients), mapped to `cmg-site:`[`LOCATION_PATH`].
pub const LOCATION_ENDPOINT: &str = "CCM_Location";

/// The site's token service (existing): `POST` with `Authorization: Bearer <bulk or
/// device token>` and `{"device_id": ..}` (bulk) or an empty body (renewal). Through a
/// gateway: `<gateway>/CCM_Proxy_ServerAuth/<role id>/CCM_STS/token`.
pub const STS_TOKEN_PATH: &str = "/api/v1/sts/token";

/// The site's token service for certificate clients on the intranet: `POST` with the
/// client certificate at the TLS handshake (no bearer) and `{"device_id": ..}`; answers
/// a device token for that device (seed 001: "the site issues a token to devices that
/// register on the internal network").
pub const STS_REGISTER_PATH: &str = "/api/v1/sts/register";
