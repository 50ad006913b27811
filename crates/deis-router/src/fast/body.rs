//! Bodies on the fast path, copied from one side to the other as they arrive, in bounded
//! memory: `Content-Length` bytes as they are, chunked bodies decoded strictly (sizes in hex
//! of at most 16 digits, CRLF only, extensions and trailers bounded and dropped) and encoded
//! again, so that the next hop reads exactly the body the router read; close-delimited
//! responses until the backend closes.

use std::ops::Range;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::head::Framing;

/// Output gathered before a write: a head and the start of its body go out together.
const FLUSH_AT: usize = 64 * 1024;
/// Room made in the input buffer before each read.
const READ_SIZE: usize = 16 * 1024;
/// The longest chunk-size line (extensions included) and the most trailer bytes.
const MAX_LINE: usize = 4096;
const MAX_TRAILERS: usize = 8192;

/// Why a body was not copied whole.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("the sender closed the connection before the body's end")]
    Truncated,
    #[error("reading the body failed")]
    Read(#[source] std::io::Error),
    #[error("writing the body failed")]
    Write(#[source] std::io::Error),
    #[error("the chunked body is malformed")]
    Invalid,
    #[error("the body is larger than allowed")]
    TooLarge,
}

/// Writes `out`, then the body of `framing` read from `buf` and then `src`, to `dst`. `limit`
/// bounds the bytes of a chunked body (a declared length is checked before). Leaves in `buf`
/// whatever follows the body (a pipelined request).
pub(crate) async fn copy<R, W>(
    framing: Framing,
    src: &mut R,
    buf: &mut BytesMut,
    dst: &mut W,
    out: &mut Vec<u8>,
    limit: Option<u64>,
) -> Result<(), BodyError>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut remaining = match framing {
        Framing::Length(n) => n,
        _ => 0,
    };
    let mut chunked = Chunked::default();
    let mut total: u64 = 0;
    loop {
        let done = match framing {
            Framing::Empty => true,
            Framing::Length(_) => {
                let k = usize::try_from(remaining).map_or(buf.len(), |r| r.min(buf.len()));
                out.extend_from_slice(&buf[..k]);
                buf.advance(k);
                remaining -= k as u64;
                remaining == 0
            }
            Framing::Close => {
                out.extend_from_slice(buf);
                buf.clear();
                false
            }
            Framing::Chunked => {
                let (done, data) = chunked.decode(buf, out)?;
                total += data;
                if limit.is_some_and(|l| total > l) {
                    return Err(BodyError::TooLarge);
                }
                done
            }
        };
        if done || out.len() >= FLUSH_AT || buf.is_empty() {
            // Flushed too: TLS keeps what the socket did not take until then.
            dst.write_all(out).await.map_err(BodyError::Write)?;
            dst.flush().await.map_err(BodyError::Write)?;
            out.clear();
        }
        if done {
            return Ok(());
        }
        buf.reserve(READ_SIZE);
        if src.read_buf(buf).await.map_err(BodyError::Read)? == 0 {
            return match framing {
                Framing::Close => dst.flush().await.map_err(BodyError::Write),
                _ => Err(BodyError::Truncated),
            };
        }
    }
}

/// Where a strict chunked decoder is.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In the chunk size's hex digits.
    #[default]
    Size,
    /// In the chunk extensions, up to CR.
    Extension,
    /// After the size line's CR.
    SizeLf,
    /// In a chunk's data.
    Data,
    /// After a chunk's data: CR, then LF.
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final CRLF).
    TrailerStart,
    /// In a trailer line, up to CR.
    Trailer,
    TrailerLf,
    /// After the final CR.
    EndLf,
    Done,
}

/// A chunked body's decoder.
#[derive(Debug, Default)]
pub(crate) struct Chunked {
    state: State,
    /// The current chunk's size, then what is left of it.
    size: u64,
    digits: usize,
    /// Bytes of the current size line.
    line: usize,
    trailers: usize,
}

impl Chunked {
    /// Decodes what `input` holds, consuming it, and appends each chunk to `out` encoded
    /// again (`0\r\n\r\n` at the end, without trailers): whether the body is over, and how
    /// many bytes of data there were.
    pub(crate) fn decode(
        &mut self,
        input: &mut BytesMut,
        out: &mut Vec<u8>,
    ) -> Result<(bool, u64), BodyError> {
        let mut total = 0;
        while !input.is_empty() && self.state != State::Done {
            let (used, data) = self.step(input)?;
            total += data.len() as u64;
            if !data.is_empty() {
                out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
                out.extend_from_slice(&input[data]);
                out.extend_from_slice(b"\r\n");
            }
            input.advance(used);
        }
        if self.state == State::Done {
            out.extend_from_slice(b"0\r\n\r\n");
        }
        Ok((self.state == State::Done, total))
    }

