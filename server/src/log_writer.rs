//! Where the JSON log lines go: standard output, written in batches.
//!
//! Why batches: the access log is one line per request, and writing each line as it is made
//! cost a `write` system call per request — about as much server CPU as all of the request's
//! routing (measured with `strace -c` and perf under `make bench`). Lines are appended to a
//! buffer in memory and written together every [`FLUSH_INTERVAL`], or at once when the buffer
//! holds [`FLUSH_AT_BYTES`], and [`flush`] writes whatever is left (the binary calls it
//! before it exits). The price: a crash that kills the process outright can lose the last
//! few milliseconds of lines. The audit log file (`audit_log.rs`) is not batched: each of its
//! events is written before the request answers.
//!
//! Written by hand: tracing-appender's non-blocking writer hands each line to a worker thread
//! that still writes them one by one (and wakes it per line); measured, it saved nothing.
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// How long a line may wait in memory before it is written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(20);
/// A buffer this full is written at once, by the thread that filled it.
pub const FLUSH_AT_BYTES: usize = 256 * 1024;

/// Lines waiting to be written.
struct Batch {
    lines: Mutex<Vec<u8>>,
}

impl Batch {
    const fn new() -> Batch {
        Batch {
            lines: Mutex::new(Vec::new()),
        }
    }

    /// Adds `bytes`; true when the batch is now full enough to write at once.
    fn append(&self, bytes: &[u8]) -> bool {
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.extend_from_slice(bytes);
        lines.len() >= FLUSH_AT_BYTES
    }

    /// Takes everything waiting, leaving the batch empty.
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.lines.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

static STDOUT_BATCH: Batch = Batch::new();
static FLUSHER: OnceLock<()> = OnceLock::new();
static FORCE_DIRECT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes what is waiting to standard output.
pub fn flush() {
    let pending = STDOUT_BATCH.take();
    if !pending.is_empty() {
        let mut out = std::io::stdout().lock();
        // Nowhere to report a failed log write; the lines are dropped, as stdout's would be.
        let _ = out.write_all(&pending);
        let _ = out.flush();
    }
}

fn start_flusher() {
    FLUSHER.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("fluxbase-log".into())
            .spawn(|| loop {
                std::thread::sleep(FLUSH_INTERVAL);
                flush();
            });
        if spawned.is_err() {
            // No thread, no batching: every line is written as it comes (see `write`).
            FORCE_DIRECT.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
}

/// The `MakeWriter` for tracing-subscriber: each log line joins the batch.
#[derive(Clone, Copy, Default)]
pub struct BatchedStdout;

/// One line's writer (tracing-subscriber writes a formatted line in one `write_all`).
pub struct LineWriter;

impl Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let full = STDOUT_BATCH.append(bytes);
        if full || FORCE_DIRECT.load(std::sync::atomic::Ordering::Relaxed) {
            flush();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchedStdout {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        start_flusher();
        LineWriter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_wait_in_order_until_taken() {
        let batch = Batch::new();
        assert!(!batch.append(b"{\"a\":1}\n"));
        assert!(!batch.append(b"{\"b\":2}\n"));
        assert_eq!(batch.take(), b"{\"a\":1}\n{\"b\":2}\n");
        assert!(batch.take().is_empty());
    }

    #[test]
    fn a_full_batch_asks_to_be_written() {
        let batch = Batch::new();
        assert!(!batch.append(&vec![b'x'; FLUSH_AT_BYTES - 1]));
        assert!(batch.append(b"\n"));
        assert_eq!(batch.take().len(), FLUSH_AT_BYTES);
    }
}
