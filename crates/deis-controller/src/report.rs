//! An error with its causes on one line, for the log: `deploying failed: database query failed:
//! connection refused`. Where an error is logged (an API's edge, the reconciler), it is logged
//! once, whole, through this.

use std::fmt;

/// Displays an error followed by each of its sources, separated by `": "`.
pub(crate) struct Report<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut shown = self.0.to_string();
        let mut source = self.0.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            // A wrapper that repeats its cause's text (`"{source}"`) adds nothing to the line.
            if !shown.ends_with(&text) {
                write!(f, ": {text}")?;
            }
            shown = text;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Report;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("deploying failed")]
        Wrapped(#[source] std::io::Error),
        #[error("{0}")]
        Repeated(#[source] std::io::Error),
    }

    #[test]
    fn causes_follow_once() {
        let io = || std::io::Error::other("connection refused");
        assert_eq!(
            Report(&Outer::Wrapped(io())).to_string(),
            "deploying failed: connection refused"
        );
        assert_eq!(
            Report(&Outer::Repeated(io())).to_string(),
            "connection refused"
        );
    }
}
