//! A small synchronous Chrome DevTools Protocol client for the browser tests:
//! starts Debian's headless `chromium` on a fresh profile, talks to it over one
//! websocket (flattened sessions, one per tab), and closes it on drop.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempfile::TempDir;
use tungstenite::{Message, WebSocket};

/// The flags this machine needs to run Chromium headless as root with its
/// closed network (see the machine notes): no sandbox, no GPU, no background
/// connections to Google.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// How long one protocol answer or awaited event may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Finds `tool` on `PATH`, or fails the test naming the Debian package.
pub fn require(tool: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{tool}` is not installed: the browser tests need Debian's `{package}` package \
                 (apt-get install -y chromium poppler-utils zbar-tools; .ci/test installs them)"
            )
        })
}

/// A running headless Chromium and one websocket to its browser target.
pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    next_id: u64,
    /// Events read while waiting for something else, in arrival order.
    events: Vec<Value>,
    stderr: Arc<Mutex<Vec<String>>>,
    _profile: TempDir,
}

impl Browser {
    pub fn launch() -> Browser {
        let chromium = require("chromium", "chromium");
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = Command::new(chromium)
            .args(CHROMIUM_FLAGS)
            .arg("--remote-debugging-port=0")
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        // Chromium prints its websocket address on stderr; keep draining it
        // afterwards so a full pipe never blocks the browser.
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let pipe = child.stderr.take().expect("stderr");
        let log = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(at) = line.find("ws://") {
                    let _ = tx.send(line[at..].trim().to_owned());
                }
                log.lock().unwrap().push(line);
            }
        });
        let url = match rx.recv_timeout(TIMEOUT) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "chromium did not print `DevTools listening on ws://…` within {TIMEOUT:?}:\n{}",
                    stderr.lock().unwrap().join("\n")
                );
            }
        };
        let host = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .expect("host:port")
            .to_owned();
        let stream = TcpStream::connect(&host).expect("connect to DevTools");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let (ws, _) =
            tungstenite::client(url.as_str(), stream).expect("DevTools websocket handshake");
        Browser {
            child,
            ws,
            next_id: 0,
            events: Vec::new(),
            stderr,
            _profile: profile,
        }
    }

    /// Reads one protocol message, or `None` when `deadline` passes first.
    fn read(&mut self, deadline: Instant) -> Option<Value> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.ws.get_ref().set_read_timeout(Some(left)).unwrap();
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    return Some(serde_json::from_str(&text).expect("CDP JSON"))
                }
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return None
                }
                Err(e) => panic!(
                    "DevTools connection failed: {e}\nchromium said:\n{}",
                    self.stderr.lock().unwrap().join("\n")
                ),
            }
        }
    }

    /// Sends a command (to a tab when `session` is given) and returns its result.
    pub fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .expect("send CDP command");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let Some(msg) = self.read(deadline) else {
                panic!("no answer to {method} within {TIMEOUT:?}");
            };
            if msg["id"] == id {
                if let Some(err) = msg.get("error") {
                    panic!("{method} failed: {err}");
                }
                return msg["result"].clone();
            }
            if msg.get("method").is_some() {
                self.events.push(msg);
            }
        }
    }

    /// Waits for the first event `method` of `session`, taking it off the queue.
    pub fn wait_event(&mut self, session: &str, method: &str) -> Value {
        let matches = |e: &Value| e["method"] == method && e["sessionId"] == session;
        if let Some(at) = self.events.iter().position(matches) {
            return self.events.remove(at);
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self.read(deadline) {
                Some(e) if matches(&e) => return e,
                Some(e) if e.get("method").is_some() => self.events.push(e),
                Some(_) => {}
                None => panic!("no {method} event within {TIMEOUT:?}"),
            }
        }
    }

    /// Collects the events that arrive during `wait`.
    pub fn settle(&mut self, wait: Duration) {
        let deadline = Instant::now() + wait;
        while let Some(e) = self.read(deadline) {
            if e.get("method").is_some() {
                self.events.push(e);
            }
        }
    }

    /// Takes every queued event of `session`.
    pub fn take_events(&mut self, session: &str) -> Vec<Value> {
        let (mine, rest) = std::mem::take(&mut self.events)
            .into_iter()
            .partition(|e| e["sessionId"] == session);
        self.events = rest;
        mine
    }

    /// Opens a blank tab and attaches to it; returns the tab's session id.
    pub fn new_tab(&mut self) -> (String, String) {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("targetId").to_owned();
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        let session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_owned();
        (target_id, session)
    }

    /// Opens a tab at a `width` × `height` phone viewport with page and
    /// network events on; returns its target and session ids.
    pub fn new_phone_tab(&mut self, (width, height): (u32, u32)) -> (String, String) {
        let (target, tab) = self.new_tab();
        let s = Some(tab.as_str());
        self.call(s, "Page.enable", json!({}));
        self.call(s, "Network.enable", json!({}));
        self.call(
            s,
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 2, "mobile": true}),
        );
        (target, tab)
    }

    pub fn close_tab(&mut self, target_id: &str) {
        self.call(None, "Target.closeTarget", json!({"targetId": target_id}));
    }

    /// Evaluates `expression` in the tab and returns its value as JSON.
    pub fn eval(&mut self, session: &str, expression: &str) -> Value {
        let res = self.call(
            Some(session),
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        if let Some(ex) = res.get("exceptionDetails") {
            panic!("evaluating {expression} threw: {ex}");
        }
        res["result"]["value"].clone()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let id = self.next_id + 1;
        let _ = self.ws.send(Message::text(
            json!({"id": id, "method": "Browser.close"}).to_string(),
        ));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
