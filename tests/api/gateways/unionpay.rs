//! The unionpay double; being written.
