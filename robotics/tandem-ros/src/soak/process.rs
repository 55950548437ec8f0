//! A node under test as a child process: started (optionally on a store that refuses writes),
//! its log lines watched, its resident memory read, killed with SIGKILL or stopped with SIGTERM.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Log lines kept per process for error messages.
const KEPT_LINES: usize = 40;

/// A running node process.
pub struct NodeProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// The last [`KEPT_LINES`] lines of its log.
    pub tail: std::collections::VecDeque<String>,
    /// Its exit status, once reaped.
    exited: Option<ExitStatus>,
}

impl NodeProcess {
    /// Start `command` (program, then arguments). With `store_full` the process runs with a
    /// file-size limit of 512 bytes and SIGXFSZ ignored: every write past it fails (`EFBIG`),
    /// as writes fail on a full disk, while the node goes on running.
    pub fn spawn(command: &[OsString], store_full: bool) -> std::io::Result<Self> {
        let (program, args) = command.split_first().ok_or(std::io::ErrorKind::InvalidInput)?;
        let mut cmd = if store_full {
            let mut c = Command::new("sh");
            c.arg("-c").arg("trap '' XFSZ; ulimit -f 1; exec \"$@\"").arg("sh").arg(program).args(args);
            c
        } else {
            let mut c = Command::new(program);
            c.args(args);
            c
        };
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().ok_or(std::io::ErrorKind::BrokenPipe)?;
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self { child, lines, tail: Default::default(), exited: None })
    }

    /// The new log lines since the last call (also kept in [`NodeProcess::tail`]).
    pub fn poll_lines(&mut self) -> Vec<String> {
        let new: Vec<String> = self.lines.try_iter().collect();
        for l in &new {
            if self.tail.len() == KEPT_LINES {
                self.tail.pop_front();
            }
            self.tail.push_back(l.clone());
        }
        new
    }

    /// Its exit status, once it has exited (without waiting).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// Resident memory in KiB (`VmRSS`), while it runs.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// SIGKILL (a power cut, as far as the process can tell), then reap it. `None` when it had
    /// already exited by itself (its status is then in [`NodeProcess::exited`]).
    pub fn kill(&mut self) -> Option<ExitStatus> {
        if self.exited().is_some() {
            return None;
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }

    /// SIGTERM, then wait (at most `timeout`) for a clean exit; returns the exit status and what
    /// it printed on stdout (the node's JSON report). SIGKILL when it does not stop in time.
    pub fn terminate(mut self, timeout: Duration) -> (Option<ExitStatus>, String) {
        if self.exited().is_none() {
            let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        }
        let deadline = Instant::now() + timeout;
        while self.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            return (None, String::new());
        }
        let mut out = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            let _ = stdout.read_to_string(&mut out);
        }
        (self.exited, out)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
