//! CPU used by the dashboard while idle: the real binary in a pseudo-terminal, a finished
//! campaign on screen, nobody typing. Target: < 2% of one core.
//!
//! `cargo bench --bench idle` (Linux: reads the process's user+system time from /proc/PID/stat,
//! which counts every thread, exited ones included; resolution one clock tick, 10 ms).
//! Prints CPU time over a 10 s window as a share of one core, then quits the dashboard.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, CommandBuilder, PtySize};

const BIN: &str = env!("CARGO_BIN_EXE_reprise");
const WINDOW: Duration = Duration::from_secs(10);

/// Nanoseconds of CPU the process has used, all threads (USER_HZ is 100 on Linux).
fn cpu_ns(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) * 10_000_000)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter that excludes us means: do nothing.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"idle".contains(&a))
    {
        return;
    }
    let dirs = tempfile::tempdir().expect("tempdir");
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 60,
            cols: 200,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("pty");
    let mut cmd = CommandBuilder::new(BIN);
    cmd.args([
        "tui",
        "sample-protocols/multiple-choice.toml",
        "--repeats",
        "2000",
    ]);
    cmd.cwd(env!("CARGO_MANIFEST_DIR"));
    cmd.env("REPRISE_DATA_DIR", dirs.path());
    cmd.env("REPRISE_CONFIG_DIR", dirs.path());
    cmd.env("TERM", "xterm-256color");
    let mut child = pair.slave.spawn_command(cmd).expect("spawn");
    let pid = child.process_id().expect("pid");
    let mut reader = pair.master.try_clone_reader().expect("reader");
    let mut writer = pair.master.take_writer().expect("writer");
    let screen = Arc::new(Mutex::new(vt100::Parser::new(60, 200, 0)));
    let written = Arc::new(Mutex::new(0usize));
    {
        let screen = Arc::clone(&screen);
        let written = Arc::clone(&written);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                screen.lock().expect("screen").process(&buf[..n]);
                *written.lock().expect("count") += n;
            }
        });
    }
    let start = Instant::now();
    while !screen
        .lock()
        .expect("screen")
        .screen()
        .contents()
        .contains("DONE")
    {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "campaign never finished"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Let the last frames settle, then measure.
    std::thread::sleep(Duration::from_secs(1));
    let before = cpu_ns(pid).expect("schedstat");
    let bytes_before = *written.lock().expect("count");
    std::thread::sleep(WINDOW);
    let after = cpu_ns(pid).expect("schedstat");
    let bytes = *written.lock().expect("count") - bytes_before;
    let share = (after - before) as f64 / WINDOW.as_nanos() as f64;
    println!(
        "idle: {:.3} ms CPU over {} s = {:.3}% of one core; {} bytes written to the terminal",
        (after - before) as f64 / 1e6,
        WINDOW.as_secs(),
        share * 100.0,
        bytes
    );
    writer.write_all(b"q").expect("quit");
    let _ = child.wait();
}
