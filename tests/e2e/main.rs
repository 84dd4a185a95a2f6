//! Black-box tests: they drive the built `run-agent` and `conductor` binaries and the HTTP
//! API as a user would. One test binary (compiled once) with one module per capability.

mod browser;
mod support;

mod agent_reaping;
mod agent_resume;
mod agent_streams;
mod auth_matrix;
mod backup;
mod browse;
mod budget;
mod bus;
mod bus_api;
mod client;
mod completions;
mod config;
mod doctor;
mod events_api;
mod faults;
mod gc;
mod hostile;
mod inspect;
mod listing;
mod mock_models;
mod ops_scripts;
mod ops_units;
mod real_agents;
mod rest;
mod resume_cli;
mod run_stream;
mod runner;
mod security;
mod serve;
mod storage;
mod symlinks;
mod task_loop_lock;
mod task_slots_api;
mod tasks_api;
mod ui;
mod ui_flows;
mod ui_load;
mod ui_log;
mod ui_nav;
mod update;
mod usage;
mod webhook;
