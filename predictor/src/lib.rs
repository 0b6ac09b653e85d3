//! Reproduces Envoy's ring hash and Maglev host selection so the agent can predict where a key lands.
