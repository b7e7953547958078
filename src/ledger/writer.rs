//! The asynchronous, batched ledger writer: the request path hands entries to a
//! [`LedgerHandle`] and moves on; one background task on the app's task tracker
//! gathers them into batches and writes them through the [`LedgerStore`].
//!
//! Queue choice: an *unbounded* channel, with a queue-depth gauge and a warning once
//! the depth passes `channel_capacity`. A bounded channel leaves two bad choices when
//! it is full: make the request path wait (the design says it never waits on the
//! ledger) or drop rows (the ledger is billing data: no row may be lost). An entry is
//! a few hundred bytes, so even a long database outage at high traffic costs memory
//! that the gauge makes visible, which is the better failure. Rows are dropped only
//! when the database refuses a batch through every retry, or when an entry is recorded
//! after the writer was closed; both are logged and counted in
//! `switchyard_ledger_dropped_total`.
//!
//! Wake-ups: the writer is woken by the first entry of a batch, by a full batch's worth
//! of queued entries, by a flush and by the stop signal, not by every entry. The
//! entries in between wait in the queue until one of those or the batch's deadline.
//! Waking a task and re-arming its timer for each entry cost more CPU per request than
//! the rest of the writer's own work.
//!
//! Shutdown: the task drains the queue, writes it and ends when every handle is
//! dropped or when [`LedgerHandle::close`] (or the token `spawn` returns) is
//! triggered, so `tracker.close(); tracker.wait().await` returns only once everything
//! recorded before that point is in the database.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use metrics::Gauge;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::entry::LedgerEntry;
use super::store::LedgerStore;

/// How many times a batch is offered to the database before it is given up on. The
/// inserts are idempotent, so a retry after a commit whose answer was lost is safe.
const MAX_WRITE_ATTEMPTS: u32 = 5;
/// First retry delay, doubled after each failure (0.1 s, 0.2 s, 0.4 s, 0.8 s).
const RETRY_BASE_DELAY: Duration = Duration::from_millis(100);

/// Entries per transaction unless configured. Each transaction costs a commit and a
/// sync, and its share of the B-tree pages it rewrites (SQLite's WAL gets whole pages),
/// so larger batches cost less CPU per entry: 1,024 took about 7% less CPU per proxied
/// request than 256, and more gained nothing measurable (BENCHMARKS.md). Under the
/// `max_delay` most batches are smaller anyway.
pub const DEFAULT_BATCH_SIZE: usize = 1024;

/// How the writer batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterConfig {
    /// Most entries written in one transaction (at least 1).
    pub max_batch: usize,
    /// Longest an entry waits for its batch to fill before it is written anyway.
    pub max_delay: Duration,
    /// Queue depth above which the writer warns that the database is falling behind.
    /// A soft limit: entries beyond it are still queued, never dropped (see above).
    pub channel_capacity: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            max_batch: DEFAULT_BATCH_SIZE,
            max_delay: Duration::from_millis(200),
            channel_capacity: 100_000,
        }
    }
}

/// Why [`LedgerHandle::flush`] could not confirm that everything was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlushError {
    #[error("{rows} ledger entries could not be written and were dropped")]
    RowsLost { rows: u64 },
    #[error("the ledger writer stopped unexpectedly")]
    WriterGone,
}

enum Command {
    Record(Box<LedgerEntry>),
    Flush(oneshot::Sender<Result<(), FlushError>>),
}

/// State the handles and the writer task share.
#[derive(Debug)]
struct Shared {
    /// Entries recorded but not yet taken by the writer.
    depth: AtomicUsize,
    /// Whether the over-capacity warning has been logged since depth was last low.
    warned: AtomicBool,
    soft_capacity: usize,
    /// `switchyard_ledger_queue_depth`, registered once.
    depth_gauge: Gauge,
    /// Queue depth at which a recorder wakes the writer: the room left in the batch
    /// being filled. Set by the writer before it waits (see [`LedgerWriter::run`]).
    wake_depth: AtomicUsize,
    /// Wakes the writer while it fills a batch (see the module's notes on wake-ups).
    wake: Notify,
    /// Entries dropped over the writer's life.
    lost: AtomicU64,
    /// Cancelled to make the writer drain and stop.
    stop: CancellationToken,
    /// Cancelled by the writer task when it ends (even by panic).
    finished: CancellationToken,
}

/// The request path's side of the ledger. Cheap to clone; never blocks.
#[derive(Debug, Clone)]
pub struct LedgerHandle {
    tx: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
}

