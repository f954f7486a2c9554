//! The service under load and faults: a bounded loopback soak of good and bad requests, slow
//! clients, clients that vanish mid-request and oversized bodies.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::{Server, get, json, post, shared_model};

#[cfg(target_os = "linux")]
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn round(server: &Server, i: usize) {
    let addr = server.base.trim_start_matches("http://").to_string();
    match i % 8 {
        0 => {
            let (s, b) =
                get(&server.url("/prediction?slength=5.1&swidth=3.5&plength=1.4&pwidth=0.2"));
            assert_eq!((s, json(&b)["species"].as_str()), (200, Some("setosa")));
        }
        1 => {
            let (s, b) = post(
                &server.url("/predict"),
                r#"{"instances":[[6.7,3.0,5.2,2.3],[5.1,3.5,1.4,0.2]]}"#,
            );
            assert_eq!(s, 200, "{b}");
            assert_eq!(json(&b)["predictions"][0]["species"], "virginica");
        }
        2 => assert_eq!(post(&server.url("/predict"), "{nope").0, 400),
        3 => assert_eq!(
            get(&server.url("/prediction?slength=NaN&swidth=1&plength=1&pwidth=1")).0,
            400
        ),
        4 => {
            // Oversized body (over the 64 KiB limit set below): refused from its headers,
            // before the client has sent it.
            let mut s = TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            s.write_all(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n[1,").unwrap();
            let mut answer = [0u8; 12];
            s.read_exact(&mut answer).unwrap();
            assert_eq!(&answer, b"HTTP/1.1 413");
        }
        5 => {
            // Gone mid-request: headers promise a body that never comes.
            let mut s = TcpStream::connect(&addr).unwrap();
            let _ = s.write_all(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n[1,2");
            drop(s);
        }
        6 => {
            // Slow client: the request trickles in, then is answered normally.
            let mut s = TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            for chunk in [
                "GET /health HTTP/1.1\r\n",
                "Host: x\r\n",
                "Connection: close\r\n",
                "\r\n",
            ] {
                s.write_all(chunk.as_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
            let mut answer = String::new();
            s.read_to_string(&mut answer).unwrap();
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        }
        _ => {
            // Half a request line, then gone.
            let mut s = TcpStream::connect(&addr).unwrap();
            let _ = s.write_all(b"GET /predi");
        }
    }
}

#[test]
fn soak_mixed_traffic_keeps_serving_with_flat_memory() {
    let server = Server::start(
        shared_model(),
        &[
            "--quiet",
            "--max-body-bytes",
            "65536",
            "--timeout",
            "2",
            "--max-concurrency",
            "64",
        ],
    );
    // Warm up, then measure memory across a bounded run (16 clients x 200 rounds, 60 s at most).
    for i in 0..64 {
        round(&server, i);
    }
    #[cfg(target_os = "linux")]
    let before = rss_kib(server.child.id());
    let deadline = Instant::now() + Duration::from_secs(60);
    std::thread::scope(|scope| {
        for t in 0..16 {
            let server = &server;
            scope.spawn(move || {
                for i in 0..200 {
                    if Instant::now() > deadline {
                        break;
                    }
                    round(server, t * 7 + i);
                }
            });
        }
        // The service answers /health throughout.
        let server = &server;
        scope.spawn(move || {
            for _ in 0..20 {
                assert_eq!(get(&server.url("/health")).0, 200);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
    });
    assert_eq!(get(&server.url("/health")).0, 200);
    #[cfg(target_os = "linux")]
    {
        let after = rss_kib(server.child.id());
        // Flat: a leak of even 1 KiB per request would add over 3 MiB here.
        assert!(
            after < before + 3 * 1024,
            "RSS grew from {before} KiB to {after} KiB"
        );
    }
}

#[test]
fn a_flood_of_connections_is_bounded_and_health_still_answers() {
    let server = Server::start(
        shared_model(),
        &["--quiet", "--timeout", "1", "--max-concurrency", "4"],
    );
    let addr = server.base.trim_start_matches("http://").to_string();
    // 200 idle connections that never send a request.
    let idle: Vec<TcpStream> = (0..200)
        .filter_map(|_| TcpStream::connect(&addr).ok())
        .collect();
    assert!(idle.len() > 100);
    let start = Instant::now();
    assert_eq!(get(&server.url("/health")).0, 200);
    assert!(start.elapsed() < Duration::from_secs(5));
    drop(idle);
}
