//! Fewer wake-ups while changes pour in: the replication socket's
//! `SO_RCVLOWAT`.
//!
//! The walsender writes each pgoutput message to the socket on its own. A
//! reader that keeps up sleeps after every few messages and is woken for
//! the next: in a 1M-row run of 10-row transactions, 60,000 sleeps and
//! wake-ups, a quarter of weir's CPU time spent in the scheduler. While the
//! stream is dense, [`Gather`] raises the socket's low-water mark, so that
//! the kernel wakes the reader only once [`LOW_WATER`] bytes are waiting;
//! whatever arrives in between waits at most [`WAIT`]. When a wait reaches
//! [`WAIT`] the stream is sparse: the mark drops back to one byte (which
//! wakes the reader at once if anything is there) and stays there until
//! data arrives faster again. A change on a quiet stream is read as it
//! arrives, as before; see `docs/decisions/0036-replication-low-water-mark.md`.
//!
//! The mark changes when the reader wakes, not the receive window: while
//! the window is open the walsender still sends every message as a TCP
//! segment of its own. The window is left to the kernel on purpose
//! (`docs/decisions/0037-receive-window-left-to-the-kernel.md`).
//!
//! Linux only (the mark governs `epoll` readiness from 2.6.28, and lowering
//! it wakes a waiting reader from 4.18); elsewhere, and on Unix-domain
//! sockets, whose readiness ignores the mark, reads are unchanged.

use std::time::{Duration, Instant};

/// How long data may wait in the socket for more to arrive.
pub const WAIT: Duration = Duration::from_millis(1);

/// Bytes the kernel lets gather before it wakes the reader of a dense
/// stream: some 400 rows of a typical table.
pub const LOW_WATER: i32 = 64 * 1024;

/// The low-water mark of one TCP socket.
#[derive(Debug)]
pub struct Gather {
    #[cfg(target_os = "linux")]
    fd: std::os::fd::RawFd,
    /// The mark is raised.
    on: bool,
}

impl Gather {
    /// For `tcp`, which must outlive the returned value (the replication
    /// connection owns both, hence not public).
    #[cfg(target_os = "linux")]
    pub(crate) fn new(tcp: &tokio::net::TcpStream) -> Option<Gather> {
        use std::os::fd::AsRawFd as _;
        Some(Gather {
            fd: tcp.as_raw_fd(),
            on: false,
        })
    }

    #[cfg(not(target_os = "linux"))]
    pub(crate) fn new(_tcp: &tokio::net::TcpStream) -> Option<Gather> {
        None
    }

    /// Whether the mark is raised.
    pub fn on(&self) -> bool {
        self.on
    }

    /// Raises the mark (`true`) or drops it to one byte; a failure leaves
    /// the mark where it was (reads are correct either way).
    pub fn set(&mut self, on: bool) {
        if self.on != on && set_low_water(self, if on { LOW_WATER } else { 1 }) {
            self.on = on;
        }
    }

    /// After a read that began waiting at `started`: a wait shorter than
    /// [`WAIT`] means a dense stream.
    pub fn after_wait(&mut self, started: Instant) {
        if !self.on && started.elapsed() < WAIT {
            self.set(true);
        }
    }
}

#[cfg(target_os = "linux")]
fn set_low_water(g: &Gather, bytes: i32) -> bool {
    let value: libc::c_int = bytes;
    // SAFETY: `fd` is the open socket of the stream this `Gather` was made
    // for (the connection owns both and drops them together), and the
    // option value is a live `c_int` of the length passed.
    let rc = unsafe {
        libc::setsockopt(
            g.fd,
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

#[cfg(not(target_os = "linux"))]
fn set_low_water(_g: &Gather, _bytes: i32) -> bool {
    false
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// What the source relies on, against the kernel: below the raised
    /// mark a reader is not woken; lowering the mark wakes it at once;
    /// past the mark it is woken without help.
    #[tokio::test]
    async fn the_kernel_wakes_the_reader_as_the_mark_says() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut writer = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (reader, _) = listener.accept().await.unwrap();
        // tokio takes an accepted stream for readable until a read says
        // otherwise.
        let nothing = reader.try_read(&mut [0; 1]).unwrap_err();
        assert_eq!(nothing.kind(), std::io::ErrorKind::WouldBlock);
        let mut gather = Gather::new(&reader).unwrap();
        gather.set(true);
        assert!(gather.on());

        writer.write_all(&[7; 100]).await.unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(300), reader.readable()).await;
        assert!(waited.is_err(), "woken for 100 bytes under a 64 KiB mark");
        gather.set(false);
        tokio::time::timeout(Duration::from_secs(10), reader.readable())
            .await
            .expect("lowering the mark wakes the reader")
            .unwrap();
        let mut reader = reader;
        let mut got = vec![0; 100];
        reader.read_exact(&mut got).await.unwrap();
        assert_eq!(got, vec![7; 100]);

        gather.set(true);
        writer
            .write_all(&vec![8; LOW_WATER as usize])
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), reader.readable())
            .await
            .expect("a full mark wakes the reader")
            .unwrap();
    }

    #[tokio::test]
    async fn a_short_wait_raises_the_mark_and_a_long_one_does_not() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _writer = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (reader, _) = listener.accept().await.unwrap();
        let mut gather = Gather::new(&reader).unwrap();
        gather.after_wait(Instant::now() - WAIT * 5);
        assert!(!gather.on(), "a sparse stream reads as it comes");
        gather.after_wait(Instant::now());
        assert!(gather.on(), "a dense stream gathers");
    }
}
