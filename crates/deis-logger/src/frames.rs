//! Turns the frames of a container's Docker log stream (with `timestamps=true`) into lines.
//!
//! Docker writes each log message as one frame, `<RFC 3339 time> <text>`; a line longer than
//! the log driver's buffer (16 KiB) arrives as several messages with no newline but the last
//! (each may carry the same time as the first), and the last line of a container that stops
//! mid-line has none at all. A line's position is the time of its last piece, so a position is
//! acknowledged only once the whole line is, and on a resumed stream every piece at or before
//! the last position shipped is skipped: a line is never shipped twice. Positions shipped from
//! one stream always increase (a part of a cut line, or a line whose time is not after the one
//! before, takes the next nanosecond), since the logger keeps only what lies beyond the last
//! position it stored.

use chrono::DateTime;

/// The longest line kept whole; a longer one is shipped in pieces of this size, none lost.
pub const MAX_LINE_BYTES: usize = 256 * 1024;

/// One line: its text and its position (nanoseconds since the epoch of its last piece).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assembled {
    pub position: u64,
    pub text: String,
}

/// The line being assembled from a stream's frames.
#[derive(Debug)]
pub struct Assembler {
    /// Pieces at or before this position were shipped already (before this stream).
    after: u64,
    /// The last position this assembler gave out.
    emitted: u64,
    /// The time of the piece being read; `None` for one that was shipped already.
    current: Option<u64>,
    /// Whether the next bytes start a message (and so carry a time).
    at_message_start: bool,
    line: Vec<u8>,
    /// The time of the line's last piece.
    line_position: u64,
    /// Whether the line holds any piece not shipped yet (an empty line counts).
    fresh: bool,
}

impl Assembler {
    /// An assembler that skips everything at or before position `after`.
    pub fn new(after: u64) -> Assembler {
        Assembler {
            after,
            emitted: after,
            current: None,
            at_message_start: true,
            line: Vec::new(),
            line_position: 0,
            fresh: false,
        }
    }

    /// Takes one frame; the lines it completes.
    pub fn push(&mut self, frame: &[u8]) -> Vec<Assembled> {
        let mut out = Vec::new();
        // Docker starts every message on a new frame; a TTY stream may split or join them,
        // so a time is also looked for after every newline.
        self.at_message_start = true;
        let mut rest = frame;
        while !rest.is_empty() {
            if self.at_message_start {
                self.at_message_start = false;
                if let Some((position, text)) = split_time(rest) {
                    self.current = (position > self.after).then_some(position);
                    rest = text;
                }
            }
            let (piece, ends_line) = match rest.iter().position(|b| *b == b'\n') {
                Some(i) => (&rest[..i], true),
                None => (rest, false),
            };
            rest = if ends_line {
                &rest[piece.len() + 1..]
            } else {
                &[]
            };
            if let Some(position) = self.current {
                self.fresh = true;
                self.append(piece, position, &mut out);
            }
            if ends_line {
                self.at_message_start = true;
                self.finish(&mut out);
            }
        }
        out
    }

    /// The stream ended for good (the container stopped): what remains is its last line.
    pub fn end(&mut self) -> Option<Assembled> {
        let mut out = Vec::new();
        if !self.line.is_empty() {
            self.finish(&mut out);
        }
        self.line.clear();
        self.fresh = false;
        out.pop()
    }

