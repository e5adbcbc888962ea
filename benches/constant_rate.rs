//! A constant-rate HTTP/1.1 load generator for `benches/load.sh`: latency
//! percentiles at a fixed request rate, corrected for coordinated omission
//! (as wrk2 does), cheap enough to share 2 cores with the service.
//!
//! ```text
//! constant_rate <host:port> <paths-file> <rate req/s> <seconds> [connections=64]
//! ```
//!
//! Each of the connections (keep-alive) sends its share of the rate on a
//! fixed schedule: request `i` of a connection is due at
//! `start + i / (rate / connections)`, and goes out then, or as soon as the
//! connection's previous answer is in. Latency is measured from when the
//! request was *due*, not from when it went out, so a stall of the server
//! counts for every request it delayed. Paths are picked at random from the
//! file (one per line). Prints the achieved rate, the status counts and the
//! p50 / p90 / p99 / p99.9 / max latencies; exits 1 if fewer than 95 % of the
//! scheduled requests were answered (the generator could not keep the rate).
//!
//! One thread drives every connection (`epoll`, non-blocking sockets) and
//! wakes on a periodic `timerfd` every [`TICK`] to send what is due: a
//! request then costs the generator a send, a receive and a share of one
//! wake-up, instead of a thread's sleep and two wake-ups, so the generator
//! takes less of the cores it shares with the service. (Arming a timer for
//! each due time costs more than the request itself in a virtual machine.)
//! A request goes out up to one tick after it was due, and that delay
//! counts in its latency: the figures are, if anything, up to 0.1 ms too
//! high.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Answers by status code.
type Statuses = std::collections::BTreeMap<u16, u64>;

/// The epoll token of the timer; connection `c` has token `c`.
const TIMER: u64 = u64::MAX;
/// How often the generator wakes to send what is due.
const TICK: Duration = Duration::from_micros(250);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!(
            "usage: constant_rate <host:port> <paths-file> <rate req/s> <seconds> [connections=64]"
        );
        std::process::exit(2);
    }
    let addr = args[1].clone();
    let text = std::fs::read_to_string(&args[2]).unwrap_or_else(|e| {
        eprintln!("cannot read {}: {e}", args[2]);
        std::process::exit(2)
    });
    let number = |i: usize, what: &str| -> f64 {
        args[i].parse().unwrap_or_else(|_| {
            eprintln!("{what} must be a number, not {:?}", args[i]);
            std::process::exit(2)
        })
    };
    let rate = number(3, "the rate");
    let secs = number(4, "the duration");
    let conns = if args.len() > 5 {
        number(5, "the number of connections") as usize
    } else {
        64
    };
    let requests: Vec<Vec<u8>> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|p| format!("GET {p} HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes())
        .collect();
    if requests.is_empty() || rate <= 0.0 || secs <= 0.0 || conns == 0 {
        eprintln!("need at least one path, a positive rate, duration and connections");
        std::process::exit(2);
    }
    let per_conn = rate / conns as f64;
    let interval = Duration::from_secs_f64(1.0 / per_conn);
    let count = (per_conn * secs).round() as u64;
    let start = Instant::now() + Duration::from_millis(200);
    let mut run = Run::new(&addr, &requests, conns, start, interval, count).unwrap_or_else(|e| {
        eprintln!("cannot start: {e}");
        std::process::exit(2)
    });
    run.drive();
    let elapsed = start.elapsed().as_secs_f64();
    let mut micros = std::mem::take(&mut run.micros);
    micros.sort_unstable();
    let pct = |p: f64| -> f64 {
        if micros.is_empty() {
            return f64::NAN;
        }
        let i = ((micros.len() as f64 * p).ceil() as usize).clamp(1, micros.len()) - 1;
        f64::from(micros[i]) / 1000.0
    };
    let scheduled = count * conns as u64;
    let answered = micros.len() as u64;
    println!(
        "asked {rate:.0} req/s for {secs:.0} s over {conns} connections: answered {answered} of {scheduled} ({:.0} req/s), statuses {:?}, errors {}",
        answered as f64 / elapsed,
        run.statuses,
        run.errors
    );
    println!(
        "latency from the scheduled time: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(0.999),
        pct(1.0)
    );
    if (answered as f64) < 0.95 * scheduled as f64 {
        eprintln!("fewer than 95 % of the scheduled requests were answered");
        std::process::exit(1);
    }
}

