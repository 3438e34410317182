//! What went wrong when a plugin call did not return normally, as a type.
//!
//! Extism 1.30 reports these failures as `anyhow` errors built from fixed messages (it keeps no
//! typed cause for them: `Error::msg("timeout")`, `"oom"`, `"HTTP request to … is not allowed"`,
//! the HTTP client's own error for a transport failure). This module is the one place that knows
//! those forms; everything else matches on [`Failure`]. `extism` is pinned, so a change of wording
//! comes with a deliberate upgrade, and the tests below fail on it.

use cvco_core::{CvcoError, ErrorCode};

/// Why a call failed at the Extism level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The call ran out of its time budget (the manifest's timeout, HTTP included).
    Timeout,
    /// The plugin asked for a host outside the manifest's `allowed_hosts`: configuration.
    HostNotAllowed,
    /// The HTTP transport failed (connection refused or reset, name resolution).
    Transport,
    /// The instance exceeded its memory limit.
    OutOfMemory,
    /// The plugin trapped: a defect, not a state of ANCV.
    Trap,
}

impl Failure {
    pub fn classify(e: &extism::Error) -> Failure {
        let root = e.root_cause().to_string();
        let chain = format!("{e:#}");
        if root == "timeout" {
            Failure::Timeout
        } else if root == "oom" {
            Failure::OutOfMemory
        } else if chain.contains("HTTP request to ") && chain.contains(" is not allowed") {
            Failure::HostNotAllowed
        } else if is_transport(&root) {
            Failure::Transport
        } else {
            Failure::Trap
        }
    }

    /// The typed error a host answers with. Everything but a configuration error is retryable:
    /// the idempotency key makes a retry of a money-moving call safe.
    pub fn into_error(self, detail: &str) -> CvcoError {
        let code = match self {
            Failure::Timeout => ErrorCode::UpstreamTimeout,
            Failure::Transport => ErrorCode::UpstreamUnavailable,
            Failure::OutOfMemory | Failure::Trap => ErrorCode::Internal,
            Failure::HostNotAllowed => {
                return CvcoError::new(ErrorCode::ConfigInvalid)
                    .with_detail(
                        "L'hôte de api_base_url manque dans allowed_hosts.",
                        "The host of api_base_url is missing from allowed_hosts.",
                    )
                    .with_field("allowed_hosts")
            }
        };
        CvcoError::new(code)
            .with_detail(detail, detail)
            .retryable(true)
    }
}

/// The HTTP client's (ureq 3) transport errors, as the http_request host function passes them.
fn is_transport(root: &str) -> bool {
    let lower = root.to_ascii_lowercase();
    [
        "io:",
        "connection",
        "dns",
        "host not found",
        "timed out",
        "timeout",
        "protocol",
    ]
    .iter()
    .any(|m| lower.contains(m))
}

/// An Extism-level failure as the typed error a host answers with, its detail the cause without
/// wasmtime's backtrace (the message reaches people).
pub(crate) fn extism_failure(e: &extism::Error) -> CvcoError {
    let chain = format!("{e:#}");
    let cause: Vec<&str> = chain
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with(|c: char| c.is_ascii_digit())
                && !l.starts_with("at ")
                && !l.starts_with("note:")
                && !l.contains("wasm backtrace")
        })
        .collect();
    let detail = format!(
        "Extism: {}",
        cause.join(" ").chars().take(200).collect::<String>()
    );
    Failure::classify(e).into_error(&detail)
}

pub(crate) fn internal(detail: &str) -> CvcoError {
    CvcoError::new(ErrorCode::Internal).with_detail(detail, detail)
}

#[cfg(test)]
mod tests {
    use super::Failure;

    fn classify(root: &str, context: &str) -> Failure {
        Failure::classify(&extism::Error::msg(root.to_string()).context(context.to_string()))
    }

    #[test]
    fn extism_messages_map_to_their_failure() {
        assert_eq!(classify("timeout", "call"), Failure::Timeout);
        assert_eq!(classify("oom", "call"), Failure::OutOfMemory);
        assert_eq!(
            classify(
                "HTTP request to http://10.0.0.1/x is not allowed",
                "error while executing at wasm backtrace"
            ),
            Failure::HostNotAllowed
        );
        assert_eq!(
            classify("io: Connection refused (os error 111)", "call"),
            Failure::Transport
        );
        assert_eq!(
            classify("wasm trap: wasm `unreachable` instruction executed", "call"),
            Failure::Trap
        );
    }

    #[test]
    fn only_a_configuration_failure_is_not_retryable() {
        assert!(!Failure::HostNotAllowed.into_error("d").retryable);
        for f in [
            Failure::Timeout,
            Failure::Transport,
            Failure::OutOfMemory,
            Failure::Trap,
        ] {
            assert!(f.into_error("d").retryable, "{f:?}");
        }
    }
}