impl LedgerHandle {
    /// Queues an entry for writing and returns at once.
    pub fn record(&self, entry: LedgerEntry) {
        let depth = self.shared.depth.fetch_add(1, Ordering::SeqCst) + 1;
        if let Err(mpsc::error::SendError(command)) = self.tx.send(Command::Record(Box::new(entry)))
        {
            self.shared.depth.fetch_sub(1, Ordering::Relaxed);
            self.shared.lost.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("switchyard_ledger_dropped_total").increment(1);
            if let Command::Record(entry) = command {
                tracing::error!(
                    request_id = %entry.request.id,
                    "ledger entry recorded after the ledger writer stopped; it is not stored"
                );
            }
            return;
        }
        if depth == self.shared.wake_depth.load(Ordering::SeqCst) {
            self.shared.wake.notify_one();
        }
        self.shared.depth_gauge.set(depth as f64);
        if depth > self.shared.soft_capacity && !self.shared.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                depth,
                capacity = self.shared.soft_capacity,
                "ledger queue is over capacity: the database is slower than traffic; entries stay queued in memory"
            );
        }
    }

    /// Resolves once everything recorded (by any handle) before this call has been
    /// written, or given up on. After [`LedgerHandle::close`], waits for the final
    /// drain instead.
    pub fn flush(&self) -> impl Future<Output = Result<(), FlushError>> + Send + 'static {
        let (reply, answer) = oneshot::channel();
        let queued = self.tx.send(Command::Flush(reply)).is_ok();
        self.shared.wake.notify_one();
        let shared = Arc::clone(&self.shared);
        async move {
            if queued {
                if let Ok(result) = answer.await {
                    return result;
                }
            }
            shared.finished.cancelled().await;
            match shared.lost.load(Ordering::Relaxed) {
                0 if queued => Err(FlushError::WriterGone),
                0 => Ok(()),
                rows => Err(FlushError::RowsLost { rows }),
            }
        }
    }

    /// Asks the writer to write everything queued and stop. Entries recorded after
    /// this are dropped (and logged), so call it once the requests have drained.
    pub fn close(&self) {
        self.shared.stop.cancel();
    }

    /// Entries recorded and not yet taken by the writer.
    pub fn queue_depth(&self) -> usize {
        self.shared.depth.load(Ordering::Relaxed)
    }
}

/// Whether [`LedgerWriter::take_queued`] found the queue closed and empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drained {
    Open,
    Closed,
}

/// The background task that owns the queue's receiving end.
pub struct LedgerWriter {
    store: LedgerStore,
    rx: mpsc::UnboundedReceiver<Command>,
    config: WriterConfig,
    shared: Arc<Shared>,
    /// Entries dropped since the last flush was answered.
    lost_since_flush: u64,
}

impl LedgerWriter {
    /// Starts the writer on `tracker`. Returns the handle to record with and the
    /// token that, when cancelled, makes the writer drain and stop (the same as
    /// [`LedgerHandle::close`]).
    pub fn spawn(
        store: LedgerStore,
        tracker: &TaskTracker,
        config: WriterConfig,
    ) -> (LedgerHandle, CancellationToken) {
        let (tx, rx) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        let config = WriterConfig {
            // recv_many with a limit of 0 would read as "queue closed".
            max_batch: config.max_batch.max(1),
            ..config
        };
        let shared = Arc::new(Shared {
            depth: AtomicUsize::new(0),
            warned: AtomicBool::new(false),
            soft_capacity: config.channel_capacity,
            depth_gauge: metrics::gauge!("switchyard_ledger_queue_depth"),
            wake_depth: AtomicUsize::new(config.max_batch),
            wake: Notify::new(),
            lost: AtomicU64::new(0),
            stop: stop.clone(),
            finished: CancellationToken::new(),
        });
        let writer = LedgerWriter {
            store,
            rx,
            config,
            shared: Arc::clone(&shared),
            lost_since_flush: 0,
        };
        tracker.spawn(writer.run());
        (LedgerHandle { tx, shared }, stop)
    }

    async fn run(mut self) {
        let _finished = self.shared.finished.clone().drop_guard();
        let max_batch = self.config.max_batch;
        let mut inbox = Vec::with_capacity(max_batch);
        let mut batch = Vec::with_capacity(max_batch);
        let mut waiters = Vec::new();
        let mut stopping = false;
        loop {
            // Wait for the first entry of a batch (or a flush, or the stop signal).
            let received = tokio::select! {
                biased;
                _ = self.shared.stop.cancelled(), if !stopping => {
                    // Refuse new entries; the queued ones are still received below.
                    self.rx.close();
                    stopping = true;
                    continue;
                }
                n = self.rx.recv_many(&mut inbox, max_batch) => n,
            };
            if received == 0 {
                break; // every handle dropped, or closed, and the queue is empty
            }
            self.take(&mut inbox, &mut batch, &mut waiters);

            // Fill the batch until it is full, someone waits on a flush, the oldest
            // entry has waited max_delay, or (when stopping) the queue is empty.
            let deadline = tokio::time::sleep(self.config.max_delay);
            tokio::pin!(deadline);
            while batch.len() < max_batch && waiters.is_empty() {
                let drained = self.take_queued(&mut inbox, &mut batch, &mut waiters);
                if batch.len() >= max_batch || !waiters.is_empty() {
                    break;
                }
                if drained == Drained::Closed {
                    break; // stopping, or every handle dropped: write what there is
                }
                // Ask to be woken when the queue holds the rest of the batch. The
                // recorders add to the depth, then read this; the writer stores this, then
                // reads the depth (all SeqCst): either a recorder sees the new value and
                // wakes the writer, or the writer sees the entries and takes them now.
                let room = max_batch - batch.len();
                self.shared.wake_depth.store(room, Ordering::SeqCst);
                if self.shared.depth.load(Ordering::SeqCst) >= room {
                    // Counted but perhaps still being sent: let the sender finish.
                    tokio::task::yield_now().await;
                    continue;
                }
                tokio::select! {
                    biased;
                    _ = self.shared.stop.cancelled(), if !stopping => {
                        // Refuse new entries; the queued ones are still taken above.
                        self.rx.close();
                        stopping = true;
                    }
                    _ = self.shared.wake.notified() => {}
                    _ = &mut deadline, if !stopping => break,
                }
            }

            self.write(&mut batch).await;
            if !waiters.is_empty() {
                let result = match self.lost_since_flush {
                    0 => Ok(()),
                    rows => Err(FlushError::RowsLost { rows }),
                };
                self.lost_since_flush = 0;
                for waiter in waiters.drain(..) {
                    // A waiter that stopped waiting does not need the answer.
                    let _ = waiter.send(result.clone());
                }
            }
        }
        tracing::debug!("ledger writer drained and stopped");
    }

