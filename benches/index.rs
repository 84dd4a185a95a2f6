//! Listing performance of the server's run index: one page of `GET /api/v1/runs` over a
//! tree of 10,000 runs (target: well under 50 ms per page), and the start-up scan.

use std::path::Path;

use chrono::Utc;
use conductor::api::index::{RunFilter, RunIndex};
use conductor::storage::{RunInfo, RunStatus};
use criterion::{criterion_group, criterion_main, Criterion};

const RUNS: usize = 10_000;

fn build_tree(root: &Path) {
    for i in 0..RUNS {
        let (p, t) = (format!("proj-{}", i % 10), format!("task-{}", i % 200));
        let run = format!("20260101-{:010}-1-{i}", i);
        let dir = root.join(&p).join(&t).join("runs").join(&run);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let mut info = RunInfo::new_running(&run, &p, &t, "claude", Utc::now());
        info.status = if i % 3 == 0 {
            RunStatus::Failed
        } else {
            RunStatus::Completed
        };
        std::fs::write(dir.join("run-info.yaml"), info.to_yaml()).expect("write");
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    build_tree(dir.path());
    let mut group = c.benchmark_group("run_index");
    group.sample_size(10);
    group.bench_function("build_10k", |b| b.iter(|| RunIndex::build(dir.path(), &[])));
    let index = RunIndex::build(dir.path(), &[]);
    assert_eq!(index.len(), RUNS);
    group.sample_size(50);
    group.bench_function("page_100_of_10k", |b| {
        b.iter(|| index.page(&RunFilter::default(), None, 100))
    });
    let filter = RunFilter {
        project: Some("proj-3".into()),
        status: Some(RunStatus::Failed),
        ..RunFilter::default()
    };
    group.bench_function("filtered_page_100_of_10k", |b| {
        b.iter(|| index.page(&filter, Some("20260101-0000009000-1-9000"), 100))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
