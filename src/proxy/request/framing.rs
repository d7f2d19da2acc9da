//! Where an HTTP/1.1 message body ends (RFC 9112 §6): a fixed length, a
//! chunked body, or everything until the sender closes. The fast path passes
//! bodies through as they are, so a chunked body is scanned, not decoded, and
//! its bytes go out exactly as they came in; [`crate::proxy::request::direct`] takes only the
//! chunks' data, which the scan points out as it passes.

use std::ops::Range;

use httparse::Header;

/// How a response body is delimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 204, 304).
    Empty,
    Length(u64),
    Chunked(ChunkedScanner),
    /// Until the backend closes its connection.
    UntilClose,
}

impl Framing {
    /// Counts `available`, the next bytes from the sender, off the body.
    /// Returns how many of them belong to it and whether it ends with them;
    /// `on_data` is given the ranges of `available` that are the body's data
    /// (all of them, except a chunked body's chunk lines and trailers).
    pub fn advance(
        &mut self,
        available: &[u8],
        mut on_data: impl FnMut(Range<usize>),
    ) -> Result<(usize, bool), BadFraming> {
        Ok(match self {
            Framing::Empty => (0, true),
            Framing::Length(remaining) => {
                let take = available
                    .len()
                    .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                *remaining -= take as u64;
                on_data(0..take);
                (take, *remaining == 0)
            }
            Framing::Chunked(scanner) => scanner.scan(available, on_data)?,
            Framing::UntilClose => {
                on_data(0..available.len());
                (available.len(), false)
            }
        })
    }
}

/// The headers that decide framing were contradictory or malformed.
#[derive(Debug, PartialEq, Eq)]
pub struct BadFraming;

/// The framing of a response to a request with `request_is_head`, per
/// RFC 9112 §6.3: no body for HEAD, 1xx, 204 and 304; `Transfer-Encoding`
/// wins over `Content-Length` (and then only a final `chunked` delimits);
/// several different lengths are an error.
pub fn response_framing(
    request_is_head: bool,
    status: u16,
    headers: &[Header<'_>],
) -> Result<Framing, BadFraming> {
    if request_is_head || status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(Framing::Empty);
    }
    let mut length = None;
    let mut transfer_encoding = None;
    for header in headers {
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = Some(header.value);
        } else if header.name.eq_ignore_ascii_case("content-length") {
            let value = content_length(header.value).ok_or(BadFraming)?;
            if length.is_some_and(|l| l != value) {
                return Err(BadFraming);
            }
            length = Some(value);
        }
    }
    match (transfer_encoding, length) {
        (Some(codings), _) => Ok(if last_coding_is_chunked(codings) {
            Framing::Chunked(ChunkedScanner::default())
        } else {
            Framing::UntilClose
        }),
        (None, Some(n)) => Ok(Framing::Length(n)),
        (None, None) => Ok(Framing::UntilClose),
    }
}

/// A `Content-Length` value: digits only, no sign, no list.
pub fn content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

fn last_coding_is_chunked(codings: &[u8]) -> bool {
    codings
        .rsplit(|&b| b == b',')
        .next()
        .map(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"))
        .unwrap_or(false)
}

/// Follows a chunked body byte by byte to find its end (the empty line after
/// the last chunk and any trailer fields), without copying or decoding it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkedScanner {
    state: ChunkState,
    size: u64,
    /// Bytes in the current chunk-size or trailer line, for the line limit.
    line: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    /// After `;`: a chunk extension, skipped to the line end.
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    Trailer,
    TrailerLf,
    FinalLf,
    Done,
}

/// A chunk-size line or trailer line longer than this is refused, so a
/// backend cannot make the scanner read forever without progress.
const MAX_LINE: usize = 8 * 1024;

