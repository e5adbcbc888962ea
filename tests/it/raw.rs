//! A raw HTTP/1.1 exchange over a socket: any bytes in the request line and
//! headers (reqwest would refuse or re-encode them), and the answer exactly
//! as sent (a body after a `HEAD` answer would show).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An answer as it came off the socket.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (after its `Content-Encoding`), or `Null`.
    pub fn json(&self) -> serde_json::Value {
        use std::io::Read;
        let mut plain = Vec::new();
        let body = match self.header("content-encoding") {
            Some("gzip") => flate2::read::GzDecoder::new(&self.body[..])
                .read_to_end(&mut plain)
                .map(|_| &plain[..]),
            Some("deflate") => flate2::read::ZlibDecoder::new(&self.body[..])
                .read_to_end(&mut plain)
                .map(|_| &plain[..]),
            _ => Ok(&self.body[..]),
        };
        body.ok()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(serde_json::Value::Null)
    }
}

/// Why an exchange gave no answer.
#[derive(Debug)]
pub enum RawError {
    /// The server closed or reset the connection without a status line.
    NoAnswer(String),
    /// No answer within the time limit.
    Timeout,
}

impl std::fmt::Display for RawError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RawError::NoAnswer(why) => write!(f, "no answer: {why}"),
            RawError::Timeout => write!(f, "no answer in time"),
        }
    }
}

/// Sends `head` (request line and headers, each ending in CRLF, without the
/// blank line) with `Connection: close`, then `body`, and reads the answer
/// to the end. `host` is `127.0.0.1:PORT`.
pub async fn exchange(
    host: &str,
    head: &[u8],
    body: &[u8],
    limit: Duration,
) -> Result<RawResponse, RawError> {
    exchange_from(None, host, head, body, limit).await
}

/// [`exchange`] from the loopback address `from` (127.0.0.0/8 is all
/// loopback on Linux): a client address of its own.
pub async fn exchange_from(
    from: Option<std::net::Ipv4Addr>,
    host: &str,
    head: &[u8],
    body: &[u8],
    limit: Duration,
) -> Result<RawResponse, RawError> {
    let run = async {
        let connect = async {
            let addr: std::net::SocketAddr = host.parse().expect("host is IP:PORT");
            let socket = tokio::net::TcpSocket::new_v4()?;
            if let Some(ip) = from {
                socket.bind((ip, 0).into())?;
            }
            socket.connect(addr).await
        };
        let stream = connect
            .await
            .map_err(|e| RawError::NoAnswer(format!("connect: {e}")))?;
        let mut request = head.to_vec();
        request.extend_from_slice(b"Connection: close\r\n\r\n");
        request.extend_from_slice(body);
        // Written while the answer is read: the server may answer (413,
        // 401, 404) and close before it reads the whole body.
        let (mut reader, mut writer) = stream.into_split();
        let write = tokio::spawn(async move {
            let _ = writer.write_all(&request).await;
            writer
        });
        let mut answer = Vec::new();
        // A reset after the answer leaves what was read in `answer`.
        let read = reader.read_to_end(&mut answer).await;
        write.abort();
        if answer.is_empty() {
            return Err(RawError::NoAnswer(format!("{read:?}")));
        }
        parse(&answer).ok_or_else(|| {
            RawError::NoAnswer(format!(
                "not an HTTP answer: {:?}",
                String::from_utf8_lossy(&answer[..answer.len().min(200)])
            ))
        })
    };
    tokio::time::timeout(limit, run)
        .await
        .unwrap_or(Err(RawError::Timeout))
}

fn parse(answer: &[u8]) -> Option<RawResponse> {
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&answer[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = answer[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    // An answer to HEAD says chunked and sends nothing.
    if chunked && !body.is_empty() {
        body = dechunk(&body)?;
    }
    Some(RawResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&raw[..line_end]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}
