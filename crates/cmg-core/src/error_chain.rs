//! One line for an error and its causes, for logs and for error messages that carry a
//! lower layer's error as text.
//!
//! Many errors print a terse message and keep the reason in `source()` (hyper's
//! `client error (Connect)`); others print their cause *and* return it from `source()`
//! (`std::io::Error::other(e)` displays `e`). [`chain`] joins the messages with `": "`
//! and leaves out a cause whose message the line already holds, so neither kind loses
//! its reason or repeats it. It does not decide what is safe to show a client: that is
//! each caller's choice.

use std::error::Error;

/// `e`'s message followed by those of its sources, `": "`-separated; a source whose
/// message the text so far already contains (or an empty one) is skipped, and the walk
/// goes on to its own source.
pub fn chain(e: &dyn Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("client error (Connect)")]
    struct Terse(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("reading the bundle: {0}")]
    struct Verbose(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("certificate not valid for this name")]
    struct Leaf;

    #[test]
    fn appends_causes_a_terse_error_keeps_in_its_source() {
        let refused = Terse(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(
            chain(&refused),
            "client error (Connect): connection refused"
        );
    }

    #[test]
    fn does_not_repeat_a_cause_already_displayed() {
        // `io::Error::other(Leaf)` displays Leaf's message and returns Leaf as source.
        let wrapped = Terse(std::io::Error::other(Leaf));
        assert_eq!(
            chain(&wrapped),
            "client error (Connect): certificate not valid for this name"
        );
        // The outer error's message already names the cause.
        let verbose = Verbose(std::io::Error::other(Leaf));
        assert_eq!(
            chain(&verbose),
            "reading the bundle: certificate not valid for this name"
        );
    }

    #[test]
    fn an_error_without_source_is_its_message() {
        assert_eq!(chain(&Leaf), "certificate not valid for this name");
    }
}
