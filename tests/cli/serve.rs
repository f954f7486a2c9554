//! `iris-trainer serve` as a process: real sockets, every protocol against `predict`, concurrency,
//! the request log, signals and start-up failures. The HTTP 4xx matrix of every protocol is tested
//! in process, in `src/serve/tests.rs`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::{Fails, Server, bin, get, json, post, predict_json, shared_model};

/// Probabilities as the f32 values they stand for, in class order.
fn probabilities(v: &serde_json::Value) -> Vec<f32> {
    let values: Vec<&serde_json::Value> = match v {
        serde_json::Value::Object(m) => m.values().collect(),
        serde_json::Value::Array(a) => a.iter().collect(),
        other => panic!("not probabilities: {other}"),
    };
    values.iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

#[test]
fn every_protocol_over_a_real_socket_agrees_with_the_cli() {
    let server = Server::start(shared_model(), &[]);
    let rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]];
    let input: String = rows
        .iter()
        .map(|r| r.map(|x: f64| x.to_string()).join(",") + "\n")
        .collect();
    let cli = predict_json(bin(), shared_model(), &input);
    let expected: Vec<Vec<f32>> = cli
        .iter()
        .map(|p| probabilities(&p["probabilities"]))
        .collect();
    assert_eq!(
        (cli[0]["species"].as_str(), cli[1]["species"].as_str()),
        (Some("setosa"), Some("virginica"))
    );

    let (status, body) =
        get(&server.url("/prediction?slength=5.1&swidth=3.5&plength=1.4&pwidth=0.2"));
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    assert_eq!(
        (v["species"].as_str(), v["slength"].as_f64()),
        (Some("setosa"), Some(5.1))
    );
    assert_eq!(probabilities(&v["probabilities"]), expected[0]);

    let (status, body) = post(
        &server.url("/predict"),
        r#"{"instances":[[5.1,3.5,1.4,0.2],{"sepal_length":6.7,"sepal_width":3.0,"petal_length":5.2,"petal_width":2.3}]}"#,
    );
    assert_eq!(status, 200, "{body}");
    let preds = json(&body)["predictions"].as_array().unwrap().clone();
    assert_eq!(probabilities(&preds[1]["probabilities"]), expected[1]);

    let (status, body) = post(
        &server.url("/v2/models/iris-trainer/infer"),
        r#"{"inputs":[{"name":"input","shape":[2,4],"datatype":"FP32","data":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]}]}"#,
    );
    assert_eq!(status, 200, "{body}");
    let outputs = &json(&body)["outputs"];
    assert_eq!(
        outputs[0]["data"],
        serde_json::json!(["setosa", "virginica"])
    );
    let flat: Vec<f32> = expected.concat();
    assert_eq!(probabilities(&outputs[1]["data"]), flat);

    let (status, body) = post(
        &server.url("/invocations"),
        r#"{"dataframe_split":{"columns":["sepal_length","sepal_width","petal_length","petal_width"],"data":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]},"params":{"predict_method":"predict_proba"}}"#,
    );
    assert_eq!(status, 200, "{body}");
    let got: Vec<Vec<f32>> = json(&body)["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(probabilities)
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn requests_are_logged_on_stderr_and_counted() {
    let server = Server::start(shared_model(), &[]);
    get(&server.url("/prediction?slength=5.1&swidth=3.5&plength=1.4&pwidth=0.2"));
    get(&server.url("/prediction?slength=oops&swidth=3.5&plength=1.4&pwidth=0.2"));
    get(&server.url("/v2/health/ready"));
    let (status, text) = get(&server.url("/metrics"));
    assert_eq!(status, 200);
    for line in [
        r#"iris_trainer_http_requests_total{method="GET",route="/prediction",status="200"} 1"#,
        r#"iris_trainer_http_requests_total{method="GET",route="/prediction",status="400"} 1"#,
        r#"iris_trainer_http_requests_total{method="GET",route="/v2/health/ready",status="200"} 1"#,
        r#"iris_trainer_predictions_total{class="setosa"} 1"#,
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    // One log line per request on stderr.
    std::thread::sleep(Duration::from_millis(100));
    let log = server.stderr.lock().unwrap().join("\n");
    assert!(log.contains("GET /prediction 400"), "{log}");
    assert!(log.contains("GET /v2/health/ready 200"), "{log}");
}

#[test]
fn garbage_on_the_socket_and_bad_requests_do_not_stop_the_service() {
    // Every protocol's 4xx answers are tested in process (src/serve/tests.rs); here, the real
    // server survives what only a socket can send.
    let server = Server::start(shared_model(), &["--max-body-bytes", "2000"]);
    let mut s = TcpStream::connect(server.base.trim_start_matches("http://")).unwrap();
    s.write_all(b"\x00\xff\x13garbage\r\n\r\n").unwrap();
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
    // A client that declares a huge body and sends none is answered at once.
    let mut s = TcpStream::connect(server.base.trim_start_matches("http://")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 999999999\r\n\r\n")
        .unwrap();
    let mut answer = [0u8; 12];
    s.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 413");
    let (status, body) = post(&server.url("/predict"), "{");
    assert_eq!(status, 400, "{body}");
    assert_eq!(get(&server.url("/health")).0, 200);
    assert_eq!(get(&server.url("/v2/health/live")).0, 200);
    assert_eq!(get(&server.url("/ping")).0, 200);
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
                        let row = r.join(",");
                        let (status, body) = match (t + i) % 4 {
                            0 => get(&server.url(&format!(
                                "/prediction?slength={}&swidth={}&plength={}&pwidth={}",
                                r[0], r[1], r[2], r[3]
                            ))),
                            1 => post(&server.url("/predict"), &format!("[{row}]")),
                            2 => post(
                                &server.url("/v2/models/iris-trainer/infer"),
                                &format!(r#"{{"inputs":[{{"name":"input","shape":[1,4],"datatype":"FP32","data":[{row}]}}]}}"#),
                            ),
                            _ => post(
                                &server.url("/invocations"),
                                &format!(r#"{{"instances":[[{row}]],"params":{{"predict_method":"predict_proba"}}}}"#),
                            ),
                        };
                        assert_eq!(status, 200, "{body}");
                        let v = json(&body);
                        let want = probabilities(&expected[k]["probabilities"]);
                        let got = match (t + i) % 4 {
                            0 | 1 => {
                                assert_eq!(v["species"], expected[k]["species"]);
                                probabilities(&v["probabilities"])
                            }
                            2 => {
                                assert_eq!(v["outputs"][0]["data"][0], expected[k]["species"]);
                                probabilities(&v["outputs"][1]["data"])
                            }
                            _ => probabilities(&v["predictions"][0]),
                        };
                        assert_eq!(got, want);
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
    bin()
        .args(["serve", "--addr", "127.0.0.1:0", "-m"])
        .arg(dir.path().join("none"))
        .fails(5, &["does not exist"]);
    let server = Server::start(shared_model(), &[]);
    let port = server.base.rsplit(':').next().unwrap().to_string();
    bin()
        .args(["serve", "--addr", "127.0.0.1:1", "--port", &port, "-m"])
        .arg(shared_model())
        .fails(1, &[&format!("cannot serve on 127.0.0.1:{port}")]);
    let out = bin()
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--model-name",
            "a/b",
            "-m",
        ])
        .arg(shared_model())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "`a/b` is not a usable model name: use 1 to 128 letters, digits, `.`, `_` or `-`"
        ),
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
