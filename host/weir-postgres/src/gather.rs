//! Fewer wake-ups and fewer segments while changes pour in: the
//! replication socket's `SO_RCVLOWAT` and, on a near link, paced reads.
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
//! the window is open the walsender sends every message as a TCP segment
//! of its own, and on one host the kernel charges both ends' work for each
//! segment to the walsender. So where the link is near (a round trip of at
//! most [`NEAR`]: the same host or the next one) a dense reader also
//! *paces* itself: it reads at most every [`PACE`], and at most a
//! *window* of bytes per read, which an additive-increase,
//! multiplicative-decrease rule keeps just small enough that the socket's
//! queue stays full: the kernel then opens the walsender's window only as
//! far as each read frees, and the messages waiting behind it leave
//! together, in large segments. The signal is the mean size of the
//! segments received since the last read (`TCP_INFO`): small ones mean the
//! reader takes more than the walsender writes, so the window shrinks;
//! large ones mean the walsender waits on the window, so it grows. The
//! socket's buffer is the kernel's throughout: a buffer made smaller than
//! the window it had advertised dropped segments in flight, and each drop
//! at a transaction's tail cost a retransmission timeout (decision 0039).
//! Far links read as the mark says; see
//! `docs/decisions/0038-paced-reads-on-near-links.md` and
//! `docs/decisions/0039-paced-reads-cap-the-read.md`.
//!
//! Linux only (the mark governs `epoll` readiness from 2.6.28, and lowering
//! it wakes a waiting reader from 4.18; `TCP_INFO` reports received
//! segments from 4.6); elsewhere, and on Unix-domain sockets, whose
//! readiness ignores the mark, reads are unchanged.

use std::time::{Duration, Instant};

/// How long data may wait in the socket for more to arrive.
pub const WAIT: Duration = Duration::from_millis(1);

/// Bytes the kernel lets gather before it wakes the reader of a dense
/// stream: some 400 rows of a typical table.
pub const LOW_WATER: i32 = 64 * 1024;

/// The longest minimum round trip of a link a dense reader paces itself
/// on: loopback, a container bridge or the next host in a rack. Beyond it
/// the receiver's work no longer lands on the walsender's host, and
/// pacing has not been measured there.
pub const NEAR: Duration = Duration::from_micros(100);

/// How often a paced reader reads (the runtime's timer rounds up to its
/// millisecond tick).
pub const PACE: Duration = Duration::from_millis(1);

/// The most a paced read takes: where it starts, its bounds and how much
/// it grows per read. At one read per [`PACE`] the largest lets some
/// 128-256 MB/s through, more than a walsender sends.
pub const WINDOW_START: i32 = 64 * 1024;
const WINDOW_MIN: i32 = 16 * 1024;
const WINDOW_MAX: i32 = 256 * 1024;
const WINDOW_STEP: i32 = 16 * 1024;

/// The mean received segment, in bytes, below which the sender is taken to
/// send each message on its own (it did not wait on the window).
const COALESCED: u64 = 2 * 1024;

/// One read from `stream` into `buf`, as `gather` (if any) says: a dense
/// stream waits for its pace and then for the mark, at most [`WAIT`] (a
/// longer wait means sparse: the mark drops and what is there is read),
/// and a paced one takes at most its window; a sparse one reads what
/// arrives and turns dense after a short wait. The replication
/// connection's reads, and the pacing test's.
pub async fn read<R>(
    gather: Option<&mut Gather>,
    stream: &mut R,
    buf: &mut bytes::BytesMut,
) -> std::io::Result<usize>
where
    R: tokio::io::AsyncRead + Unpin + ?Sized,
{
    use bytes::BufMut as _;
    use tokio::io::AsyncReadExt as _;
    // A paced read makes room for its window and takes no more; others
    // make room for 64 KiB and take what the buffer has room for.
    let window = gather.as_deref().and_then(Gather::window);
    buf.reserve(window.map_or(64 * 1024, |w| w as usize));
    let mut limited = (&mut *buf).limit(window.map_or(usize::MAX, |w| w as usize));
    let read = stream.read_buf(&mut limited);
    match gather {
        None => read.await,
        Some(gather) if gather.on() => {
            gather.pause().await;
            tokio::pin!(read);
            let n = match tokio::time::timeout(WAIT, &mut read).await {
                Ok(n) => n,
                Err(_) => {
                    // Sparse: read what is there (lowering the mark
                    // wakes the read) and as it comes from now on.
                    gather.set(false);
                    read.await
                }
            };
            gather.after_read();
            n
        }
        Some(gather) => {
            let started = Instant::now();
            let n = read.await;
            gather.after_wait(started);
            n
        }
    }
}

