//! The wechat double; being written.
