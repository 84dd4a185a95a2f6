//! The parts behind the listing figures of docs/performance.md, on the synthetic tree of
//! issue 14 (one project, 100 tasks × 100 runs, every run-info key filled, every 10th run
//! failed): building the server's run index, one page of `GET /api/v1/runs`, a task summary
//! and the status counters from the index, which marker files of 100 task directories may
//! exist (task listings, with and without the server's cache), and the CLI's per-task read of
//! `run-agent list`.
//! `BENCH_100K=1` adds the index build over 1,000 × 100 runs (slow to generate, off by default).

#[path = "support/synthetic.rs"]
mod synthetic;

use conductor::api::index::{RunFilter, RunIndex};
use conductor::api::task_files::{Marker, TaskFiles};
use conductor::runner::inspect::TaskView;
use conductor::storage::scan::{list_projects, list_tasks, task_dirs};
use conductor::storage::RunStatus;
use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    synthetic::generate(dir.path(), 100, 100).expect("synthetic tree");
    let mut group = c.benchmark_group("run_index");
    group.sample_size(10);
    group.bench_function("build_10k", |b| b.iter(|| RunIndex::build(dir.path(), &[])));
    let index = RunIndex::build(dir.path(), &[]);
    assert_eq!(index.len(), 10_000);
    group.sample_size(50);
    group.bench_function("page_100_of_10k", |b| {
        b.iter(|| index.page(&RunFilter::default(), None, 100))
    });
    let filter = RunFilter {
        project: Some(synthetic::PROJECT.into()),
        status: Some(RunStatus::Failed),
        ..RunFilter::default()
    };
    let cursor = synthetic::run_id(50, 50);
    group.bench_function("filtered_page_100_of_10k", |b| {
        b.iter(|| index.page(&filter, Some(&cursor), 100))
    });
    let task = synthetic::task_id(7);
    group.bench_function("task_summary", |b| {
        b.iter(|| index.task_runs(synthetic::PROJECT, &task))
    });
    group.bench_function("status_counts_10k", |b| b.iter(|| index.status_counts()));
    group.finish();

    let mut markers = c.benchmark_group("task_markers");
    markers.sample_size(20);
    let project = list_projects(dir.path()).remove(0);
    let tasks: Vec<_> = task_dirs(&project).into_iter().map(|(_, d)| d).collect();
    // Remembered entries need directories whose last change is a moment old.
    std::thread::sleep(conductor::api::task_files::SETTLED_AFTER);
    let cached = TaskFiles::default();
    markers.bench_function("100_tasks_remembered", |b| {
        b.iter(|| {
            tasks
                .iter()
                .filter(|d| cached.present(d).may_have(Marker::Done))
                .count()
        })
    });
    markers.bench_function("100_tasks_listed", |b| {
        b.iter(|| {
            let fresh = TaskFiles::default();
            tasks
                .iter()
                .filter(|d| fresh.present(d).may_have(Marker::Done))
                .count()
        })
    });
    markers.finish();

    let mut cli = c.benchmark_group("cli_list");
    cli.sample_size(20);
    cli.bench_function("newest_run_of_100_tasks", |b| {
        b.iter(|| {
            list_tasks(&project)
                .into_iter()
                .map(TaskView::read_newest)
                .count()
        })
    });
    cli.finish();

    if std::env::var_os("BENCH_100K").is_some() {
        let big = tempfile::tempdir().expect("temp dir");
        synthetic::generate(big.path(), 1_000, 100).expect("synthetic tree");
        let mut group = c.benchmark_group("run_index_100k");
        group.sample_size(10);
        group.bench_function("build_100k", |b| {
            b.iter(|| RunIndex::build(big.path(), &[]))
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
