//! Test suites that are not cargo's (node, a page smoke run): run in their own process group,
//! output relayed, counts read from their closing lines, and the whole group ended afterwards so
//! no server, browser or worker outlives the run, even when the suite crashed or hung.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::describe;
use crate::test::TestCounts;

/// Reads a suite's output line by line; `counts` is `None` until its summary was seen.
pub trait Tally: Send + 'static {
    fn read(&mut self, line: &str);
    fn counts(&self) -> Option<TestCounts>;
}

/// A suite whose counts stand in one closing line, recognised by `parse` (the last one wins).
pub struct ClosingLine {
    parse: fn(&str) -> Option<TestCounts>,
    counts: Option<TestCounts>,
}

impl ClosingLine {
    pub fn new(parse: fn(&str) -> Option<TestCounts>) -> Self {
        ClosingLine {
            parse,
            counts: None,
        }
    }
}

impl Tally for ClosingLine {
    fn read(&mut self, line: &str) {
        if let Some(parsed) = (self.parse)(line) {
            self.counts = Some(parsed);
        }
    }

    fn counts(&self) -> Option<TestCounts> {
        self.counts
    }
}

pub fn run_grouped<T: Tally>(
    command: &mut Command,
    mut tally: T,
    timeout: Duration,
) -> Result<TestCounts> {
    let line = describe(command);
    eprintln!("$ {line}");
    let mut child = command
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("could not start `{line}`"))?;
    let group = child.id() as i32;
    let stdout = child.stdout.take().context("suite stdout")?;
    let reader = std::thread::spawn(move || {
        for text in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = writeln!(std::io::stdout(), "{text}");
            tally.read(&text);
        }
        tally.counts()
    });

    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if started.elapsed() > timeout {
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    end_group(group, &mut child);
    let counts = reader.join().ok().flatten();
    let Some(status) = status else {
        bail!("`{line}` still ran after {} s: stopped", timeout.as_secs());
    };
    match counts {
        Some(counts) if counts.failed > 0 => Ok(counts),
        Some(counts) if status.success() => Ok(counts),
        Some(_) => bail!("`{line}` failed ({status}) although every test passed"),
        None => bail!("`{line}` failed ({status}) before reporting its tests"),
    }
}

/// SIGTERM to what is left of the group (the sandbox stops gracefully on it), SIGKILL after 5 s.
fn end_group(group: i32, child: &mut std::process::Child) {
    // SAFETY: kill(2) with a negative pid signals that process group; no memory is involved.
    let alive = |signal| unsafe { libc::kill(-group, signal) } == 0;
    if alive(libc::SIGTERM) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && alive(0) {
            let _ = child.try_wait();
            std::thread::sleep(Duration::from_millis(100));
        }
        alive(libc::SIGKILL);
    }
    let _ = child.wait();
}
