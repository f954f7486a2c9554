//! `iris-trainer serve`: every route, every bad request, concurrency, limits, shutdown.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::{Server, bin, get, json, post, predict_json, shared_model};

#[test]
fn workshop_request_and_post_predict_agree_with_the_cli() {
    let server = Server::start(shared_model(), &[]);
    let (status, body) =
        get(&server.url("/prediction?slength=5.1&swidth=3.5&plength=1.4&pwidth=0.2"));
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["species"], "setosa");
    assert_eq!(v["slength"], 5.1);
    assert_eq!(v["pwidth"], 0.2);
    assert_eq!(v["probabilities"].as_object().unwrap().len(), 3);
    // The model's own feature names work too.
    let (status, body) = get(&server
        .url("/prediction?sepal_length=6.7&sepal_width=3.0&petal_length=5.2&petal_width=2.3"));
    assert_eq!(
        (status, json(&body)["species"].as_str()),
        (200, Some("virginica"))
    );

    let (status, body) = post(
        &server.url("/predict"),
        r#"{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2}"#,
    );
    assert_eq!(status, 200, "{body}");
    let single = json(&body);
    assert_eq!(single["species"], "setosa");
    assert_eq!(
        single["probability"],
        v_prob(&server, "5.1", "3.5", "1.4", "0.2")
    );

    let (status, body) = post(
        &server.url("/predict"),
        r#"{"instances":[[5.1,3.5,1.4,0.2],{"sepal_length":6.7,"sepal_width":3.0,"petal_length":5.2,"petal_width":2.3}]}"#,
    );
    assert_eq!(status, 200, "{body}");
    let batch = json(&body);
    let preds = batch["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 2);
    assert_eq!(preds[1]["species"], "virginica");

    // Same numbers as `iris-trainer predict`.
    let out = bin()
        .args(["predict", "-f", "json", "-m"])
        .arg(shared_model())
        .args(["6.7", "3.0", "5.2", "2.3"])
        .output()
        .unwrap();
    let cli: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        cli["predictions"][0]["probabilities"],
        preds[1]["probabilities"]
    );
}

fn v_prob(server: &Server, a: &str, b: &str, c: &str, d: &str) -> serde_json::Value {
    let (_, body) = get(&server.url(&format!(
        "/prediction?slength={a}&swidth={b}&plength={c}&pwidth={d}"
    )));
    json(&body)["probability"].clone()
}

