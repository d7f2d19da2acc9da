//! One read buffer per thread, shared by every connection on it, so that a
//! connection waiting for bytes holds no buffer of its own: a keep-alive
//! browser connection between requests, an idle WebSocket. A reader looks
//! at what arrived inside the poll that read it and copies out only what it
//! must keep.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, ReadBuf};

/// The largest single read.
pub const SIZE: usize = 16 * 1024;

thread_local! {
    static BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; SIZE].into_boxed_slice());
}

/// Polls one read of at most `limit` bytes from `from` and, once it is
/// ready, hands the bytes read (empty at EOF) to `use_bytes`, together with
/// the context, for a write in the same poll.
pub fn poll_read_with<R, T>(
    cx: &mut Context<'_>,
    from: &mut R,
    limit: usize,
    use_bytes: impl FnOnce(&mut Context<'_>, &[u8]) -> T,
) -> Poll<io::Result<T>>
where
    R: AsyncRead + Unpin,
{
    BUF.with(|buf| {
        let mut own;
        let mut borrowed = buf.try_borrow_mut();
        let buf: &mut [u8] = match &mut borrowed {
            Ok(b) => &mut b[..],
            // Only if `use_bytes` read again on this thread: a private buffer.
            Err(_) => {
                own = vec![0u8; SIZE];
                &mut own[..]
            }
        };
        let mut read = ReadBuf::new(&mut buf[..limit.min(SIZE)]);
        ready!(Pin::new(from).poll_read(cx, &mut read))?;
        Poll::Ready(Ok(use_bytes(cx, read.filled())))
    })
}