/// The next window after a paced read that received segments of `mean`
/// bytes on average: smaller by a quarter when the sender did not wait on
/// the window, larger by a step when it did, within the bounds.
pub fn next_window(window: i32, mean: u64) -> i32 {
    if mean < COALESCED {
        (window - window / 4).max(WINDOW_MIN)
    } else {
        (window + WINDOW_STEP).min(WINDOW_MAX)
    }
}

/// Whether a link whose minimum round trip the kernel measured as
/// `min_rtt_us` microseconds (0: not measured) is near enough to pace on.
pub fn is_near(min_rtt_us: u32) -> bool {
    min_rtt_us > 0 && u128::from(min_rtt_us) <= NEAR.as_micros()
}

/// The low-water mark of one TCP socket, and its pacing on a near link.
#[derive(Debug)]
pub struct Gather {
    #[cfg(target_os = "linux")]
    fd: std::os::fd::RawFd,
    /// The mark is raised.
    on: bool,
    /// Whether the link is near: measured when the stream first turns
    /// dense (the handshake has given the kernel round trips by then).
    near: Option<bool>,
    /// Set while the reader paces itself.
    pace: Option<Pace>,
}

/// A paced reader's state.
#[derive(Debug)]
struct Pace {
    /// The most the next read takes.
    window: i32,
    /// Data segments and bytes received up to the last read.
    seen: Received,
    /// When the next read may start.
    next: Instant,
}

/// The kernel's counts of data received on a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Segments that carried data.
    pub segments: u32,
    /// Bytes of data.
    pub bytes: u64,
    /// The minimum round trip measured, in microseconds (0: none yet).
    pub min_rtt_us: u32,
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
            near: None,
            pace: None,
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

    /// Whether the reader paces itself.
    pub fn paced(&self) -> bool {
        self.pace.is_some()
    }

    /// The most a paced reader's next read takes.
    pub fn window(&self) -> Option<i32> {
        self.pace.as_ref().map(|p| p.window)
    }

    /// Raises the mark (`true`) or drops it to one byte; a failure leaves
    /// the mark where it was (reads are correct either way). Raising it on
    /// a near link starts pacing; dropping it ends pacing.
    pub fn set(&mut self, on: bool) {
        if self.on != on && set_low_water(self, if on { LOW_WATER } else { 1 }) {
            self.on = on;
            if on {
                self.start_pacing();
            } else {
                self.pace = None;
            }
        }
    }

    fn start_pacing(&mut self) {
        let Some(seen) = received(self) else { return };
        if *self.near.get_or_insert(is_near(seen.min_rtt_us)) {
            self.pace = Some(Pace {
                window: WINDOW_START,
                seen,
                next: Instant::now() + PACE,
            });
        }
    }

    /// Waits until a paced reader may read again; at once otherwise.
    pub async fn pause(&self) {
        if let Some(pace) = &self.pace {
            tokio::time::sleep_until(pace.next.into()).await;
        }
    }

    /// After a paced read: the window follows the segments received since
    /// the last one, and the next read waits [`PACE`].
    pub fn after_read(&mut self) {
        let Some(now) = self.pace.as_ref().and_then(|_| received(self)) else {
            return;
        };
        let Some(pace) = self.pace.as_mut() else {
            return;
        };
        pace.next = Instant::now() + PACE;
        let segments = now.segments.wrapping_sub(pace.seen.segments);
        let bytes = now.bytes.wrapping_sub(pace.seen.bytes);
        pace.seen = now;
        if segments > 0 {
            pace.window = next_window(pace.window, bytes / u64::from(segments));
        }
    }

    /// After a read that began waiting at `started`: a wait shorter than
    /// [`WAIT`] means a dense stream.
    pub fn after_wait(&mut self, started: Instant) {
        if !self.on && started.elapsed() < WAIT {
            self.set(true);
        }
    }

    /// The kernel's counts for this socket.
    pub fn received(&self) -> Option<Received> {
        received(self)
    }
}