#[test]
fn health_metadata_metrics_and_openapi() {
    let server = Server::start(shared_model(), &[]);
    let (status, body) = get(&server.url("/health"));
    assert_eq!(status, 200);
    assert_eq!(json(&body)["status"], "ok");
    let (status, body) = get(&server.url("/metadata"));
    assert_eq!(status, 200);
    let meta = json(&body);
    assert_eq!(meta["classes"][0], "setosa");
    assert_eq!(meta["format_version"], 1);
    let (status, body) = get(&server.url("/openapi.json"));
    assert_eq!(status, 200);
    let api = json(&body);
    assert_eq!(api["openapi"], "3.1.0");
    for path in [
        "/prediction",
        "/predict",
        "/health",
        "/metadata",
        "/metrics",
    ] {
        assert!(api["paths"].get(path).is_some(), "{path} undocumented");
    }
    // Traffic shows up in the metrics: by route and status, latency, predictions by class.
    get(&server.url("/prediction?slength=5.1&swidth=3.5&plength=1.4&pwidth=0.2"));
    get(&server.url("/prediction?slength=oops&swidth=3.5&plength=1.4&pwidth=0.2"));
    let (status, text) = get(&server.url("/metrics"));
    assert_eq!(status, 200);
    assert!(
        text.contains(
            r#"iris_trainer_http_requests_total{method="GET",route="/prediction",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/prediction",status="400"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("iris_trainer_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains(r#"iris_trainer_predictions_total{class="setosa"} 1"#),
        "{text}"
    );
    // One log line per request on stderr.
    std::thread::sleep(Duration::from_millis(100));
    let log = server.stderr.lock().unwrap().join("\n");
    assert!(log.contains("GET /prediction 400"), "{log}");
}

#[test]
fn bad_requests_get_json_4xx_and_the_service_keeps_serving() {
    let server = Server::start(
        shared_model(),
        &["--max-instances", "5", "--max-body-bytes", "2000"],
    );
    let q = "/prediction?";
    let gets = [
        (
            format!("{q}slength=5.1&swidth=3.5&plength=1.4"),
            400,
            "missing parameter(s): pwidth",
        ),
        (
            format!("{q}slength=5.1&swidth=3.5&plength=1.4&pwidth=0.2&extra=1"),
            400,
            "unknown parameter `extra`",
        ),
        (
            format!("{q}slength=x&swidth=3.5&plength=1.4&pwidth=0.2"),
            400,
            "`x` is not a number",
        ),
        (
            format!("{q}slength=NaN&swidth=3.5&plength=1.4&pwidth=0.2"),
            400,
            "not a finite number",
        ),
        (
            format!("{q}slength=inf&swidth=3.5&plength=1.4&pwidth=0.2"),
            400,
            "not a finite number",
        ),
        (
            format!("{q}slength=1&slength=2&swidth=3.5&plength=1.4&pwidth=0.2"),
            400,
            "given twice",
        ),
        (
            format!("{q}slength=3e38&swidth=3.5&plength=1.4&pwidth=0.2"),
            400,
            "too large to use",
        ),
        ("/nowhere".to_string(), 404, "no route GET /nowhere"),
    ];
    for (path, code, needle) in gets {
        let (status, body) = get(&server.url(&path));
        assert_eq!(status, code, "{path}: {body}");
        let v = json(&body);
        assert!(
            v["error"].as_str().unwrap().contains(needle),
            "{path}: {body}"
        );
        assert_eq!(v["status"], code);
    }
    let posts = [
        ("{", 400, "not valid JSON"),
        ("", 400, "not valid JSON"),
        (
            r#"{"sepal_length":5.1}"#,
            400,
            "missing field `sepal_width`",
        ),
        (r#"[1,2,3]"#, 400, "expected 4 values"),
        (r#"[1,2,3,"4"]"#, 400, "expected a number"),
        (r#"[1,2,3,1e39]"#, 400, "out of range"),
        (
            r#"{"sepal_length":1,"sepal_width":1,"petal_length":1,"petal_width":1,"x":1}"#,
            400,
            "unknown field `x`",
        ),
        (
            r#"{"sepal_length":1,"sepal_width":1,"petal_length":1,"petal_width":1,"sepal_length":9}"#,
            400,
            "field `sepal_length` is given twice",
        ),
        (r#"{"instances":[]}"#, 400, "`instances` is empty"),
        (
            r#"{"instances":[[1,2,3,4],[1,2,3,4],[1,2,3,4],[1,2,3,4],[1,2,3,4],[1,2,3,4]]}"#,
            400,
            "at most 5",
        ),
        (r#"{"instances":[[1,2,3,4],[1,2,3]]}"#, 400, "instances[1]"),
        (
            r#"{"instances":[[1,2,3,4]],"extra":1}"#,
            400,
            "unknown field `extra`",
        ),
        ("null", 400, "expected an object"),
    ];
    for (body, code, needle) in posts {
        let (status, text) = post(&server.url("/predict"), body);
        assert_eq!(status, code, "{body}: {text}");
        assert!(
            json(&text)["error"].as_str().unwrap().contains(needle),
            "{body}: {text}"
        );
    }
    let big = format!("[{}]", vec!["1.0"; 2000].join(","));
    let (status, text) = post(&server.url("/predict"), &big);
    assert_eq!(status, 413, "{text}");
    assert!(json(&text)["error"].is_string());
    let mut r = crate::common::agent()
        .post(&server.url("/predict"))
        .header("Content-Type", "text/plain")
        .send("[1,2,3,4]")
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    assert!(
        r.body_mut()
            .read_to_string()
            .unwrap()
            .contains("application/json")
    );
    let mut r = crate::common::agent()
        .delete(&server.url("/predict"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert!(json(&r.body_mut().read_to_string().unwrap())["error"].is_string());
    // Raw garbage on the socket does not take the service down.
    let mut s = TcpStream::connect(server.base.trim_start_matches("http://")).unwrap();
    s.write_all(b"\x00\xff\x13garbage\r\n\r\n").unwrap();
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
    assert_eq!(get(&server.url("/health")).0, 200);
}

#[test]
fn hundreds_of_concurrent_requests_all_succeed_with_identical_answers() {
    let server = Server::start(shared_model(), &["--quiet"]);
    let rows = [
        ["5.1", "3.5", "1.4", "0.2"],
        ["6.0", "2.9", "4.5", "1.5"],
        ["6.7", "3.0", "5.2", "2.3"],
        ["5.9", "3.0", "5.1", "1.8"],
    ];
    // The reference answers, from the CLI.
    let input: String = rows.iter().map(|r| r.join(",") + "\n").collect();
    let expected = predict_json(bin(), shared_model(), &input);

    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..100)
            .map(|t| {
                let (server, rows, expected) = (&server, &rows, &expected);
                scope.spawn(move || {
                    for i in 0..4 {
                        let k = (t + i) % rows.len();
                        let r = rows[k];
                        let (status, body) = if i % 2 == 0 {
                            get(&server.url(&format!(
                                "/prediction?slength={}&swidth={}&plength={}&pwidth={}",
                                r[0], r[1], r[2], r[3]
                            )))
                        } else {
                            post(&server.url("/predict"), &format!("[{}]", r.join(",")))
                        };
                        assert_eq!(status, 200, "{body}");
                        let v = json(&body);
                        assert_eq!(v["species"], expected[k]["species"]);
                        assert_eq!(v["probabilities"], expected[k]["probabilities"]);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
}

#[cfg(unix)]
#[test]
fn sigterm_finishes_in_flight_requests_then_exits_cleanly() {
    let mut server = Server::start(shared_model(), &[]);
    let body = br#"{"instances":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]}"#;
    let mut s = TcpStream::connect(server.base.trim_start_matches("http://")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // Headers and half the body, then the signal, then the rest.
    write!(
        s,
        "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    server.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(&body[10..]).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("virginica"), "{answer}");
    let status = server.wait(Duration::from_secs(20)).expect("server exits");
    assert!(status.success(), "{status:?}");
    let log = server.stderr.lock().unwrap().join("\n");
    assert!(
        log.contains("SIGTERM received") && log.contains("shut down cleanly"),
        "{log}"
    );
}

#[test]
fn serve_refuses_a_missing_model_and_a_busy_port() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["serve", "--addr", "127.0.0.1:0", "-m"])
        .arg(dir.path().join("none"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    let server = Server::start(shared_model(), &[]);
    let port = server.base.rsplit(':').next().unwrap().to_string();
    let out = bin()
        .args(["serve", "--addr", "127.0.0.1:1", "--port", &port, "-m"])
        .arg(shared_model())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot serve on 127.0.0.1:{port}")),
        "{err}"
    );
}

#[test]
fn model_dir_and_port_come_from_the_environment() {
    use std::io::{BufRead, BufReader};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = bin()
        .env("MODEL_DIR", shared_model())
        .env("PORT", port.to_string())
        .args(["serve", "--quiet", "--addr", "127.0.0.1:1"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), format!("listening on http://127.0.0.1:{port}"));
    let (status, body) = get(&format!("http://127.0.0.1:{port}/health"));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200, "{body}");
}

#[test]
fn healthcheck_exits_0_for_a_live_service_and_1_otherwise() {
    let server = Server::start(shared_model(), &[]);
    let port = server.base.rsplit(':').next().unwrap().to_string();
    let out = bin()
        .args(["healthcheck", "--port", &port])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");

    // Something that answers, but not 200.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = listener.local_addr().unwrap().port();
    let answer = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf).unwrap();
        s.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    });
    let out = bin()
        .env("PORT", busy.to_string())
        .arg("healthcheck")
        .output()
        .unwrap();
    answer.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "unhealthy: http://127.0.0.1:{busy}/health answered 503"
        )),
        "{err}"
    );

    // Nothing listening.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = bin()
        .args(["healthcheck", "--port", &free.to_string()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("unhealthy: http://127.0.0.1:{free}/health")),
        "{err}"
    );
}
