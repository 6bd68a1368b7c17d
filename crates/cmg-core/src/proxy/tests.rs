use super::*;
use tokio::net::TcpListener;

#[test]
fn urls_and_bypass_lists() {
    let p = Proxy::new(
        "http://proxy.corp:3128",
        &["localhost", ".corp.test", "10.0.0.0/8", "::1"],
    )
    .expect("proxy");
    assert_eq!(p.addr(), "proxy.corp:3128");
    assert!(p.applies_to("gw.contoso.test"));
    assert!(!p.applies_to("localhost"));
    assert!(!p.applies_to("site.corp.test"));
    assert!(!p.applies_to("corp.test"));
    assert!(p.applies_to("notcorp.test"));
    assert!(!p.applies_to("10.1.2.3"));
    assert!(p.applies_to("11.1.2.3"));
    assert!(!p.applies_to("[::1]"));
    assert_eq!(
        Proxy::new("http://p", &[] as &[&str])
            .expect("no port")
            .addr(),
        "p:80"
    );
    assert!(!Proxy::new("http://p:1", &["*"])
        .expect("all")
        .applies_to("x"));
    for bad in [
        "https://p:1",
        "p:1",
        "http://p:0",
        "http://p:1/path",
        "http://:1",
    ] {
        assert!(Proxy::new(bad, &[] as &[&str]).is_err(), "{bad}");
    }
    assert!(Proxy::new("http://p:1", &["10.0.0.0/40"]).is_err());
    let secret = Proxy::new("http://u:s%40cret@p:1", &[] as &[&str]).expect("auth");
    assert!(!format!("{secret:?}").contains("cret"), "password in Debug");
    let err = Proxy::new("http://u:pw@p:1/x", &[] as &[&str]).expect_err("bad");
    assert!(!err.to_string().contains("pw"), "{err}");
}

#[test]
fn environment() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    assert_eq!(Proxy::from_env(env(&[])).expect("none"), None);
    assert_eq!(
        Proxy::from_env(env(&[("HTTPS_PROXY", " ")])).expect("empty"),
        None
    );
    let p = Proxy::from_env(env(&[
        ("https_proxy", "http://p:8080"),
        ("NO_PROXY", "a.test, b.test"),
    ]))
    .expect("env")
    .expect("set");
    assert_eq!(p.addr(), "p:8080");
    assert!(!p.applies_to("b.test"));
    assert!(p.applies_to("c.test"));
}

/// A one-shot fake proxy answering `answer` to the first CONNECT; returns its address
/// and the request head it received.
async fn fake_proxy(answer: &'static str) -> (String, tokio::task::JoinHandle<String>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    let task = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.expect("accept");
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut b).await.expect("read");
            head.push(b[0]);
        }
        s.write_all(answer.as_bytes()).await.expect("answer");
        s.write_all(b"tunnel").await.expect("tunnel bytes");
        String::from_utf8(head).expect("utf8")
    });
    (addr, task)
}

#[tokio::test]
async fn connect_tunnel_and_refusal() {
    let (addr, task) = fake_proxy("HTTP/1.1 200 Connection established\r\n\r\n").await;
    let p = Proxy::new(&format!("http://user:pw@{addr}"), &[] as &[&str]).expect("proxy");
    let mut s = p.connect("gw.contoso.test", 10140).await.expect("tunnel");
    let head = task.await.expect("join");
    assert!(
        head.starts_with("CONNECT gw.contoso.test:10140 HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.contains("Proxy-Authorization: Basic dXNlcjpwdw==\r\n"),
        "{head}"
    );
    let mut rest = [0u8; 6];
    s.read_exact(&mut rest).await.expect("tunnel bytes");
    assert_eq!(
        &rest, b"tunnel",
        "the bytes after the answer belong to the tunnel"
    );

    let (addr, _task) = fake_proxy("HTTP/1.1 403 Filtered\r\nContent-Length: 0\r\n\r\n").await;
    let p = Proxy::new(&format!("http://{addr}"), &[] as &[&str]).expect("proxy");
    let err = p
        .connect("gw.contoso.test", 443)
        .await
        .expect_err("refused");
    assert!(matches!(err, ProxyError::Refused { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("refused CONNECT gw.contoso.test:443: HTTP/1.1 403 Filtered"),
        "{msg}"
    );
}
