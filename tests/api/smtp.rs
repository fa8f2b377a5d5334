//! A minimal SMTP server on loopback that plays the receiving side of the real protocol
//! (RFC 5321: greeting, EHLO/HELO, MAIL, RCPT, DATA with dot-stuffing, RSET, NOOP, QUIT),
//! keeps what it receives, and can be told to refuse mail.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One message as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message (headers and body), dot-stuffing undone.
    pub data: String,
}

#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    refuse: Arc<AtomicBool>,
    /// Milliseconds to wait before acknowledging a message's data.
    stall_ms: Arc<AtomicU64>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sink = Self {
            port: listener.local_addr().unwrap().port(),
            refuse: Arc::default(),
            stall_ms: Arc::default(),
            received: Arc::default(),
        };
        let server = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let server = server.clone();
                tokio::spawn(async move {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(60), server.session(stream)).await;
                });
            }
        });
        sink
    }

    /// While set, every MAIL FROM is refused with a permanent 550.
    pub fn refuse(&self, refuse: bool) {
        self.refuse.store(refuse, Ordering::SeqCst);
    }

    /// Holds the reply to every message's data for `ms` (a slow server).
    pub fn stall(&self, ms: u64) {
        self.stall_ms.store(ms, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `count` messages have arrived (bounded).
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        for _ in 0..300 {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the SMTP sink received {} messages, expected {count}",
            self.received().len()
        );
    }

    async fn session(&self, stream: tokio::net::TcpStream) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 sink.test ESMTP ready\r\n").await?;
        let mut envelope = Received {
            mail_from: String::new(),
            rcpt_to: Vec::new(),
            data: String::new(),
        };
        while let Some(line) = lines.next_line().await? {
            let verb = line
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" => b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
                "HELO" => b"250 sink.test\r\n",
                "MAIL" if self.refuse.load(Ordering::SeqCst) => {
                    b"550 5.7.1 Sender refused by policy\r\n"
                }
                "MAIL" => {
                    envelope.mail_from = argument(&line);
                    envelope.rcpt_to.clear();
                    b"250 2.1.0 OK\r\n"
                }
                "RCPT" => {
                    envelope.rcpt_to.push(argument(&line));
                    b"250 2.1.5 OK\r\n"
                }
                "DATA" => {
                    write
                        .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                        .await?;
                    let mut data = String::new();
                    while let Some(line) = lines.next_line().await? {
                        if line == "." {
                            break;
                        }
                        data.push_str(line.strip_prefix('.').unwrap_or(&line));
                        data.push_str("\r\n");
                    }
                    envelope.data = data;
                    self.received.lock().unwrap().push(envelope.clone());
                    let stall = self.stall_ms.load(Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(stall)).await;
                    b"250 2.0.0 Queued\r\n"
                }
                "RSET" | "NOOP" => b"250 2.0.0 OK\r\n",
                "QUIT" => {
                    write.write_all(b"221 2.0.0 Bye\r\n").await?;
                    return Ok(());
                }
                _ => b"502 5.5.2 Command not recognized\r\n",
            };
            write.write_all(reply).await?;
        }
        Ok(())
    }
}

/// The address inside `MAIL FROM:<a@b>` or `RCPT TO:<a@b>`.
fn argument(line: &str) -> String {
    line.split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(address, _)| address.to_owned())
        .unwrap_or_default()
}
