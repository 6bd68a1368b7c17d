//! How the admin commands reach the running site: the `--url`, `--ca-file` and
//! `--admin-token-file` options, one call with the API's refusal turned into an error,
//! and the answer printed or read into a view type of `cmg_site::model`.
//!
//! Request bodies are always a request type of `cmg_site::model` (the very type the
//! API's handler reads), never a JSON literal, so a misspelt field does not compile.
//! It does not format answers as text; the resource modules do (with `crate::output`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::Args;
use cmg_site::client::{Reply, SiteClient};
use cmg_site::model::ApiErrorBody;
use http::Method;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::{admin_token, whoami};
use crate::output::Table;

// Flattened into every admin command. No doc comment on purpose: clap would show it as
// the help line of every subcommand that has none of its own.
#[derive(Debug, Args)]
pub(super) struct ApiArgs {
    /// The site API. Several site servers (on one database): repeat the option or give a
    /// comma-separated list; a call goes to the next when one cannot be connected to.
    #[arg(
        long,
        env = "CMG_SITE_URL",
        default_value = "https://localhost:8443",
        value_delimiter = ','
    )]
    pub(super) url: Vec<String>,
    /// The site CA certificate the API's certificate chains to (default DIR/site-ca.pem).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// File with the admin token (default: CMG_SITE_ADMIN_TOKEN if set, else
    /// DIR/admin.token).
    #[arg(long)]
    admin_token_file: Option<PathBuf>,
}

/// A client of the site's admin API, as the person running the command.
pub(super) struct Api {
    client: SiteClient,
}

impl Api {
    /// Reads the site CA and the admin token; connects on the first call.
    pub(super) fn connect(dir: &Path, args: &ApiArgs) -> anyhow::Result<Self> {
        let ca_file = args
            .ca_file
            .clone()
            .unwrap_or_else(|| dir.join("site-ca.pem"));
        let ca = std::fs::read_to_string(&ca_file).with_context(|| {
            let hint = if args.ca_file.is_none() && !dir.exists() {
                format!(
                    " (no site directory {}: give the site's with --dir or CMG_SITE_DIR, \
                     or the CA with --ca-file)",
                    dir.display()
                )
            } else {
                String::new()
            };
            format!("reading the site CA {}{hint}", ca_file.display())
        })?;
        let token = admin_token::load(dir, args.admin_token_file.as_deref())?;
        let client =
            SiteClient::new(&args.url.join(","), &ca, Some(token), None)?.with_admin_name(whoami());
        Ok(Self { client })
    }

    /// A call without a body.
    pub(super) async fn call(&self, method: Method, path: &str) -> anyhow::Result<Value> {
        answer(self.client.call(method, path, None).await?)
    }

    /// A call with `body`, a request type of `cmg_site::model`, as JSON.
    pub(super) async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> anyhow::Result<Value> {
        answer(self.client.send(method, path, body).await?)
    }
}

/// The answer's JSON (`{"ok": true}` for an empty one), or the API's refusal as an error.
fn answer(reply: Reply) -> anyhow::Result<Value> {
    if !reply.status.is_success() {
        let (code, message) = match reply.parse::<ApiErrorBody>() {
            Ok(e) => (e.error, e.message),
            Err(_) => ("error".to_owned(), reply.text()),
        };
        bail!("{} {code}: {message}", reply.status.as_u16());
    }
    Ok(if reply.body.is_empty() {
        serde_json::json!({"ok": true})
    } else {
        reply.json()
    })
}

/// What a path segment keeps as it is: RFC 3986's unreserved characters. Everything
/// else is percent-encoded, so a boundary group named `Main office`, or a name with `/`,
/// `?`, `#` or `%`, stays one segment (the API's path extractor decodes it) instead of
/// making a request the HTTP client refuses or one that names something else.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// An admin API path: `/api/v1` then `segments`, each percent-encoded.
pub(super) fn path(segments: &[&str]) -> String {
    let mut p = String::from("/api/v1");
    for s in segments {
        p.push('/');
        p.extend(utf8_percent_encode(s, SEGMENT));
    }
    p
}

/// `path` with a query string of `pairs`, each name and value encoded
/// (`application/x-www-form-urlencoded`, as the API's `Query` extractor reads it): a
/// name with `&`, `#` or a space stays one value.
pub(super) fn with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    format!("{path}?{}", q.finish())
}

/// An answer read as a view type of `cmg_site::model`.
pub(super) fn decode<T: DeserializeOwned>(v: Value) -> anyhow::Result<T> {
    serde_json::from_value(v).context("unexpected answer from the site API")
}

/// Prints an answer as the API's JSON, indented.
pub(super) fn print(v: Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

/// One GET whose answer is a list of `T`: the API's JSON with `json`, else the table
/// `table` makes of the rows (given the time now, for ages).
pub(super) async fn list<T: DeserializeOwned>(
    dir: &Path,
    args: &ApiArgs,
    path: &str,
    json: bool,
    table: fn(&[T], i64) -> Table,
) -> anyhow::Result<()> {
    let v = Api::connect(dir, args)?.call(Method::GET, path).await?;
    if json {
        return print(v);
    }
    print!("{}", table(&decode::<Vec<T>>(v)?, cmg_site::now()).render());
    Ok(())
}

/// One admin call without a body whose answer is one `T`: the API's JSON with `json`,
/// else the text `text` makes of it (given the time now, for ages).
pub(super) async fn show<T: DeserializeOwned>(
    dir: &Path,
    args: &ApiArgs,
    method: Method,
    path: &str,
    json: bool,
    text: fn(&T, i64) -> String,
) -> anyhow::Result<()> {
    let v = Api::connect(dir, args)?.call(method, path).await?;
    one(v, json, text)
}

/// One admin call with a body whose answer is one `T`, printed as [`show`] prints it.
pub(super) async fn send_and_show<B: Serialize, T: DeserializeOwned>(
    dir: &Path,
    args: &ApiArgs,
    call: (Method, &str),
    body: &B,
    json: bool,
    text: fn(&T, i64) -> String,
) -> anyhow::Result<()> {
    let (method, path) = call;
    let v = Api::connect(dir, args)?.send(method, path, body).await?;
    one(v, json, text)
}

fn one<T: DeserializeOwned>(
    v: Value,
    json: bool,
    text: fn(&T, i64) -> String,
) -> anyhow::Result<()> {
    if json {
        return print(v);
    }
    print!("{}", text(&decode::<T>(v)?, cmg_site::now()));
    Ok(())
}

/// One admin call whose answer is empty (a deletion, a block): `done` as a line, or
/// `{"ok": true}` with `json`.
pub(super) async fn act(
    dir: &Path,
    args: &ApiArgs,
    method: Method,
    path: &str,
    json: bool,
    done: &str,
) -> anyhow::Result<()> {
    let v = Api::connect(dir, args)?.call(method, path).await?;
    if json {
        return print(v);
    }
    println!("{done}");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(
            super::path(&["boundary-groups", "Main office"]),
            "/api/v1/boundary-groups/Main%20office"
        );
        assert_eq!(
            super::path(&["gateways", "a/b?c#d%e", "storage"]),
            "/api/v1/gateways/a%2Fb%3Fc%23d%25e/storage"
        );
        assert_eq!(
            super::path(&["tokens", "t-1.x_y~z", "block"]),
            "/api/v1/tokens/t-1.x_y~z/block"
        );
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            super::with_query(
                "/api/v1/traffic",
                &[("since", "24h"), ("gateway", "a&b c#d")]
            ),
            "/api/v1/traffic?since=24h&gateway=a%26b+c%23d"
        );
    }
}
