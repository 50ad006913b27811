//! Property tests for what a stranger sends the logger: any syslog line is stored (parsed, or
//! kept whole under `deis-unparsed`) without a panic, and any framed TCP stream is split into
//! messages no longer than the limit.

use proptest::prelude::*;

use crate::entry::{UNPARSED, parse};

proptest! {
    #[test]
    fn any_syslog_line_is_kept(raw in "\\PC{0,600}") {
        let entry = parse(&raw, 0);
        prop_assert!(!entry.app.is_empty());
        if entry.app == UNPARSED {
            prop_assert_eq!(entry.message.trim_end(), raw.trim_end());
        } else {
            prop_assert!(entry.message.len() <= raw.len());
        }
    }

    #[test]
    fn a_deis_line_names_its_app(app in "[a-z][a-z0-9-]{0,30}", proc in "[a-z]{1,8}\\.[0-9]{1,3}", text in "[ -~]{0,200}") {
        let entry = parse(&format!("2026-01-01T00:00:00UTC {app}[{proc}]: {text}"), 0);
        prop_assert_eq!(entry.app, app);
        prop_assert_eq!(entry.source, proc);
    }

    #[test]
    fn any_tcp_stream_is_framed(bytes in proptest::collection::vec(any::<u8>(), 0..4000)) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().map_err(|e| TestCaseError::fail(e.to_string()))?;
        runtime.block_on(async {
            let mut reader = tokio::io::BufReader::new(bytes.as_slice());
            let mut total = 0;
            while let Some(message) = crate::syslog::next_message(&mut reader).await {
                prop_assert!(message.len() <= crate::syslog::MAX_MESSAGE * 4);
                total += 1;
                prop_assert!(total <= bytes.len() + 1);
            }
            Ok(())
        })?;
    }
}