    fn append(&mut self, piece: &[u8], position: u64, out: &mut Vec<Assembled>) {
        // A line too long to keep whole is cut between Docker's pieces, each part under the
        // time of its own last piece, so a resumed stream re-reads no part of a shipped one.
        if !self.line.is_empty() && self.line.len() + piece.len() > MAX_LINE_BYTES {
            self.emit(self.line_position, out);
        }
        self.current = Some(position);
        if piece.is_empty() {
            self.line_position = position;
            return;
        }
        // A single piece longer than that (a TTY stream) is cut too; its parts take the
        // nanoseconds just before its own time so that positions stay distinct and ordered.
        let parts = piece.len().div_ceil(MAX_LINE_BYTES).max(1);
        for (i, part) in piece.chunks(MAX_LINE_BYTES).enumerate() {
            let before = u64::try_from(parts - 1 - i).unwrap_or(0);
            self.line.extend_from_slice(part);
            self.line_position = position.saturating_sub(before);
            if i + 1 < parts {
                self.emit(self.line_position, out);
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<Assembled>) {
        if self.fresh {
            self.emit(self.line_position, out);
        }
        self.line.clear();
        self.fresh = false;
    }

    fn emit(&mut self, position: u64, out: &mut Vec<Assembled>) {
        let text = String::from_utf8_lossy(&self.line)
            .trim_end_matches('\r')
            .to_owned();
        self.line.clear();
        let position = position.max(self.emitted.saturating_add(1));
        self.emitted = position;
        out.push(Assembled { position, text });
    }
}

/// The time (nanoseconds) a frame starts with, if it does.
pub fn frame_time(frame: &[u8]) -> Option<u64> {
    split_time(frame).map(|(time, _)| time)
}

/// `<RFC 3339 time> <rest>` → (nanoseconds, rest).
fn split_time(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let space = bytes.iter().take(40).position(|b| *b == b' ')?;
    let stamp = std::str::from_utf8(&bytes[..space]).ok()?;
    let time = DateTime::parse_from_rfc3339(stamp).ok()?;
    let nanos = u64::try_from(time.timestamp_nanos_opt()?).ok()?;
    Some((nanos, &bytes[space + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "2026-01-01T00:00:01.000000001Z";
    const T2: &str = "2026-01-01T00:00:02.000000002Z";
    const T3: &str = "2026-01-01T00:00:03.000000003Z";

    fn nanos(stamp: &str) -> u64 {
        split_time(format!("{stamp} x").as_bytes()).map_or(0, |(n, _)| n)
    }

    fn texts(lines: &[Assembled]) -> Vec<&str> {
        lines.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn one_message_per_frame() {
        let mut a = Assembler::new(0);
        let lines = a.push(format!("{T1} hello\n").as_bytes());
        assert_eq!(
            lines,
            vec![Assembled {
                position: nanos(T1),
                text: "hello".into()
            }]
        );
        assert_eq!(texts(&a.push(format!("{T2} \n").as_bytes())), vec![""]);
    }

    #[test]
    fn pieces_of_a_long_line_are_joined_at_the_last_pieces_time() {
        let mut a = Assembler::new(0);
        assert!(a.push(format!("{T1} aaa").as_bytes()).is_empty());
        assert!(a.push(format!("{T2} bbb").as_bytes()).is_empty());
        let lines = a.push(format!("{T3} ccc\n").as_bytes());
        assert_eq!(texts(&lines), vec!["aaabbbccc"]);
        assert_eq!(lines[0].position, nanos(T3));
    }

    #[test]
    fn the_last_line_without_a_newline_is_kept() {
        let mut a = Assembler::new(0);
        assert!(a.push(format!("{T1} last words").as_bytes()).is_empty());
        let last = a.end().map(|l| l.text);
        assert_eq!(last.as_deref(), Some("last words"));
        assert_eq!(a.end(), None, "nothing twice");
    }

    #[test]
    fn a_resumed_stream_skips_what_was_shipped() {
        // T1..T2 were one line, shipped at T2; T3 is new.
        let mut a = Assembler::new(nanos(T2));
        assert!(a.push(format!("{T1} old-").as_bytes()).is_empty());
        assert!(a.push(format!("{T2} line\n").as_bytes()).is_empty());
        assert_eq!(
            texts(&a.push(format!("{T3} new\n").as_bytes())),
            vec!["new"]
        );
        // A shipped partial line followed by a new message does not glue them together.
        let mut a = Assembler::new(nanos(T2));
        assert!(a.push(format!("{T2} partial").as_bytes()).is_empty());
        assert_eq!(
            texts(&a.push(format!("{T3} next\n").as_bytes())),
            vec!["next"]
        );
    }

    #[test]
    fn joined_messages_of_a_tty_stream_are_split() {
        let mut a = Assembler::new(0);
        let lines = a.push(format!("{T1} one\n{T2} two\n{T3} thr").as_bytes());
        assert_eq!(texts(&lines), vec!["one", "two"]);
        assert_eq!(lines[1].position, nanos(T2));
        assert_eq!(a.push(b"ee\n")[0].text, "three");
    }

    #[test]
    fn a_long_line_whose_pieces_share_one_time_is_shipped_whole() {
        let mut a = Assembler::new(0);
        let chunk = "z".repeat(16 * 1024);
        let mut lines = Vec::new();
        for _ in 0..64 {
            lines.extend(a.push(format!("{T1} {chunk}").as_bytes()));
        }
        lines.extend(a.push(format!("{T1} end\n").as_bytes()));
        let total: usize = lines.iter().map(|l| l.text.len()).sum();
        assert_eq!(total, 64 * chunk.len() + 3, "no byte lost: {}", lines.len());
        assert!(lines.len() >= 4);
        assert!(
            lines.windows(2).all(|w| w[0].position < w[1].position),
            "positions increase"
        );
        // Resumed after all of it: nothing again.
        let mut resumed = Assembler::new(lines.last().map_or(0, |l| l.position));
        for _ in 0..64 {
            assert!(resumed.push(format!("{T1} {chunk}").as_bytes()).is_empty());
        }
        assert!(resumed.push(format!("{T1} end\n").as_bytes()).is_empty());
    }

    #[test]
    fn an_endless_line_is_shipped_in_bounded_pieces() {
        let mut a = Assembler::new(0);
        let chunk = "x".repeat(16 * 1024);
        let mut lines = Vec::new();
        let base = nanos(T1);
        for i in 0..40u64 {
            let stamp = chrono::DateTime::from_timestamp_nanos(
                i64::try_from(base + i * 1000).unwrap_or_default(),
            )
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            lines.extend(a.push(format!("{stamp} {chunk}").as_bytes()));
        }
        lines.extend(a.end());
        assert!(lines.iter().all(|l| l.text.len() <= MAX_LINE_BYTES));
        let total: usize = lines.iter().map(|l| l.text.len()).sum();
        assert_eq!(total, 40 * chunk.len(), "no byte lost");
        assert!(
            lines.windows(2).all(|w| w[0].position < w[1].position),
            "positions increase"
        );
    }
}
