//! Writes the synthetic run tree of docs/performance.md:
//! `cargo run --release --example synthetic_tree -- <root> [tasks=100] [runs-per-task=100]`.
//! The root must not exist yet (nothing is ever overwritten).

#[path = "../benches/support/synthetic.rs"]
mod synthetic;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: synthetic_tree <root> [tasks=100] [runs-per-task=100]";
    let Some(root) = args.first().map(PathBuf::from) else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let number = |i: usize, default: usize| -> Result<usize, String> {
        match args.get(i) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{text:?} is not a positive count; {usage}")),
        }
    };
    let (tasks, runs) = match (number(1, 100), number(2, 100)) {
        (Ok(t), Ok(r)) => (t, r),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if root.exists() {
        eprintln!("{} exists; give a new directory", root.display());
        return ExitCode::from(2);
    }
    match synthetic::generate(&root, tasks, runs) {
        Ok(project) => {
            println!(
                "{} tasks x {} runs under {}",
                tasks,
                runs,
                project.display()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("cannot write the tree under {}: {err}", root.display());
            ExitCode::from(1)
        }
    }
}
