//! Workspace integration tests (one binary, a module per area).

mod hostile;
mod support;