    /// Takes what is queued now, without waiting, up to a full batch. Says whether the
    /// queue is closed and empty (when stopping, or once every handle is dropped).
    fn take_queued(
        &mut self,
        inbox: &mut Vec<Command>,
        batch: &mut Vec<LedgerEntry>,
        waiters: &mut Vec<oneshot::Sender<Result<(), FlushError>>>,
    ) -> Drained {
        let mut drained = Drained::Open;
        while batch.len() + inbox.len() < self.config.max_batch {
            match self.rx.try_recv() {
                Ok(command) => inbox.push(command),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    drained = Drained::Closed;
                    break;
                }
            }
        }
        if !inbox.is_empty() {
            self.take(inbox, batch, waiters);
        }
        drained
    }

    /// Moves received commands into the batch and the list of flush waiters.
    fn take(
        &self,
        inbox: &mut Vec<Command>,
        batch: &mut Vec<LedgerEntry>,
        waiters: &mut Vec<oneshot::Sender<Result<(), FlushError>>>,
    ) {
        let mut entries = 0;
        for command in inbox.drain(..) {
            match command {
                Command::Record(entry) => {
                    batch.push(*entry);
                    entries += 1;
                }
                Command::Flush(reply) => waiters.push(reply),
            }
        }
        let depth = self
            .shared
            .depth
            .fetch_sub(entries, Ordering::Relaxed)
            .saturating_sub(entries);
        self.shared.depth_gauge.set(depth as f64);
        if depth <= self.shared.soft_capacity / 2 {
            self.shared.warned.store(false, Ordering::Relaxed);
        }
    }

    /// Writes and empties the batch.
    async fn write(&mut self, batch: &mut Vec<LedgerEntry>) {
        if batch.is_empty() {
            return;
        }
        // Shared with the database's blocking thread, then taken back: the batch's
        // buffer (hundreds of KiB) is reused rather than allocated and faulted in anew.
        let entries = Arc::new(std::mem::take(batch));
        self.insert(&entries).await;
        if let Ok(mut entries) = Arc::try_unwrap(entries) {
            entries.clear();
            *batch = entries;
        }
    }

    /// Writes `entries`, retrying with backoff; gives up (logging and counting the
    /// loss) only after `MAX_WRITE_ATTEMPTS` failures.
    async fn insert(&mut self, entries: &Arc<Vec<LedgerEntry>>) {
        let mut delay = RETRY_BASE_DELAY;
        for attempt in 1..=MAX_WRITE_ATTEMPTS {
            match self.store.insert_batch(Arc::clone(entries)).await {
                Ok(()) => {
                    metrics::counter!("switchyard_ledger_rows_written_total")
                        .increment(entries.len() as u64);
                    return;
                }
                Err(error) if attempt < MAX_WRITE_ATTEMPTS => {
                    metrics::counter!("switchyard_ledger_write_errors_total").increment(1);
                    tracing::warn!(%error, attempt, entries = entries.len(), "ledger write failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(error) => {
                    metrics::counter!("switchyard_ledger_write_errors_total").increment(1);
                    let rows = entries.len() as u64;
                    metrics::counter!("switchyard_ledger_dropped_total").increment(rows);
                    let first = entries.first().map(|e| &*e.request.id).unwrap_or("");
                    let last = entries.last().map(|e| &*e.request.id).unwrap_or("");
                    tracing::error!(
                        %error,
                        attempts = MAX_WRITE_ATTEMPTS,
                        entries = rows,
                        first_request_id = first,
                        last_request_id = last,
                        "ledger write failed for good; these entries are not stored"
                    );
                    self.shared.lost.fetch_add(rows, Ordering::Relaxed);
                    self.lost_since_flush += rows;
                }
            }
        }
    }
}
