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

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;

use crate::proxy::request::scratch;

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

/// One direction of the tunnel, driven by [`run`]'s poll: copies `from` →
/// `to` until EOF; once told to stop, finishes the current frame, writes
/// its Close frame, and shuts `to` down.
struct Pump {
    frames: Frames,
    stopping: bool,
    /// Read but not yet taken by `to` (empty, and unallocated, when idle).
    pending: Vec<u8>,
    written: usize,
    needs_flush: bool,
    close: [u8; 8],
    close_len: usize,
    state: PumpState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PumpState {
    Copying,
    /// Writing the Close frame; this much of it is out.
    Closing(usize),
    ShuttingDown,
    Done,
}

impl Pump {
    fn new(close: &[u8]) -> Pump {
        let mut frame = [0u8; 8];
        frame[..close.len()].copy_from_slice(close);
        Pump {
            frames: Frames::START,
            stopping: false,
            pending: Vec::new(),
            written: 0,
            needs_flush: false,
            close: frame,
            close_len: close.len(),
            state: PumpState::Copying,
        }
    }

    /// Moves what can be moved now; true once this direction is finished.
    fn poll<R, W>(&mut self, cx: &mut Context<'_>, from: &mut R, to: &mut W) -> bool
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        loop {
            match self.state {
                PumpState::Done => return true,
                PumpState::ShuttingDown => {
                    if Pin::new(&mut *to).poll_shutdown(cx).is_pending() {
                        return false;
                    }
                    self.state = PumpState::Done;
                }
                PumpState::Closing(done) if done < self.close_len => {
                    match Pin::new(&mut *to).poll_write(cx, &self.close[done..self.close_len]) {
                        Poll::Pending => return false,
                        Poll::Ready(Ok(n)) if n > 0 => self.state = PumpState::Closing(done + n),
                        // The peer is gone: nothing more to tell it.
                        Poll::Ready(_) => self.state = PumpState::ShuttingDown,
                    }
                }
                PumpState::Closing(_) => match Pin::new(&mut *to).poll_flush(cx) {
                    Poll::Pending => return false,
                    Poll::Ready(_) => self.state = PumpState::ShuttingDown,
                },
                PumpState::Copying => {
                    while self.written < self.pending.len() {
                        match Pin::new(&mut *to).poll_write(cx, &self.pending[self.written..]) {
                            Poll::Pending => return false,
                            Poll::Ready(Ok(n)) if n > 0 => self.written += n,
                            Poll::Ready(_) => {
                                self.state = PumpState::Done;
                                return true;
                            }
                        }
                    }
                    if !self.pending.is_empty() {
                        // An idle tunnel keeps no buffer.
                        self.pending = Vec::new();
                        self.written = 0;
                    }
                    // A TLS writer may hold back what it took until flushed.
                    if self.needs_flush {
                        match Pin::new(&mut *to).poll_flush(cx) {
                            Poll::Pending => return false,
                            Poll::Ready(Ok(())) => self.needs_flush = false,
                            Poll::Ready(Err(_)) => {
                                self.state = PumpState::Done;
                                return true;
                            }
                        }
                    }
                    if self.stopping && self.frames.at_boundary() {
                        self.state = PumpState::Closing(0);
                        continue;
                    }
                    let limit = if self.stopping {
                        self.frames.bytes_to_boundary().min(READ_MAX)
                    } else {
                        READ_MAX
                    };
                    match poll_copy(cx, from, to, limit, &mut self.frames, &mut self.pending) {
                        Poll::Pending => return false,
                        Poll::Ready(Ok(true)) => self.needs_flush = true,
                        Poll::Ready(Ok(false) | Err(_)) => self.state = PumpState::ShuttingDown,
                    }
                }
            }
        }
    }
}

/// Runs the tunnel until both directions end, or `stop` resolves (session
/// ended, proxy shutting down). Returns why it ended.
///
/// Both directions are driven by one poll function on the tunnel's task:
/// no split halves with their locks, no join, and the stop condition is
/// watched by a task of its own that reports through a oneshot channel, so
/// a message wakes nothing but the copy.
pub async fn run<C, B>(
    mut client: C,
    mut backend: B,
    stop: impl Future<Output = &'static str> + Send + 'static,
) -> &'static str
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (stop_tx, stop_rx) = oneshot::channel();
    let watcher = tokio::spawn(async move {
        let _ = stop_tx.send(stop.await);
    });
    let mut stop_rx = Some(stop_rx);
    let mut to_backend = Pump::new(&close_to_backend());
    let mut to_client = Pump::new(&CLOSE_TO_CLIENT);
    let mut reason = "closed";
    let mut grace: Option<Pin<Box<tokio::time::Sleep>>> = None;
    std::future::poll_fn(|cx| {
        if let Some(rx) = &mut stop_rx
            && let Poll::Ready(stopped) = Pin::new(rx).poll(cx)
        {
            stop_rx = None;
            if let Ok(why) = stopped {
                reason = why;
                to_backend.stopping = true;
                to_client.stopping = true;
                grace = Some(Box::pin(tokio::time::sleep(CLOSE_GRACE)));
            }
        }
        let up_done = to_backend.poll(cx, &mut client, &mut backend);
        let down_done = to_client.poll(cx, &mut backend, &mut client);
        if up_done && down_done {
            return Poll::Ready(());
        }
        let grace_over = grace
            .as_mut()
            .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
        if grace_over {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    watcher.abort();
    reason
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
