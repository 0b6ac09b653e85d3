//! End-to-end test harness: starts real Envoy(s), the agent and backends on free 127.0.0.1 ports.
