//! Property tests for what a stranger sends the router: any `Host` header is read without a
//! panic into a lower-case host with no port, and routing on it never panics.

use proptest::prelude::*;

use crate::proxy::normalize_host;

proptest! {
    #[test]
    fn any_host_header_is_read(raw in "\\PC{0,300}") {
        let host = normalize_host(&raw);
        prop_assert_eq!(host.clone(), host.to_ascii_lowercase());
        prop_assert!(host.len() <= raw.len());
        let table = crate::table::Table::default();
        let _ = table.route(&host);
    }

    #[test]
    fn a_host_and_port_lose_the_port(name in "[a-zA-Z0-9-]{1,20}(\\.[a-zA-Z0-9-]{1,20}){0,3}", port in 1u16..) {
        prop_assert_eq!(normalize_host(&format!("{name}:{port}")), name.to_ascii_lowercase());
        prop_assert_eq!(normalize_host(&format!("{name}.")), name.to_ascii_lowercase());
    }
}
