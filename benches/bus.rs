//! Message bus benchmarks (issue 4 targets): in-process append throughput (1 and 8 writers,
//! with and without fsync), read-all and tail-100 over a 100 MB bus, and follow latency
//! (append → follower wake-up, with p50/p99 printed).
//!
//! Run: `cargo bench --bench bus` (add `-- --quick` for a faster, rougher pass).
//! Set `BUS_BENCH_MB` to change the size of the generated large bus (default 100).

use std::cell::OnceCell;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use conductor::bus::format::encode_record;
use conductor::bus::{
    generate_msg_id, read_all, read_tail, AppendOptions, BusWriter, FollowFrom, Follower, Message,
    NewMessage,
};
use conductor::storage::ProjectId;
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};

fn project() -> ProjectId {
    ProjectId::parse("bench").expect("valid project id")
}

/// A typical agent message: a couple of lines of text.
fn body(i: u64) -> String {
    format!(
        "progress update {i}: compiled the storage module, 42 tests passed\n\
         next: wire the bus into the runner and post RUN_START events"
    )
}

fn append_benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(4));
    group.warm_up_time(Duration::from_secs(1));

    for &fsync in &[false, true] {
        let label = if fsync { "fsync" } else { "no_fsync" };
        if fsync {
            group.sample_size(10);
            group.measurement_time(Duration::from_secs(3));
        }
        let path = dir.path().join(format!("one-{label}.md"));
        let opts = AppendOptions {
            fsync,
            ..AppendOptions::default()
        };
        let mut writer = BusWriter::new(&path, opts.clone());
        let msg = NewMessage::new("PROGRESS", project()).body(body(0));
        group.bench_function(format!("1_writer/{label}"), |b| {
            b.iter(|| writer.append(&msg).expect("append"))
        });

        if !fsync {
            // The machine's floor for one append: flock, fstat, one write, unlock, with a
            // prebuilt record (no id, no formatting). The appender cannot beat this.
            let path = dir.path().join("floor.md");
            let file = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&path)
                .expect("open");
            let mut record = Vec::new();
            let mut m = Message::empty();
            m.msg_id = generate_msg_id(Utc::now());
            m.body = body(0);
            encode_record(&m, &mut record);
            group.bench_function("syscall_floor", |b| {
                b.iter(|| {
                    fs2::FileExt::lock_exclusive(&file).expect("lock");
                    let st = nix::sys::stat::fstat(file.as_raw_fd()).expect("fstat");
                    std::hint::black_box(st.st_ino);
                    (&file).write_all(&record).expect("write");
                    fs2::FileExt::unlock(&file).expect("unlock");
                })
            });
        }

        let path = dir.path().join(format!("eight-{label}.md"));
        group.bench_function(format!("8_writers/{label}"), |b| {
            b.iter_custom(|iters| parallel_appends(&path, &opts, 8, iters))
        });
    }
    group.finish();
}

/// Time for `iters` appends spread over `threads` writers (each with its own descriptor).
fn parallel_appends(path: &Path, opts: &AppendOptions, threads: u64, iters: u64) -> Duration {
    let per = iters.div_ceil(threads);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut writer = BusWriter::new(path, opts.clone());
                let msg = NewMessage::new("PROGRESS", project()).body(body(1));
                for _ in 0..per {
                    writer.append(&msg).expect("append");
                }
            });
        }
    });
    start.elapsed()
}

/// Writes a bus of about `mb` megabytes in appender format (encoded directly, for speed).
fn large_bus(dir: &Path, mb: u64) -> PathBuf {
    let path = dir.join("LARGE-BUS.md");
    let target = mb * 1024 * 1024;
    let mut data = Vec::with_capacity(target as usize + 4096);
    let mut i = 0u64;
    while (data.len() as u64) < target {
        let now = Utc::now();
        let mut msg = Message::empty();
        msg.msg_id = generate_msg_id(now);
        msg.ts = now;
        msg.msg_type = if i % 5 == 0 { "FACT" } else { "PROGRESS" }.to_string();
        msg.project_id = "bench".into();
        msg.task_id = "task-20260223-191700-bench".into();
        msg.run_id = "20260223-1917100000-4242-1".into();
        msg.body = body(i);
        if !data.is_empty() {
            data.push(b'\n');
        }
        encode_record(&msg, &mut data);
        i += 1;
    }
    std::fs::write(&path, &data).expect("write large bus");
    path
}

fn read_benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mb = std::env::var("BUS_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    // Generated on first use, so filtering these benchmarks out skips the work.
    let bus: OnceCell<PathBuf> = OnceCell::new();
    let path = || bus.get_or_init(|| large_bus(dir.path(), mb));

    let mut group = c.benchmark_group(format!("read_{mb}mb"));
    group.throughput(Throughput::Bytes(mb * 1024 * 1024));
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(100));
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("read_all", |b| {
        let path = path();
        b.iter(|| {
            let n = read_all(path).expect("read").len();
            assert!(n > 0);
        })
    });
    group.finish();

    let mut group = c.benchmark_group(format!("read_{mb}mb"));
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_millis(500));
    group.bench_function("tail_100", |b| {
        let path = path();
        b.iter(|| {
            let msgs = read_tail(path, 100).expect("tail");
            assert_eq!(msgs.len(), 100);
        })
    });
    group.finish();
}

/// Follow latency: a follower thread waits in `next_batch`; the bench thread appends and
/// measures until the follower has the message.
fn follow_bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("FOLLOW-BUS.md");
    let mut writer = BusWriter::new(&path, AppendOptions::default());
    writer
        .append(&NewMessage::new("INFO", project()).body("start"))
        .expect("append");

    let (tx, rx) = mpsc::channel::<Instant>();
    let stop = Arc::new(AtomicBool::new(false));
    let follower_stop = stop.clone();
    let follower_path = path.clone();
    let ready = tx.clone();
    let handle = std::thread::spawn(move || {
        let mut follower =
            Follower::open(&follower_path, FollowFrom::End, None).expect("open follower");
        // Tell the bench thread the follower is positioned before it appends.
        let _ = ready.send(Instant::now());
        while !follower_stop.load(Ordering::Relaxed) {
            let batch = follower
                .next_batch(Duration::from_millis(100))
                .expect("follow");
            for _ in batch {
                if tx.send(Instant::now()).is_err() {
                    return;
                }
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("follower ready");
    let msg = NewMessage::new("PROGRESS", project()).body(body(7));
    let mut one = || {
        let start = Instant::now();
        writer.append(&msg).expect("append");
        let seen = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("follower saw the append");
        seen.saturating_duration_since(start)
    };

    let mut group = c.benchmark_group("follow");
    group.measurement_time(Duration::from_secs(3));
    let mut printed = false;
    group.bench_function("append_to_wakeup", |b| {
        if !printed {
            printed = true;
            // Percentiles over a fixed number of round trips, printed for the report.
            let mut samples: Vec<Duration> = (0..2000).map(|_| one()).collect();
            samples.sort();
            let pct = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize];
            println!(
                "follow latency over {} appends: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
                samples.len(),
                pct(0.50),
                pct(0.90),
                pct(0.99),
                samples[samples.len() - 1]
            );
        }
        b.iter_custom(|iters| (0..iters).map(|_| one()).sum())
    });
    group.finish();

    stop.store(true, Ordering::Relaxed);
    drop(rx);
    let _ = handle.join();
}

criterion_group!(benches, append_benches, read_benches, follow_bench);
criterion_main!(benches);
