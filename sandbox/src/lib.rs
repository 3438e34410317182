//! Sandbox of the ANCV acquisition server.
