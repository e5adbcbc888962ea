//! Real `redis-server` processes for the store tests.
//!
//! One standalone server and one three-master cluster per test binary, started
//! on first use on free loopback ports with no persistence, and shared by every
//! test through a unique key prefix ([`unique_prefix`]). Each server runs
//! under a small shell watchdog that stops it when the test process exits (a
//! `static` is never dropped); a [`RedisServer`] that is dropped stops its
//! server at once. Without `redis-server` the tests fail and say what to install.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

const INSTALL: &str =
    "the store tests need a real Redis: run `apt-get install redis-server redis-tools`";

/// Runs `redis-server ARGS` and stops it when the process `owner` is gone.
const WATCHDOG: &str = r#"
owner=$1; shift
"$@" &
child=$!
while kill -0 "$owner" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.2; done
kill "$child" 2>/dev/null
wait "$child"
"#;

/// One running `redis-server`.
pub struct RedisServer {
    pub port: u16,
    watchdog: Child,
    dir: TempDir,
}

impl RedisServer {
    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// Starts a server; `cluster` enables cluster mode (its bus port, PORT +
    /// 10000, must be free too).
    fn start(cluster: bool) -> Result<RedisServer, String> {
        require_tools()?;
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port(cluster);
            let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
            let mut args: Vec<String> = vec![
                "redis-server".into(),
                "--port".into(),
                port.to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--save".into(),
                String::new(),
                "--appendonly".into(),
                "no".into(),
                "--dir".into(),
                dir.path().display().to_string(),
                "--logfile".into(),
                dir.path().join("redis.log").display().to_string(),
            ];
            if cluster {
                args.extend(
                    [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "5000",
                    ]
                    .map(String::from),
                );
            }
            let watchdog = Command::new("sh")
                .arg("-c")
                .arg(WATCHDOG)
                .arg("sh")
                .arg(std::process::id().to_string())
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start redis-server: {e}"))?;
            let server = RedisServer {
                port,
                watchdog,
                dir,
            };
            if wait_for_pong(port, Duration::from_secs(10)) {
                return Ok(server);
            }
            last = server.log();
            // Most likely the port was taken meanwhile: try another one.
        }
        Err(format!("redis-server did not start; its log:\n{last}"))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "shutdown", "nosave"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.watchdog.wait();
    }
}

/// A `redis-server` with its own directory and an append-only file synced on
/// every write (`--appendonly yes --appendfsync always`), on a port that stays
/// the same when the test kills it ([`DurableRedis::kill`], SIGKILL) and
/// starts it again ([`DurableRedis::restart`]) over the same directory.
pub struct DurableRedis {
    pub port: u16,
    dir: TempDir,
    /// The watchdog shell and the server's pid, while it runs.
    running: Option<(Child, u32)>,
}

/// [`WATCHDOG`] that also prints the server's pid.
const WATCHDOG_PID: &str = r#"
owner=$1; shift
"$@" >/dev/null 2>&1 &
child=$!
echo "$child"
while kill -0 "$owner" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.2; done
kill "$child" 2>/dev/null
wait "$child"
"#;

