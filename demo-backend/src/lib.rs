//! The parts of the demo backend's LLM mode that the benchmarks reuse: the simulated vLLM prefix
//! cache ([`prefix_cache`]) and how a request's prompt text is rendered ([`prompt`]).

pub mod prefix_cache;
pub mod prompt;
