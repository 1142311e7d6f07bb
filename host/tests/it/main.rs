//! Host integration tests: one binary, one module per area. They load the real plugin
//! components from `plugins/dist/` and `test-plugins/dist/` (built by `scripts/build-plugins.sh`, which the test
//! script runs first).

mod architecture;
mod author;
mod bad_input;
mod budgets;
mod canary;
mod chaos;
mod chaos_support;
mod check;
mod cli;
mod clickhouse_current;
mod compile;
mod cooldown_redis;
mod dashboard;
mod dead_letter_privacy;
mod fuzz;
mod golden;
mod hostile;
mod instances;
mod merge;
mod plugins;
mod production;
mod projection;
mod reload;
mod services;
mod services_support;
mod shared;
mod shared_windows;
mod shop;
mod shop_oracle;
mod shop_services;
mod support;
mod tls;