impl ChunkedScanner {
    /// Scans `bytes`, the next bytes of the body, giving `on_data` the range
    /// of each run of chunk data in them. Returns how many of them belong to
    /// the body and whether the body ended there.
    fn scan(
        &mut self,
        bytes: &[u8],
        mut on_data: impl FnMut(Range<usize>),
    ) -> Result<(usize, bool), BadFraming> {
        let mut i = 0;
        while i < bytes.len() {
            if self.state == ChunkState::Data {
                let take = (bytes.len() - i).min(usize::try_from(self.size).unwrap_or(usize::MAX));
                on_data(i..i + take);
                i += take;
                self.size -= take as u64;
                if self.size == 0 {
                    self.state = ChunkState::DataCr;
                }
                continue;
            }
            let b = bytes[i];
            i += 1;
            self.state = match self.state {
                ChunkState::Size => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        let digit = (b as char).to_digit(16).unwrap_or(0) as u64;
                        if self.size >> 60 != 0 {
                            return Err(BadFraming);
                        }
                        self.size = self.size * 16 + digit;
                        self.line += 1;
                        ChunkState::Size
                    }
                    _ if self.line == 0 => return Err(BadFraming),
                    b';' | b' ' | b'\t' => ChunkState::Extension,
                    b'\r' => ChunkState::SizeLf,
                    _ => return Err(BadFraming),
                },
                ChunkState::Extension => {
                    self.line += 1;
                    if self.line > MAX_LINE {
                        return Err(BadFraming);
                    }
                    match b {
                        b'\r' => ChunkState::SizeLf,
                        b'\n' => return Err(BadFraming),
                        _ => ChunkState::Extension,
                    }
                }
                ChunkState::SizeLf => {
                    if b != b'\n' {
                        return Err(BadFraming);
                    }
                    self.line = 0;
                    if self.size == 0 {
                        ChunkState::TrailerStart
                    } else {
                        ChunkState::Data
                    }
                }
                // Handled before the byte is taken; never reached.
                ChunkState::Data => return Err(BadFraming),
                ChunkState::DataCr if b == b'\r' => ChunkState::DataLf,
                ChunkState::DataLf if b == b'\n' => ChunkState::Size,
                ChunkState::DataCr | ChunkState::DataLf => return Err(BadFraming),
                ChunkState::TrailerStart => match b {
                    b'\r' => ChunkState::FinalLf,
                    b'\n' => return Err(BadFraming),
                    _ => {
                        self.line = 1;
                        ChunkState::Trailer
                    }
                },
                ChunkState::Trailer => {
                    self.line += 1;
                    if self.line > MAX_LINE {
                        return Err(BadFraming);
                    }
                    match b {
                        b'\r' => ChunkState::TrailerLf,
                        b'\n' => return Err(BadFraming),
                        _ => ChunkState::Trailer,
                    }
                }
                ChunkState::TrailerLf if b == b'\n' => ChunkState::TrailerStart,
                ChunkState::FinalLf if b == b'\n' => {
                    self.state = ChunkState::Done;
                    return Ok((i, true));
                }
                ChunkState::TrailerLf | ChunkState::FinalLf => return Err(BadFraming),
                ChunkState::Done => return Ok((i - 1, true)),
            };
            if self.state == ChunkState::Size && self.line > 16 {
                return Err(BadFraming);
            }
        }
        Ok((i, self.state == ChunkState::Done))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(body: &[u8], step: usize) -> Result<(usize, bool), BadFraming> {
        let mut scanner = ChunkedScanner::default();
        let mut used = 0;
        for piece in body.chunks(step) {
            let (n, done) = scanner.scan(piece, |_| {})?;
            used += n;
            if done {
                return Ok((used, true));
            }
        }
        Ok((used, false))
    }

    #[test]
    fn chunked_data_is_pointed_out_in_any_split() {
        let body = b"5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\nX-Trailer: yes\r\n\r\n";
        for step in 1..=body.len() {
            let mut framing = Framing::Chunked(ChunkedScanner::default());
            let mut data = Vec::new();
            let mut ended = false;
            for piece in body.chunks(step) {
                let (_, done) = framing
                    .advance(piece, |r| data.extend_from_slice(&piece[r]))
                    .unwrap();
                ended = done;
            }
            assert_eq!((&data[..], ended), (&b"hello!"[..], true), "step {step}");
        }
    }

    #[test]
    fn chunked_bodies_end_where_they_should_in_any_split() {
        let body = b"5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\nX-Trailer: yes\r\n\r\nNEXT";
        let end = body.len() - 4;
        for step in 1..=body.len() {
            assert_eq!(scan_all(body, step), Ok((end, true)), "step {step}");
        }
        let plain = b"A\r\n0123456789\r\n0\r\n\r\n";
        assert_eq!(scan_all(plain, 3), Ok((plain.len(), true)));
        assert_eq!(scan_all(b"5\r\nhel", 2), Ok((6, false)));
    }

    #[test]
    fn malformed_chunked_bodies_are_refused() {
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"5\nhello",
            b"5\r\nhelloX\r\n",
            b"0\r\n\n",
            b"fffffffffffffffff\r\n",
            b"1\r\na\r\n0\r\nbad\n",
        ] {
            assert_eq!(scan_all(bad, 1), Err(BadFraming), "{bad:?}");
        }
    }

    fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> Vec<Header<'a>> {
        pairs
            .iter()
            .map(|(name, value)| Header {
                name,
                value: value.as_bytes(),
            })
            .collect()
    }

    #[test]
    fn response_framing_follows_rfc_9112() {
        let cl = headers(&[("Content-Length", "12")]);
        assert_eq!(response_framing(false, 200, &cl), Ok(Framing::Length(12)));
        assert_eq!(response_framing(true, 200, &cl), Ok(Framing::Empty));
        assert_eq!(response_framing(false, 304, &cl), Ok(Framing::Empty));
        assert_eq!(response_framing(false, 204, &[]), Ok(Framing::Empty));
        assert_eq!(response_framing(false, 200, &[]), Ok(Framing::UntilClose));
        let te = headers(&[
            ("content-length", "3"),
            ("Transfer-Encoding", "gzip, Chunked"),
        ]);
        assert!(matches!(
            response_framing(false, 200, &te),
            Ok(Framing::Chunked(_))
        ));
        let te_gzip = headers(&[("transfer-encoding", "chunked, gzip")]);
        assert_eq!(
            response_framing(false, 200, &te_gzip),
            Ok(Framing::UntilClose)
        );
        let two = headers(&[("content-length", "3"), ("content-length", "4")]);
        assert_eq!(response_framing(false, 200, &two), Err(BadFraming));
        let same = headers(&[("content-length", "3"), ("content-length", "3")]);
        assert_eq!(response_framing(false, 200, &same), Ok(Framing::Length(3)));
        for bad in ["-1", "+3", "3,3", "", " 3", "99999999999999999999"] {
            assert_eq!(content_length(bad.as_bytes()), None, "{bad:?}");
        }
    }
}
