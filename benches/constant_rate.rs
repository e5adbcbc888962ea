//! A constant-rate HTTP/1.1 load generator for `benches/load.sh`: latency
//! percentiles at a fixed request rate, corrected for coordinated omission
//! (as wrk2 does), cheap enough to share 2 cores with the service.
//!
//! ```text
//! constant_rate <host:port> <paths-file> <rate req/s> <seconds> [connections=64]
//! ```
//!
//! Each of the connections (one thread each, keep-alive) sends its share of
//! the rate on a fixed schedule: request `i` of a connection is due at
//! `start + i / (rate / connections)`. Latency is measured from when the
//! request was *due*, not from when it went out, so a stall of the server
//! counts for every request it delayed. Paths are picked at random from the
//! file (one per line). Prints the achieved rate, the status counts and the
//! p50 / p90 / p99 / p99.9 / max latencies; exits 1 if fewer than 95 % of the
//! scheduled requests were answered (the generator could not keep the rate).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

struct Outcome {
    /// Latency of each answered request, in microseconds.
    micros: Vec<u32>,
    /// Answers by status code.
    statuses: std::collections::BTreeMap<u16, u64>,
    errors: u64,
}

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
    let host = addr.clone();
    let requests: Vec<Vec<u8>> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|p| format!("GET {p} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes())
        .collect();
    if requests.is_empty() || rate <= 0.0 || secs <= 0.0 || conns == 0 {
        eprintln!("need at least one path, a positive rate, duration and connections");
        std::process::exit(2);
    }
    let requests = std::sync::Arc::new(requests);
    let per_conn = rate / conns as f64;
    let interval = Duration::from_secs_f64(1.0 / per_conn);
    let count = (per_conn * secs).round() as u64;
    let start = Instant::now() + Duration::from_millis(200);
    let threads: Vec<_> = (0..conns)
        .map(|c| {
            let requests = requests.clone();
            let addr = addr.clone();
            // Connections start spread over one interval, not all at once.
            let offset = interval.mul_f64(c as f64 / conns as f64);
            std::thread::spawn(move || run(&addr, &requests, start + offset, interval, count, c))
        })
        .collect();
    let mut all = Outcome {
        micros: Vec::new(),
        statuses: Default::default(),
        errors: 0,
    };
    for t in threads {
        let o = t.join().expect("a load thread panicked");
        all.micros.extend(o.micros);
        for (s, n) in o.statuses {
            *all.statuses.entry(s).or_default() += n;
        }
        all.errors += o.errors;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.micros.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.micros.is_empty() {
            return f64::NAN;
        }
        let i = ((all.micros.len() as f64 * p).ceil() as usize).clamp(1, all.micros.len()) - 1;
        f64::from(all.micros[i]) / 1000.0
    };
    let scheduled = count * conns as u64;
    let answered = all.micros.len() as u64;
    println!(
        "asked {rate:.0} req/s for {secs:.0} s over {conns} connections: answered {answered} of {scheduled} ({:.0} req/s), statuses {:?}, errors {}",
        answered as f64 / elapsed,
        all.statuses,
        all.errors
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

/// One connection's schedule.
fn run(
    addr: &str,
    requests: &[Vec<u8>],
    start: Instant,
    interval: Duration,
    count: u64,
    seed: usize,
) -> Outcome {
    let mut out = Outcome {
        micros: Vec::with_capacity(count.min(1 << 20) as usize),
        statuses: Default::default(),
        errors: 0,
    };
    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (seed as u64).wrapping_mul(0xD134_2543_DE82_EF95);
    let mut conn: Option<(TcpStream, BufReader<TcpStream>)> = None;
    let deadline = start + interval.mul_f64(count as f64) + Duration::from_secs(5);
    for i in 0..count {
        let due = start + interval.mul_f64(i as f64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        if Instant::now() > deadline {
            break;
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let req = &requests[(rng % requests.len() as u64) as usize];
        if conn.is_none() {
            conn = TcpStream::connect(addr).ok().and_then(|s| {
                s.set_nodelay(true).ok()?;
                let r = BufReader::with_capacity(64 * 1024, s.try_clone().ok()?);
                Some((s, r))
            });
        }
        let Some((w, r)) = conn.as_mut() else {
            out.errors += 1;
            continue;
        };
        match w.write_all(req).and_then(|()| read_response(r)) {
            Ok(status) => {
                let micros = due.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                out.micros.push(micros);
                *out.statuses.entry(status).or_default() += 1;
            }
            Err(_) => {
                out.errors += 1;
                conn = None;
            }
        }
    }
    out
}

/// Reads one response; its status code. Needs `Content-Length` (the
/// service and the bare handler always send it).
fn read_response(r: &mut BufReader<TcpStream>) -> std::io::Result<u16> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let mut length = None;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(bad("connection closed in the headers"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse::<usize>().ok();
            }
        }
    }
    let n = length.ok_or_else(|| bad("no Content-Length"))?;
    let mut body = vec![0u8; n];
    r.read_exact(&mut body)?;
    Ok(status)
}
