//! Whether an HTTP/2 client is in the middle of sending a header block.
//!
//! hyper holds an HTTP/2 request back until its whole header block has
//! arrived (a HEADERS frame and any CONTINUATIONs, each complete), and meanwhile the
//! connection can carry nothing else. It offers no timeout for that wait, so
//! the listener follows the frames as they are read: only their 9-byte
//! heads, never a payload, so the cost is a few comparisons per frame.

/// The first bytes of every HTTP/2 connection (RFC 9113, section 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_HEADERS: u8 = 0x4;

/// Follows one connection's bytes from its first.
#[derive(Debug)]
pub struct HeaderBlocks {
    at: At,
    /// A header block has begun and its last frame is not complete.
    open: bool,
    /// The frame being read ends its header block.
    ends_block: bool,
}

#[derive(Debug)]
enum At {
    /// So many bytes of the preface seen.
    Preface(usize),
    /// So many bytes of a frame's head seen.
    Head([u8; 9], usize),
    /// So many bytes of a frame's payload still to come.
    Payload(usize),
    /// Not HTTP/2: nothing to follow.
    Off,
}

/// What one read changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    None,
    /// A header block began.
    Opened,
    /// The header block in progress is complete.
    Closed,
}

impl Default for HeaderBlocks {
    fn default() -> Self {
        HeaderBlocks {
            at: At::Preface(0),
            open: false,
            ends_block: false,
        }
    }
}

impl HeaderBlocks {
    /// Whether these are (still) HTTP/2 bytes worth following.
    pub fn is_following(&self) -> bool {
        !matches!(self.at, At::Off)
    }

    /// Follows `bytes`, the next ones read; says whether a header block
    /// began or ended in them (both, in one read, is no change).
    pub fn read(&mut self, mut bytes: &[u8]) -> Change {
        let was_open = self.open;
        while !bytes.is_empty() {
            match &mut self.at {
                At::Off => break,
                At::Preface(seen) => {
                    let n = (PREFACE.len() - *seen).min(bytes.len());
                    if bytes[..n] != PREFACE[*seen..*seen + n] {
                        self.at = At::Off;
                        break;
                    }
                    *seen += n;
                    bytes = &bytes[n..];
                    if *seen == PREFACE.len() {
                        self.at = At::Head([0; 9], 0);
                    }
                }
                At::Head(head, seen) => {
                    let n = (9 - *seen).min(bytes.len());
                    head[*seen..*seen + n].copy_from_slice(&bytes[..n]);
                    *seen += n;
                    bytes = &bytes[n..];
                    if *seen == 9 {
                        let length = usize::from(head[0]) << 16
                            | usize::from(head[1]) << 8
                            | usize::from(head[2]);
                        let (kind, flags) = (head[3], head[4]);
                        if kind == HEADERS || kind == CONTINUATION {
                            self.open = true;
                            self.ends_block = flags & END_HEADERS != 0;
                        }
                        self.at = At::Payload(length);
                        self.frame_payload_done_if_empty();
                    }
                }
                At::Payload(left) => {
                    let n = (*left).min(bytes.len());
                    *left -= n;
                    bytes = &bytes[n..];
                    self.frame_payload_done_if_empty();
                }
            }
        }
        match (was_open, self.open) {
            (false, true) => Change::Opened,
            (true, false) => Change::Closed,
            _ => Change::None,
        }
    }

    fn frame_payload_done_if_empty(&mut self) {
        if let At::Payload(0) = self.at {
            if self.ends_block {
                self.open = false;
                self.ends_block = false;
            }
            self.at = At::Head([0; 9], 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        f.extend([0, 0, 0, stream]);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn a_header_block_is_open_until_its_last_frame_is_whole() {
        let mut blocks = HeaderBlocks::default();
        let settings = frame(0x4, 0, 0, &[]);
        assert_eq!(blocks.read(PREFACE), Change::None);
        assert_eq!(blocks.read(&settings), Change::None);
        // A whole request in one read: opened and closed, no change.
        assert_eq!(
            blocks.read(&frame(HEADERS, END_HEADERS | 0x1, 1, &[0x82, 0x87])),
            Change::None
        );
        // HEADERS without END_HEADERS, then its CONTINUATION a byte at a time.
        let headers = frame(HEADERS, 0, 3, &[0x82]);
        assert_eq!(blocks.read(&headers[..4]), Change::None, "half a head");
        assert_eq!(blocks.read(&headers[4..]), Change::Opened);
        let continuation = frame(CONTINUATION, END_HEADERS, 3, &[0x87, 0x84]);
        let (last, rest) = continuation.split_last().unwrap();
        for byte in rest {
            assert_eq!(blocks.read(std::slice::from_ref(byte)), Change::None);
        }
        assert_eq!(blocks.read(&[*last]), Change::Closed);
        // A HEADERS frame that says END_HEADERS but whose payload stalls.
        let whole = frame(HEADERS, END_HEADERS, 5, &[0x82; 40]);
        assert_eq!(blocks.read(&whole[..20]), Change::Opened);
        assert_eq!(blocks.read(&whole[20..]), Change::Closed);
        // DATA, however large, never opens one.
        let data = frame(0x0, 0, 5, &[7; 1000]);
        assert_eq!(blocks.read(&data), Change::None);
        assert!(blocks.is_following());
    }

    #[test]
    fn http1_is_not_followed() {
        let mut blocks = HeaderBlocks::default();
        assert_eq!(blocks.read(b"GET / HTTP/1.1\r\n"), Change::None);
        assert!(!blocks.is_following());
        let mut blocks = HeaderBlocks::default();
        assert_eq!(blocks.read(b"PRI * HTTP/1.1"), Change::None);
        assert!(!blocks.is_following());
    }
}