    /// Consumes the start of `input`: how many bytes, and the range of chunk data among them.
    fn step(&mut self, input: &[u8]) -> Result<(usize, Range<usize>), BodyError> {
        if self.state == State::Data {
            let n = usize::try_from(self.size).map_or(input.len(), |s| s.min(input.len()));
            self.size -= n as u64;
            if self.size == 0 {
                self.state = State::DataCr;
            }
            return Ok((n, 0..n));
        }
        let b = input[0];
        let invalid = Err(BodyError::Invalid);
        self.state = match (self.state, b) {
            (State::Size, _) if b.is_ascii_hexdigit() => {
                self.digits += 1;
                if self.digits > 16 {
                    return invalid;
                }
                let digit = char::from(b).to_digit(16).map_or(0, u64::from);
                self.size = self.size << 4 | digit;
                State::Size
            }
            (State::Size, b';' | b' ' | b'\t') if self.digits > 0 => State::Extension,
            (State::Size, b'\r') if self.digits > 0 => State::SizeLf,
            (State::Extension, b'\r') => State::SizeLf,
            (State::Extension | State::Trailer, _) if b == b'\t' || (b >= 0x20 && b != 0x7f) => {
                self.state
            }
            (State::SizeLf, b'\n') if self.size == 0 => State::TrailerStart,
            (State::SizeLf, b'\n') => State::Data,
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataLf, b'\n') => {
                (self.size, self.digits, self.line) = (0, 0, 0);
                State::Size
            }
            (State::TrailerStart, b'\r') => State::EndLf,
            (State::TrailerStart, _) if b.is_ascii_graphic() => State::Trailer,
            (State::Trailer, b'\r') => State::TrailerLf,
            (State::TrailerLf, b'\n') => State::TrailerStart,
            (State::EndLf, b'\n') => State::Done,
            _ => return invalid,
        };
        self.line += 1;
        if matches!(
            self.state,
            State::Trailer | State::TrailerStart | State::TrailerLf
        ) {
            self.trailers += 1;
        }
        if self.line > MAX_LINE || self.trailers > MAX_TRAILERS {
            return invalid;
        }
        Ok((1, 0..0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces of `piece` bytes: the data, `|` and what follows the body,
    /// or `invalid`.
    fn decode(input: &str, piece: usize) -> String {
        let (mut chunked, mut data, mut at) = (Chunked::default(), Vec::new(), 0);
        let input = input.as_bytes();
        while chunked.state != State::Done {
            if at == input.len() {
                return "unfinished".to_owned();
            }
            let end = (at + piece).min(input.len());
            let Ok((used, range)) = chunked.step(&input[at..end]) else {
                return "invalid".to_owned();
            };
            data.extend_from_slice(&input[at..end][range]);
            at += used;
        }
        format!(
            "{}|{}",
            String::from_utf8_lossy(&data),
            String::from_utf8_lossy(&input[at..])
        )
    }

    #[test]
    fn chunked_bodies_are_read_strictly() {
        let check = |input: &str, expect: &str| {
            for piece in [1, 3, 1000] {
                assert_eq!(
                    decode(input, piece),
                    expect,
                    "{input:?} in pieces of {piece}"
                );
            }
        };
        check("5\r\nhello\r\n0\r\n\r\n", "hello|");
        check(
            "5;name=v\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nGET",
            "hello0123456789|GET",
        );
        check("5\r\nhello\r\n0\r\n", "unfinished");
        check("5\nhello\r\n0\r\n\r\n", "invalid");
        check("5\r\nhello\n0\r\n\r\n", "invalid");
        check("5\r\nhelloX\r\n0\r\n\r\n", "invalid");
        check("-5\r\nhello\r\n0\r\n\r\n", "invalid");
        check("\r\nhello\r\n0\r\n\r\n", "invalid");
        check("0x5\r\nhello\r\n0\r\n\r\n", "invalid");
        check("11111111111111111\r\n", "invalid");
        check("5;a\0b\r\nhello\r\n0\r\n\r\n", "invalid");
        check(
            &format!("5;{}\r\nhello\r\n0\r\n\r\n", "x".repeat(MAX_LINE)),
            "invalid",
        );
        check(
            &format!("0\r\nX: {}\r\n\r\n", "x".repeat(MAX_TRAILERS)),
            "invalid",
        );
    }

    #[tokio::test]
    async fn bodies_are_copied_by_their_framing_and_the_rest_left() {
        let run = |framing, input: &'static str, limit| async move {
            let (mut src, mut feed) = tokio::io::duplex(64);
            tokio::spawn(async move {
                let _ = feed.write_all(input.as_bytes()).await;
            });
            let (mut buf, mut dst, mut out) = (BytesMut::new(), Vec::new(), b"head|".to_vec());
            let copied = copy(framing, &mut src, &mut buf, &mut dst, &mut out, limit).await;
            (
                copied.map_err(|e| e.to_string()),
                String::from_utf8_lossy(&dst).into_owned(),
            )
        };
        let (r, got) = run(Framing::Length(5), "helloGET", None).await;
        assert!(r.is_ok());
        assert_eq!(got, "head|hello");
        let (r, got) = run(Framing::Chunked, "3\r\nabc\r\n0\r\n\r\n", Some(3)).await;
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(got, "head|3\r\nabc\r\n0\r\n\r\n");
        let (r, _) = run(Framing::Chunked, "3\r\nabc\r\n0\r\n\r\n", Some(2)).await;
        assert_eq!(r.err().as_deref(), Some("the body is larger than allowed"));
        let (r, got) = run(Framing::Close, "all of it", None).await;
        assert!(r.is_ok());
        assert_eq!(got, "head|all of it");
        let (r, _) = run(Framing::Length(50), "short", None).await;
        assert!(matches!(r.err().as_deref(), Some(e) if e.contains("closed")));
    }
}