/// Sets the socket's `SO_RCVLOWAT` to `value`; whether it took.
#[cfg(target_os = "linux")]
fn set_low_water(g: &Gather, value: i32) -> bool {
    let value: libc::c_int = value;
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
fn set_low_water(_g: &Gather, _value: i32) -> bool {
    false
}

/// `TCP_INFO`'s received data segments, bytes and minimum round trip;
/// `None` where the kernel is too old to report them.
#[cfg(target_os = "linux")]
fn received(g: &Gather) -> Option<Received> {
    // SAFETY: `tcp_info` is plain integers, for which zero is valid.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: as in `set_low_water`; the kernel writes at most `len` bytes
    // into the live `tcp_info` and updates `len`.
    let rc = unsafe {
        libc::getsockopt(
            g.fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            std::ptr::from_mut(&mut info).cast(),
            &mut len,
        )
    };
    let needed = std::mem::offset_of!(libc::tcp_info, tcpi_data_segs_in) + 4;
    (rc == 0 && len as usize >= needed).then_some(Received {
        segments: info.tcpi_data_segs_in,
        bytes: info.tcpi_bytes_received,
        min_rtt_us: info.tcpi_min_rtt,
    })
}

#[cfg(not(target_os = "linux"))]
fn received(_g: &Gather) -> Option<Received> {
    None
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

    #[test]
    fn the_window_shrinks_by_a_quarter_and_grows_by_a_step_within_bounds() {
        assert_eq!(next_window(WINDOW_START, 200), WINDOW_START * 3 / 4);
        assert_eq!(
            next_window(WINDOW_START, 60_000),
            WINDOW_START + WINDOW_STEP
        );
        assert_eq!(next_window(WINDOW_MIN, 200), WINDOW_MIN);
        assert_eq!(next_window(WINDOW_MAX, 60_000), WINDOW_MAX);
        let mut window = WINDOW_MAX;
        for _ in 0..100 {
            window = next_window(window, 0);
        }
        assert_eq!(window, WINDOW_MIN, "never shut");
    }

    #[test]
    fn only_a_measured_round_trip_within_near_paces() {
        assert!(!is_near(0), "not measured");
        assert!(is_near(30), "loopback");
        assert!(is_near(100));
        assert!(!is_near(101));
        assert!(!is_near(50_000), "another region");
    }

    /// What pacing is for, against the kernel: a writer that sends each
    /// small message on its own with `TCP_NODELAY`, as the walsender does,
    /// meets a paced reader's closed window and its messages leave in far
    /// fewer segments; no paced read takes more than its window; every
    /// byte arrives in order; a sparse stream's reads are uncapped again.
    #[tokio::test]
    async fn a_paced_reader_makes_a_small_writer_coalesce() {
        const MESSAGES: u32 = 20_000;
        const SIZE: usize = 200;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let writer = std::thread::spawn(move || {
            use std::io::Write as _;
            let (mut socket, _) = listener.accept().unwrap();
            socket.set_nodelay(true).unwrap();
            for i in 0..MESSAGES {
                let mut message = [0u8; SIZE];
                message[..4].copy_from_slice(&i.to_be_bytes());
                socket.write_all(&message).unwrap();
            }
            socket // kept open: a FIN would count as a byte received
        });
        let mut reader = TcpStream::connect(address).await.unwrap();
        let mut gather = Gather::new(&reader).unwrap();
        gather.set(true);
        assert!(gather.paced(), "loopback is near: {:?}", gather.received());

        let mut got = bytes::BytesMut::new();
        let mut windows = std::collections::BTreeSet::new();
        while got.len() < MESSAGES as usize * SIZE {
            let most = gather.window();
            let n = read(Some(&mut gather), &mut reader, &mut got)
                .await
                .unwrap();
            assert!(n > 0, "the writer stopped early");
            if let Some(most) = most {
                assert!(n <= most as usize, "read {n} bytes, window {most}");
            }
            windows.extend(gather.window());
        }
        let _open = writer.join().unwrap();
        for (i, message) in got.chunks(SIZE).enumerate() {
            assert_eq!(message[..4], (i as u32).to_be_bytes(), "message {i}");
        }
        // The kernel counts from the handshake on; the writer starts at
        // once, so counts taken before the loop could hold some messages.
        let after = gather.received().unwrap();
        let segments = after.segments;
        assert_eq!(after.bytes, u64::from(MESSAGES) * SIZE as u64);
        assert!(
            segments < MESSAGES / 4,
            "{segments} segments for {MESSAGES} messages; windows {windows:?}"
        );
        assert!(windows.len() > 1, "the window follows the writer");

        gather.set(false);
        assert!(!gather.paced());
        assert!(gather.window().is_none());
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
