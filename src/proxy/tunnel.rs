//! A WebSocket tunnel between a client and a backend after both sides
//! switched protocols. Bytes are copied unchanged both ways; the copier
//! follows frame boundaries (headers only, payloads are never inspected or
//! buffered) so that when the session ends or the proxy shuts down it can
//! finish the frame in flight and send each side a proper Close frame
//! (1001, "going away") instead of cutting the connection mid-frame.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use super::scratch;

/// Largest read per step.
const READ_MAX: usize = scratch::SIZE;

/// Reads at most `limit` bytes (`limit` > 0) from `from` through the
/// thread's buffer ([`scratch`]) and writes them to `to` in the same poll,
/// so a message costs no allocation and an idle tunnel holds no buffer;
/// only what `to` cannot take at once is copied into `pending`, for the
/// caller to write. `Ok(false)` at EOF.
fn poll_copy<R, W>(
    cx: &mut Context<'_>,
    from: &mut R,
    to: &mut W,
    limit: usize,
    frames: &mut Frames,
    pending: &mut Vec<u8>,
) -> Poll<io::Result<bool>>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let moved = ready!(scratch::poll_read_with(cx, from, limit, |cx, data| {
        if data.is_empty() {
            return Ok(false);
        }
        frames.advance(data);
        let written = match Pin::new(&mut *to).poll_write(cx, data) {
            Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => 0,
        };
        pending.extend_from_slice(&data[written..]);
        Ok(true)
    }))?;
    Poll::Ready(moved)
}

/// Close frame from the proxy (as server) to the client: unmasked, 1001.
const CLOSE_TO_CLIENT: [u8; 4] = [0x88, 0x02, 0x03, 0xE9];

/// How long a side may take to reach the end of its current frame, and to
/// take the Close, once the tunnel is told to stop.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Close frame from the proxy (as client) to the backend: must be masked.
fn close_to_backend() -> [u8; 8] {
    let mut mask = [0u8; 4];
    rand::fill(&mut mask);
    [
        0x88,
        0x82,
        mask[0],
        mask[1],
        mask[2],
        mask[3],
        0x03 ^ mask[0],
        0xE9 ^ mask[1],
    ]
}

/// Where a byte stream stands relative to WebSocket frame boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frames {
    /// Inside a frame header: `have` of `need` bytes seen so far.
    Head {
        have: usize,
        need: usize,
        head: [u8; 14],
    },
    /// Inside a payload with this many bytes to go.
    Payload(u64),
}

impl Frames {
    const START: Frames = Frames::Head {
        have: 0,
        need: 2,
        head: [0; 14],
    };

    fn at_boundary(&self) -> bool {
        matches!(self, Frames::Head { have: 0, .. })
    }

    /// The most bytes that can be read without passing the next boundary.
    fn bytes_to_boundary(&self) -> usize {
        match *self {
            Frames::Head { have, need, .. } => need - have,
            Frames::Payload(left) => left.min(usize::MAX as u64) as usize,
        }
    }

    fn advance(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match self {
                Frames::Payload(left) => {
                    let n = (*left).min(data.len() as u64);
                    *left -= n;
                    data = &data[n as usize..];
                    if *left == 0 {
                        *self = Frames::START;
                    }
                }
                Frames::Head { have, need, head } => {
                    let n = (*need - *have).min(data.len());
                    head[*have..*have + n].copy_from_slice(&data[..n]);
                    *have += n;
                    data = &data[n..];
                    if *have < *need {
                        continue;
                    }
                    if *need == 2 {
                        let ext = match head[1] & 0x7f {
                            126 => 2,
                            127 => 8,
                            _ => 0,
                        };
                        let mask = if head[1] & 0x80 != 0 { 4 } else { 0 };
                        *need = 2 + ext + mask;
                        if *have < *need {
                            continue;
                        }
                    }
                    let length = match head[1] & 0x7f {
                        126 => u64::from(u16::from_be_bytes([head[2], head[3]])),
                        127 => u64::from_be_bytes([
                            head[2], head[3], head[4], head[5], head[6], head[7], head[8], head[9],
                        ]),
                        n => u64::from(n),
                    };
                    *self = if length == 0 {
                        Frames::START
                    } else {
                        Frames::Payload(length)
                    };
                }
            }
        }
    }
}

