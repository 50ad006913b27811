//! A log line: which app and process it belongs to, when, and what it says; parsed from the
//! formats that arrive (RFC 5424 and RFC 3164 syslog, and Deis's `<time> <app>[<proc>]: <msg>`),
//! and printed as `deis logs` shows it. A line nothing recognises is kept as it came, under
//! [`UNPARSED`], never dropped.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

/// The app unparsable lines are stored under.
pub const UNPARSED: &str = "deis-unparsed";

/// One stored line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub app: String,
    /// The process (`web.1`) or component (`deis-controller`).
    pub source: String,
    /// Microseconds since the epoch.
    pub time: i64,
    pub message: String,
    /// Position in the app's log, increasing by one per line.
    pub offset: u64,
}

impl Entry {
    /// `2016-03-01T12:00:00UTC myapp[web.1]: message`, as `deis logs` prints it.
    pub fn line(&self) -> String {
        let time = Utc
            .timestamp_micros(self.time)
            .single()
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%SUTC");
        format!("{time} {}[{}]: {}", self.app, self.source, self.message)
    }

    /// Bytes the line takes in a ring.
    pub fn size(&self) -> usize {
        self.app.len() + self.source.len() + self.message.len() + 16
    }
}

/// Parses one received line; `now` (micros) dates lines that carry no usable time.
pub fn parse(raw: &str, now: i64) -> Entry {
    let raw = raw.trim_end_matches(['\n', '\r', '\0']);
    let entry = |app: &str, source: &str, time: Option<i64>, message: &str| Entry {
        app: app.to_owned(),
        source: source.to_owned(),
        time: time.unwrap_or(now),
        message: message.to_owned(),
        offset: 0,
    };
    let (body, has_pri) = match strip_pri(raw) {
        Some(rest) => (rest, true),
        None => (raw, false),
    };
    if has_pri && let Some(rest) = body.strip_prefix("1 ") {
        if let Some(e) = rfc5424(rest, now) {
            return e;
        }
    } else if has_pri && let Some((time, rest)) = rfc3164_time(body) {
        // `host tag[pid]: msg`, or `tag[pid]: msg` without a host.
        let tagged = tagged(rest).or_else(|| rest.split_once(' ').and_then(|(_, r)| tagged(r)));
        if let Some((app, source, message)) = tagged {
            return entry(app, source, Some(time), message);
        }
    }
    // Deis's own format: `<time> <app>[<proc>]: <msg>`.
    if let Some((time, rest)) = body.split_once(' ')
        && let Some(t) = deis_time(time)
        && let Some((app, source, message)) = tagged(rest)
    {
        return entry(app, source, Some(t), message);
    }
    if let Some((app, source, message)) = tagged(body) {
        return entry(app, source, None, message);
    }
    entry(UNPARSED, "syslog", None, raw)
}

fn strip_pri(raw: &str) -> Option<&str> {
    let rest = raw.strip_prefix('<')?;
    let (pri, rest) = rest.split_once('>')?;
    (!pri.is_empty() && pri.len() <= 3 && pri.bytes().all(|b| b.is_ascii_digit())).then_some(rest)
}

/// `TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG`
fn rfc5424(rest: &str, now: i64) -> Option<Entry> {
    let mut fields = rest.splitn(6, ' ');
    let time = fields.next()?;
    let _host = fields.next()?;
    let app = fields.next()?;
    let procid = fields.next()?;
    let _msgid = fields.next()?;
    let rest = fields.next().unwrap_or("");
    let message = skip_structured_data(rest);
    let message = message.strip_prefix('\u{feff}').unwrap_or(message);
    if app == "-" || !app_like(app) {
        return None;
    }
    let time = DateTime::parse_from_rfc3339(time)
        .ok()
        .map_or(now, |t| t.timestamp_micros());
    let source = if procid == "-" { "1" } else { procid };
    Some(Entry {
        app: app.to_owned(),
        source: source.to_owned(),
        time,
        message: message.to_owned(),
        offset: 0,
    })
}

