//! Clocks, ids and the two timestamp formats of the Deis API.

/// Microseconds since the Unix epoch, now.
pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// A random v4 UUID, lowercase and hyphenated.
pub(crate) fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn at(micros: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// The format of every model timestamp: `2014-01-01T00:00:00UTC`.
pub(crate) fn deis(micros: i64) -> String {
    at(micros).format("%Y-%m-%dT%H:%M:%SUTC").to_string()
}

/// The format of users' `last_login`/`date_joined`: ISO 8601 with microseconds when non-zero.
pub(crate) fn iso(micros: i64) -> String {
    let t = at(micros);
    if micros.rem_euclid(1_000_000) == 0 {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(deis(0), "1970-01-01T00:00:00UTC");
        assert_eq!(deis(1_413_756_060_601_000), "2014-10-19T22:01:00UTC");
        assert_eq!(iso(1_413_756_060_601_000), "2014-10-19T22:01:00.601000Z");
        assert_eq!(iso(1_413_756_060_000_000), "2014-10-19T22:01:00Z");
        assert_eq!(new_uuid().len(), 36);
    }
}