/// Copies `from` → `to` until EOF, or until `stop` turns true; then
/// finishes the current frame, writes `close`, and shuts `to` down.
async fn pump<R, W>(mut from: R, mut to: W, mut stop: watch::Receiver<bool>, close: &[u8])
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut frames = Frames::START;
    let mut stopping = false;
    let mut pending = Vec::new();
    // Made once: a new one per message would register with the channel
    // again every time.
    let stop_signal = stopped(&mut stop);
    tokio::pin!(stop_signal);
    loop {
        if stopping && frames.at_boundary() {
            let _ = to.write_all(close).await;
            let _ = to.flush().await;
            let _ = to.shutdown().await;
            return;
        }
        let limit = if stopping {
            frames.bytes_to_boundary().min(READ_MAX)
        } else {
            READ_MAX
        };
        let copy = std::future::poll_fn(|cx| {
            poll_copy(cx, &mut from, &mut to, limit, &mut frames, &mut pending)
        });
        tokio::select! {
            copied = copy => match copied {
                Ok(true) => {
                    if !pending.is_empty() {
                        if to.write_all(&pending).await.is_err() {
                            return;
                        }
                        // An idle tunnel keeps no buffer.
                        pending = Vec::new();
                    }
                    // A TLS writer may hold back what it took until flushed.
                    if to.flush().await.is_err() {
                        return;
                    }
                }
                _ => {
                    let _ = to.shutdown().await;
                    return;
                }
            },
            _ = &mut stop_signal, if !stopping => stopping = true,
        }
    }
}

/// Resolves once `stop` is true (the borrow of the value ends here, so the
/// caller's future stays `Send`).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Runs the tunnel until both directions end, or `stop` resolves (session
/// ended, proxy shutting down). Returns why it ended.
pub async fn run<C, B>(
    client: C,
    backend: B,
    stop: impl Future<Output = &'static str>,
) -> &'static str
where
    C: AsyncRead + AsyncWrite + Send + 'static,
    B: AsyncRead + AsyncWrite + Send + 'static,
{
    let (client_read, client_write) = tokio::io::split(client);
    let (backend_read, backend_write) = tokio::io::split(backend);
    let (stop_tx, stop_rx) = watch::channel(false);
    let to_backend = close_to_backend();
    let both = async {
        tokio::join!(
            pump(client_read, backend_write, stop_rx.clone(), &to_backend),
            pump(backend_read, client_write, stop_rx, &CLOSE_TO_CLIENT),
        )
    };
    tokio::pin!(both);
    tokio::select! {
        _ = &mut both => "closed",
        reason = stop => {
            let _ = stop_tx.send(true);
            let _ = tokio::time::timeout(CLOSE_GRACE, &mut both).await;
            reason
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload_len: usize, masked: bool) -> Vec<u8> {
        let mut out = vec![0x82];
        let mask_bit = if masked { 0x80 } else { 0 };
        if payload_len < 126 {
            out.push(mask_bit | payload_len as u8);
        } else if payload_len <= 0xffff {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(payload_len as u16).to_be_bytes());
        } else {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(payload_len as u64).to_be_bytes());
        }
        if masked {
            out.extend_from_slice(&[1, 2, 3, 4]);
        }
        out.extend(std::iter::repeat_n(7u8, payload_len));
        out
    }

    #[test]
    fn tracks_boundaries_across_any_split() {
        let mut stream = Vec::new();
        for (len, masked) in [
            (0, false),
            (5, true),
            (300, false),
            (70_000, true),
            (125, false),
        ] {
            stream.extend(frame(len, masked));
        }
        for chunk in [1, 2, 3, 7, 1000, stream.len()] {
            let mut frames = Frames::START;
            for piece in stream.chunks(chunk) {
                frames.advance(piece);
            }
            assert!(frames.at_boundary(), "chunk size {chunk}");
        }
        let mut frames = Frames::START;
        frames.advance(&stream[..stream.len() - 1]);
        assert!(!frames.at_boundary());
        assert_eq!(frames.bytes_to_boundary(), 1);
    }
}