/// One connection and where it is in its schedule.
struct Conn {
    stream: Option<TcpStream>,
    /// When its first request is due (connections are spread over one
    /// interval, not all at once).
    start: Instant,
    /// The index of its next request to send.
    next: u64,
    /// When the request in flight was due, if one is.
    in_flight: Option<Instant>,
    /// What was received of the answer in flight.
    buf: Vec<u8>,
    rng: u64,
}

struct Run<'a> {
    addr: &'a str,
    requests: &'a [Vec<u8>],
    conns: Vec<Conn>,
    interval: Duration,
    count: u64,
    epoll: i32,
    timer: i32,
    /// Latency of each answered request, in microseconds.
    micros: Vec<u32>,
    statuses: Statuses,
    errors: u64,
}

/// The error of a system call that returned `r`, if it failed.
fn os_error(r: i32, what: &str) -> std::io::Result<()> {
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return Err(std::io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(())
}

impl<'a> Run<'a> {
    fn new(
        addr: &'a str,
        requests: &'a [Vec<u8>],
        n: usize,
        start: Instant,
        interval: Duration,
        count: u64,
    ) -> std::io::Result<Self> {
        // SAFETY: plain system calls on descriptors this process owns.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        os_error(epoll, "epoll_create1")?;
        let timer = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        os_error(timer, "timerfd_create")?;
        let mut run = Run {
            addr,
            requests,
            conns: Vec::with_capacity(n),
            interval,
            count,
            epoll,
            timer,
            micros: Vec::with_capacity((count * n as u64).min(1 << 24) as usize),
            statuses: Statuses::new(),
            errors: 0,
        };
        run.watch(timer, TIMER)?;
        for c in 0..n {
            run.conns.push(Conn {
                stream: None,
                start: start + interval.mul_f64(c as f64 / n as f64),
                next: 0,
                in_flight: None,
                buf: Vec::with_capacity(16 * 1024),
                rng: 0x9E37_79B9_7F4A_7C15u64 ^ (c as u64).wrapping_mul(0xD134_2543_DE82_EF95),
            });
            run.connect(c)?;
        }
        Ok(run)
    }

    /// Adds `fd` to the epoll set (readable), with `token`.
    fn watch(&self, fd: i32, token: u64) -> std::io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: `ev` lives across the call; both descriptors are open.
        let r = unsafe { libc::epoll_ctl(self.epoll, libc::EPOLL_CTL_ADD, fd, &mut ev) };
        os_error(r, "epoll_ctl")
    }

    /// (Re)connects connection `c` (blocking connect, then non-blocking).
    fn connect(&mut self, c: usize) -> std::io::Result<()> {
        let s = TcpStream::connect(self.addr)?;
        s.set_nodelay(true)?;
        s.set_nonblocking(true)?;
        self.watch(s.as_raw_fd(), c as u64)?;
        let conn = &mut self.conns[c];
        conn.buf.clear();
        conn.stream = Some(s);
        Ok(())
    }

    fn due(&self, c: usize) -> Option<Instant> {
        let conn = &self.conns[c];
        (conn.next < self.count).then(|| conn.start + self.interval.mul_f64(conn.next as f64))
    }

    /// Sends every request that is due on a connection without one in
    /// flight; returns when the next one is due, if any is left.
    fn send_due(&mut self) -> Option<Instant> {
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        for c in 0..self.conns.len() {
            if self.conns[c].in_flight.is_some() {
                continue;
            }
            let Some(due) = self.due(c) else { continue };
            if due > now {
                next = Some(next.map_or(due, |n| n.min(due)));
                continue;
            }
            let conn = &mut self.conns[c];
            conn.next += 1;
            conn.rng ^= conn.rng << 13;
            conn.rng ^= conn.rng >> 7;
            conn.rng ^= conn.rng << 17;
            let req = &self.requests[(conn.rng % self.requests.len() as u64) as usize];
            let sent = conn.stream.as_mut().map(|s| write_all(s, req));
            match sent {
                Some(Ok(())) => conn.in_flight = Some(due),
                _ => self.fail(c),
            }
        }
        next
    }

    /// Connection `c` failed: its request is an error; it reconnects.
    fn fail(&mut self, c: usize) {
        self.errors += 1;
        self.conns[c].in_flight = None;
        self.conns[c].stream = None;
        if self.connect(c).is_err() {
            // Its remaining requests all count as errors.
            let left = self.count - self.conns[c].next;
            self.errors += left;
            self.conns[c].next = self.count;
        }
    }

    /// Reads what connection `c` has; records its answer once complete.
    fn receive(&mut self, c: usize) {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let Some(s) = self.conns[c].stream.as_mut() else {
                return;
            };
            match s.read(&mut chunk) {
                Ok(0) => return self.fail(c),
                Ok(n) => self.conns[c].buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return self.fail(c),
            }
        }
        let conn = &mut self.conns[c];
        match parse_answer(&conn.buf) {
            Ok(None) => {}
            Ok(Some((status, len))) => {
                conn.buf.drain(..len);
                if let Some(due) = conn.in_flight.take() {
                    let micros = due.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                    self.micros.push(micros);
                    *self.statuses.entry(status).or_default() += 1;
                }
            }
            Err(()) => self.fail(c),
        }
    }

    /// Starts the timer: every [`TICK`].
    fn tick(&self) {
        let every = libc::timespec {
            tv_sec: 0,
            tv_nsec: TICK.as_nanos() as libc::c_long,
        };
        let spec = libc::itimerspec {
            it_interval: every,
            it_value: every,
        };
        // SAFETY: `spec` lives across the call; the timer is open.
        unsafe { libc::timerfd_settime(self.timer, 0, &spec, std::ptr::null_mut()) };
    }

    /// Runs the schedule to its end (every request answered or failed), or
    /// until 5 s after the last one was due.
    fn drive(&mut self) {
        let last_due = self
            .conns
            .iter()
            .map(|c| c.start + self.interval.mul_f64(self.count as f64))
            .max();
        let deadline = last_due.unwrap_or_else(Instant::now) + Duration::from_secs(5);
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; self.conns.len() + 1];
        self.tick();
        loop {
            let next = self.send_due();
            let busy = self.conns.iter().any(|c| c.in_flight.is_some());
            if next.is_none() && !busy {
                return;
            }
            if Instant::now() > deadline {
                self.errors += self.conns.iter().filter(|c| c.in_flight.is_some()).count() as u64;
                return;
            }
            // Not beyond the deadline, whatever the timer says.
            let timeout = deadline
                .saturating_duration_since(Instant::now())
                .as_millis()
                .min(1000) as i32
                + 1;
            // SAFETY: `events` has room for `len` entries.
            let n = unsafe {
                libc::epoll_wait(
                    self.epoll,
                    events.as_mut_ptr(),
                    events.len() as i32,
                    timeout,
                )
            };
            for ev in events.iter().take(n.max(0) as usize) {
                let token = ev.u64;
                if token == TIMER {
                    let mut expirations = [0u8; 8];
                    // SAFETY: reads 8 bytes into an 8-byte buffer.
                    unsafe { libc::read(self.timer, expirations.as_mut_ptr().cast(), 8) };
                } else {
                    self.receive(token as usize);
                }
            }
        }
    }
}

/// Writes all of `bytes` to a non-blocking socket (a request is a few
/// hundred bytes: the socket's buffer nearly always takes it at once).
fn write_all(s: &mut TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match s.write(bytes) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A complete answer at the start of `buf`: its status and length, `None`
/// if more is to come, `Err` if it is not HTTP/1.1 with a `Content-Length`
/// (the service and the bare handler always send one).
fn parse_answer(buf: &[u8]) -> Result<Option<(u16, usize)>, ()> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > 64 * 1024 {
            Err(())
        } else {
            Ok(None)
        };
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| ())?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or(())?;
    let length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .ok_or(())?;
    let total = end + 4 + length;
    Ok((buf.len() >= total).then_some((status, total)))
}