fn skip_structured_data(rest: &str) -> &str {
    if let Some(msg) = rest.strip_prefix("- ") {
        return msg;
    }
    if rest == "-" {
        return "";
    }
    if !rest.starts_with('[') {
        return rest;
    }
    // Elements `[id k="v" ...]`, with `\]` escapes inside values.
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() && bytes[i] == b'[' {
        let mut escaped = false;
        i += 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if !escaped => escaped = true,
                b']' if !escaped => break,
                _ => escaped = false,
            }
            i += 1;
        }
        i += 1;
    }
    rest.get(i..)
        .map_or("", |m| m.strip_prefix(' ').unwrap_or(m))
}

/// `Mmm dd hh:mm:ss ` at the start (the year is the current one).
fn rfc3164_time(body: &str) -> Option<(i64, &str)> {
    let stamp = body.get(..15)?;
    let rest = body.get(16..)?;
    let year = Utc::now().format("%Y").to_string();
    let parsed =
        NaiveDateTime::parse_from_str(&format!("{year} {stamp}"), "%Y %b %e %H:%M:%S").ok()?;
    Some((parsed.and_utc().timestamp_micros(), rest))
}

fn deis_time(text: &str) -> Option<i64> {
    let t = text.strip_suffix("UTC")?;
    NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S")
        .ok()
        .map(|t| t.and_utc().timestamp_micros())
}

/// `tag[pid]: message` (or `tag[pid] message`), with an app-like tag.
fn tagged(text: &str) -> Option<(&str, &str, &str)> {
    let (tag, rest) = text.split_once('[')?;
    let (pid, rest) = rest.split_once(']')?;
    let message = rest
        .strip_prefix(": ")
        .or_else(|| rest.strip_prefix(':'))
        .or_else(|| rest.strip_prefix(' '))
        .unwrap_or(rest);
    let pid_ok = !pid.is_empty()
        && pid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    (app_like(tag) && pid_ok).then_some((tag, pid, message))
}

fn app_like(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 64
        && tag
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000_000;

    #[test]
    fn rfc5424_with_and_without_structured_data() {
        let e = parse(
            "<14>1 2016-03-01T12:00:00Z host myapp web.1 - - listening on 5000",
            NOW,
        );
        assert_eq!(
            (e.app.as_str(), e.source.as_str(), e.message.as_str()),
            ("myapp", "web.1", "listening on 5000")
        );
        assert_eq!(
            e.line(),
            "2016-03-01T12:00:00UTC myapp[web.1]: listening on 5000"
        );
        let e = parse(
            r#"<14>1 2016-03-01T12:00:00.5+01:00 h go worker.2 ID7 [x@1 a="b\]c"][y@2] hi there"#,
            NOW,
        );
        assert_eq!(
            (e.app.as_str(), e.source.as_str(), e.message.as_str()),
            ("go", "worker.2", "hi there")
        );
        assert_eq!(e.line(), "2016-03-01T11:00:00UTC go[worker.2]: hi there");
    }

    #[test]
    fn rfc3164_with_and_without_host() {
        let e = parse("<13>Mar  1 12:00:00 host myapp[web.1]: started", NOW);
        assert_eq!(
            (e.app.as_str(), e.source.as_str(), e.message.as_str()),
            ("myapp", "web.1", "started")
        );
        assert!(
            e.line()
                .ends_with("-03-01T12:00:00UTC myapp[web.1]: started"),
            "{}",
            e.line()
        );
        let e = parse(
            "<13>Mar 11 02:03:04 myapp[deis-controller]: dev scaled web=2",
            NOW,
        );
        assert_eq!(
            (e.app.as_str(), e.source.as_str()),
            ("myapp", "deis-controller")
        );
        assert_eq!(e.message, "dev scaled web=2");
    }

    #[test]
    fn the_deis_format_and_anything_else() {
        let e = parse("2016-03-01T12:00:00UTC myapp[web.1]: hi\n", NOW);
        assert_eq!(e.line(), "2016-03-01T12:00:00UTC myapp[web.1]: hi");
        let e = parse("garbage without a tag \u{1}", NOW);
        assert_eq!(
            (e.app.as_str(), e.message.as_str(), e.time),
            (UNPARSED, "garbage without a tag \u{1}", NOW)
        );
        let e = parse("<999999>nonsense", NOW);
        assert_eq!(e.app, UNPARSED);
        let e = parse("", NOW);
        assert_eq!(e.app, UNPARSED);
    }
}
