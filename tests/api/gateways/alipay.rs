//! The alipay double; being written.
