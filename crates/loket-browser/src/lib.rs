//! Headless Chromium for tests, driven over the DevTools pipe.
//!
//! [`Browser::launch`] starts Chromium with `--remote-debugging-pipe` (JSON
//! messages separated by NUL bytes on file descriptors 3 and 4) and a fresh
//! profile, opens a 1280x800 tab and attaches to it: no WebSocket, no CDP
//! crate to compile. Chromium is the Debian package `chromium` (`.ci/run`
//! installs it); `CHROMIUM=/path/to/chrome` picks another binary.
//!
//! This is test support: every method panics, with the browser's own words,
//! when the browser fails or does not answer within [`WAIT`]. The browser
//! is killed when the [`Browser`] is dropped.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The longest one browser call or one wait for the page may take.
pub const WAIT: Duration = Duration::from_secs(20);

/// Headless Chromium on a pipe, killed when dropped.
#[derive(Debug)]
pub struct Browser {
    child: Child,
    to_browser: std::io::PipeWriter,
    from_browser: mpsc::Receiver<Value>,
    next_id: u64,
    session: String,
    /// Exceptions and console errors the page reported.
    errors: Vec<String>,
    _profile: tempfile::TempDir,
}

/// The Chromium binary: `$CHROMIUM`, or the first of `chromium`,
/// `chromium-browser`, `google-chrome`, `google-chrome-stable` on the `PATH`.
/// Panics, saying how to install one, when there is none.
pub fn chromium_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(path);
    }
    let names = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"];
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "this test drives headless Chromium and found none on the PATH: install the Debian \
         package `chromium` (`apt-get install chromium`; .ci/run does), or set CHROMIUM to a \
         Chrome or Chromium binary"
    );
}

impl Browser {
    /// Starts Chromium with a fresh profile, opens a 1280x800 tab and
    /// attaches to it.
    pub fn launch() -> Browser {
        let binary = chromium_binary();
        let profile = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(profile.path().join("stderr.log")).unwrap();
        let (browser_reads, to_browser) = std::io::pipe().unwrap();
        let (from_browser, browser_writes) = std::io::pipe().unwrap();
        let (read_fd, write_fd) = (browser_reads.as_raw_fd(), browser_writes.as_raw_fd());
        let mut command = std::process::Command::new(&binary);
        command
            .args([
                "--headless",
                "--remote-debugging-pipe",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                "--mute-audio",
                "--hide-scrollbars",
                "--lang=en-US",
                "--force-device-scale-factor=1",
                "--window-size=1280,800",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        // SAFETY: between fork and exec the closure only calls fcntl and
        // dup2, which are async-signal-safe, on descriptors that are open
        // in the parent. The pipe's ends are moved out of the way first so
        // that neither dup2 overwrites the other's source.
        unsafe {
            command.pre_exec(move || {
                let read = libc::fcntl(read_fd, libc::F_DUPFD, 10);
                let write = libc::fcntl(write_fd, libc::F_DUPFD, 10);
                if read < 0 || write < 0 || libc::dup2(read, 3) < 0 || libc::dup2(write, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child =
            command.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        drop((browser_reads, browser_writes));
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(from_browser);
            let mut message = Vec::new();
            while matches!(reader.read_until(0, &mut message), Ok(n) if n > 0) {
                if message.last() == Some(&0) {
                    message.pop();
                }
                if let Ok(value) = serde_json::from_slice(&message)
                    && sender.send(value).is_err()
                {
                    break;
                }
                message.clear();
            }
        });
        let mut browser = Browser {
            child,
            to_browser,
            from_browser: receiver,
            next_id: 0,
            session: String::new(),
            errors: Vec::new(),
            _profile: profile,
        };
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = browser.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        browser.session = attached["sessionId"].as_str().unwrap().to_owned();
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            browser.call(domain, json!({}));
        }
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": false}),
        );
        browser
    }

    /// One DevTools call (on the attached tab once there is one); panics
    /// with the browser's error or after `WAIT`.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        if let Err(error) = self.to_browser.write_all(&bytes) {
            panic!("{method}: cannot write to the browser: {error}{}", self.stderr_tail());
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let answer = match self.from_browser.recv_timeout(left) {
                Ok(answer) => answer,
                Err(error) => panic!("{method}: no answer from the browser ({error}){}", {
                    self.stderr_tail()
                }),
            };
            if answer["id"] == id {
                if let Some(error) = answer.get("error") {
                    panic!("{method}: {error}");
                }
                return answer["result"].clone();
            }
            self.note(&answer);
        }
    }

    /// Keeps the page's exceptions and console errors (CSP violations
    /// included).
    /// The exceptions and console errors the page reported so far (CSP
    /// violations included; refused network requests are not errors).
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    fn note(&mut self, event: &Value) {
        let params = &event["params"];
        match event["method"].as_str() {
            Some("Runtime.exceptionThrown") => {
                self.errors.push(params["exceptionDetails"].to_string());
            }
            Some("Runtime.consoleAPICalled") if params["type"] == "error" => {
                self.errors.push(params["args"].to_string());
            }
            // Refused requests (the wrong token's 401) are the page's
            // business; CSP violations and script errors are not.
            Some("Log.entryAdded")
                if params["entry"]["level"] == "error"
                    && params["entry"]["source"] != "network" =>
            {
                self.errors.push(params["entry"]["text"].to_string());
            }
            _ => {}
        }
    }

    fn stderr_tail(&self) -> String {
        let text =
            std::fs::read_to_string(self._profile.path().join("stderr.log")).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(10).collect();
        format!(
            "\nchromium's last words:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }

    /// Evaluates `expression` in the page; returns its value (JSON).
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(details) = result.get("exceptionDetails") {
            panic!("{expression}: {details}");
        }
        result["result"]["value"].clone()
    }

    pub fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        self.wait_for("the page to load", "document.readyState === 'complete'", |v| v == true);
    }

    /// Polls `expression` every 100 ms until `done` accepts its value;
    /// panics after `WAIT` with the last value.
    pub fn wait_for(
        &mut self,
        what: &str,
        expression: &str,
        mut done: impl FnMut(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let value = self.eval(expression);
            if done(&value) {
                return value;
            }
            if Instant::now() > deadline {
                panic!("waited {WAIT:?} for {what}; the page shows {value:#}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sets a form field as a person would and fires its `event` (`input`,
    /// `change`).
    pub fn set_field(&mut self, id: &str, value: &str, event: &str) {
        let expression = format!(
            "(() => {{ const field = document.getElementById({id}); field.value = {value}; \
             field.dispatchEvent(new Event({event})); return true; }})()",
            id = json!(id),
            value = json!(value),
            event = json!(event),
        );
        assert_eq!(self.eval(&expression), true);
    }

    /// A PNG of the viewport.
    pub fn screenshot(&mut self) -> Vec<u8> {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}));
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .expect("a screenshot is base64")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