impl DurableRedis {
    /// Starts a server on a free port.
    pub fn start() -> DurableRedis {
        if let Err(e) = require_tools() {
            panic!("{e}");
        }
        let mut last = String::new();
        for _ in 0..5 {
            let mut server = DurableRedis {
                port: free_port(false),
                dir: tempfile::tempdir().expect("tempdir"),
                running: None,
            };
            if server.launch() {
                return server;
            }
            last = server.log();
        }
        panic!("redis-server did not start; its log:\n{last}");
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's log (all its runs), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// SIGKILLs the server (no shutdown, no final save) and returns once its
    /// port refuses connections.
    pub fn kill(&mut self) {
        let (mut watchdog, pid) = self.running.take().expect("redis-server is running");
        let status = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -KILL {pid} failed");
        let _ = watchdog.kill();
        let _ = watchdog.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(
                Instant::now() < deadline,
                "redis-server {pid} still listening"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGSTOPs the server: its connections stay open and nothing is
    /// answered until [`DurableRedis::resume`] (a hung Redis).
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// SIGCONTs a paused server: it answers what it was sent meanwhile.
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        let (_, pid) = self.running.as_ref().expect("redis-server is running");
        let status = Command::new("kill")
            .args([&format!("-{name}"), &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {pid} failed");
    }

    /// Starts the server again on the same port and directory; returns once
    /// it has loaded its data and answers.
    pub fn restart(&mut self) {
        assert!(self.running.is_none(), "redis-server is already running");
        if !self.launch() {
            panic!("redis-server did not restart; its log:\n{}", self.log());
        }
    }

    fn launch(&mut self) -> bool {
        let dir = self.dir.path();
        let args: Vec<String> = vec![
            "redis-server".into(),
            "--port".into(),
            self.port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            "yes".into(),
            "--appendfsync".into(),
            "always".into(),
            "--dir".into(),
            dir.display().to_string(),
            "--logfile".into(),
            dir.join("redis.log").display().to_string(),
        ];
        let mut watchdog = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG_PID)
            .arg("sh")
            .arg(std::process::id().to_string())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server: {e}; {INSTALL}"));
        let mut line = String::new();
        let stdout = watchdog.stdout.take().expect("watchdog stdout");
        let _ = BufReader::new(stdout).read_line(&mut line);
        let pid: u32 = line.trim().parse().expect("watchdog printed the pid");
        // PING answers `-LOADING` until the append-only file is read.
        if wait_for_pong(self.port, Duration::from_secs(10)) {
            self.running = Some((watchdog, pid));
            return true;
        }
        // Not ours to shut down over the port (another server may hold it).
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        let _ = watchdog.kill();
        let _ = watchdog.wait();
        false
    }
}

impl Drop for DurableRedis {
    fn drop(&mut self) {
        if let Some((mut watchdog, pid)) = self.running.take() {
            // A paused server would answer neither SHUTDOWN nor SIGTERM.
            let _ = Command::new("kill")
                .args(["-CONT", &pid.to_string()])
                .status();
            let _ = Command::new("redis-cli")
                .args(["-p", &self.port.to_string(), "shutdown", "nosave"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = watchdog.wait();
        }
    }
}

/// Three masters joined into one cluster.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// `redis://127.0.0.1:PORT` of every master.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    fn start() -> Result<RedisCluster, String> {
        let cluster = RedisCluster::unjoined()?;
        cluster.join()?;
        Ok(cluster)
    }

    /// Three servers in cluster mode, not joined: no slot is served yet.
    pub fn unjoined() -> Result<RedisCluster, String> {
        let nodes = (0..3)
            .map(|_| RedisServer::start(true))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RedisCluster { nodes })
    }

    /// Joins the servers into one cluster (`redis-cli --cluster create`)
    /// and returns once every node says `cluster_state:ok`.
    pub fn join(&self) -> Result<(), String> {
        let nodes = &self.nodes;
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .map_err(|e| format!("redis-cli --cluster create: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in nodes {
            loop {
                let info = redis_cli(node.port, &["cluster", "info"]);
                if info.contains("cluster_state:ok") {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!("cluster not ok on port {}:\n{info}", node.port));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }
}

/// The shared standalone server of this test binary.
pub fn standalone() -> &'static RedisServer {
    static SERVER: OnceLock<Result<RedisServer, String>> = OnceLock::new();
    match SERVER.get_or_init(|| RedisServer::start(false)) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

/// A standalone server of the calling test's own, for tests that run the
/// binary (whose keys have the default prefix) or empty the server.
pub fn own_standalone() -> RedisServer {
    RedisServer::start(false).unwrap_or_else(|e| panic!("{e}"))
}

/// The shared three-master cluster of this test binary.
pub fn cluster() -> &'static RedisCluster {
    static CLUSTER: OnceLock<Result<RedisCluster, String>> = OnceLock::new();
    match CLUSTER.get_or_init(RedisCluster::start) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

/// A key prefix no other test of this process uses.
pub fn unique_prefix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "t{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `redis-cli -p PORT ARGS` and returns its output.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("redis-cli: {e}; {INSTALL}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn require_tools() -> Result<(), String> {
    for tool in ["redis-server", "redis-cli"] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Err(format!("`{tool}` not found: {INSTALL}"));
        }
    }
    Ok(())
}

/// A loopback port that is free now (and, for a cluster node, whose bus port is too).
fn free_port(cluster: bool) -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        if !cluster {
            return port;
        }
        if port <= 55_535 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn wait_for_pong(port: u16, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ping(port) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).is_ok() && line.starts_with("+PONG")
}
