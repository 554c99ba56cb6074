//! One integration-test binary for the whole workspace (faster to link than many).

mod intent;
