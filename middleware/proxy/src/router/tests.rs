//! Routing without sockets: hosts, prefixes, the default and no route, and requests
//! parsed from bytes with a TLS server name.

use wireloop_middleware::http1::{header_slots, parse_request, Config};

use super::*;

fn config_like() -> Router {
    let mut r = Router::new();
    r.add(Some("api.example.test"), "/", 0).unwrap();
    r.add(None, "/static/", 1).unwrap();
    r
}

#[test]
fn the_configured_example_routes_by_host_then_prefix() {
    let r = config_like();
    assert_eq!(r.route(Some("api.example.test"), "/users"), Some(0));
    assert_eq!(r.route(Some("API.Example.Test:8443"), "/"), Some(0));
    assert_eq!(r.route(Some("api.example.test."), "/x"), Some(0));
    // The virtual host's own routes come first ("/" matches everything there).
    assert_eq!(r.route(Some("api.example.test"), "/static/a"), Some(0));
    // Any other host: the routes for any host, else nothing.
    assert_eq!(r.route(Some("www.example.test"), "/static/a"), Some(1));
    assert_eq!(r.route(None, "/static/"), Some(1));
    assert_eq!(r.route(Some("www.example.test"), "/static"), None);
    assert_eq!(r.route(Some("www.example.test"), "/"), None);
    assert_eq!(r.route(None, "/"), None);
}

#[test]
fn the_longest_prefix_wins_and_a_virtual_host_falls_back_to_any_host() {
    let mut r = Router::new();
    r.add(None, "/", 0).unwrap();
    r.add(None, "/api/", 1).unwrap();
    r.add(None, "/api/v2/", 2).unwrap();
    r.add(Some("shop.test"), "/cart/", 3).unwrap();
    r.add(Some("*.shop.test"), "/", 4).unwrap();
    assert_eq!(r.route(None, "/api/v2/users"), Some(2));
    assert_eq!(r.route(None, "/api/v1/users"), Some(1));
    assert_eq!(
        r.route(None, "/apix"),
        Some(0),
        "a prefix is a plain prefix"
    );
    assert_eq!(r.route(Some("shop.test"), "/cart/1"), Some(3));
    assert_eq!(
        r.route(Some("shop.test"), "/api/x"),
        Some(1),
        "no match there: any host"
    );
    assert_eq!(
        r.route(Some("eu.shop.test"), "/cart/1"),
        Some(4),
        "wildcard"
    );
    // The same host and prefix again replaces the route.
    r.add(Some("SHOP.test"), "/cart/", 5).unwrap();
    assert_eq!(r.route(Some("shop.test"), "/cart/1"), Some(5));
    assert!(!r.is_empty() && Router::new().is_empty());
}

#[test]
fn bad_routes_are_refused_and_odd_hosts_do_not_match() {
    let mut r = Router::new();
    assert!(r.add(None, "static/", 0).is_err());
    assert!(r.add(None, "/a b", 0).is_err());
    assert!(r.add(Some("bad host"), "/", 0).is_err());
    assert!(r.add(Some("a..b/"), "/", 0).is_err());
    r.add(Some("*"), "/", 7).unwrap();
    assert_eq!(r.route(Some("anything"), "/"), Some(7), "* is any host");
    let long = "a".repeat(400);
    assert_eq!(r.route(Some(&long), "/"), Some(7));
    assert_eq!(r.route(Some("[::1]:8080"), "/x"), Some(7));
    assert_eq!(r.route(Some("é.test"), "/x"), Some(7));
}

fn route_bytes(r: &Router, head: &str, sni: Option<&str>) -> Option<usize> {
    let mut slots = header_slots();
    let cfg = Config::default();
    let (_, req) = parse_request(head.as_bytes(), &mut slots, &cfg)
        .unwrap()
        .unwrap();
    r.route_request(&req, sni)
}

#[test]
fn requests_route_by_target_host_header_or_server_name() {
    let r = config_like();
    let get = |target: &str, host: &str| format!("GET {target} HTTP/1.1\r\n{host}\r\n\r\n");
    assert_eq!(
        route_bytes(&r, &get("/x?a=/static/", "Host: api.example.test"), None),
        Some(0)
    );
    assert_eq!(
        route_bytes(&r, &get("/static/a?x", "Host: www.test"), None),
        Some(1)
    );
    assert_eq!(route_bytes(&r, &get("/x", "Host: www.test"), None), None);
    // The Host field wins over the server name; without one, the server name routes.
    let sni = Some("api.example.test");
    assert_eq!(route_bytes(&r, &get("/x", "Host: www.test"), sni), None);
    let http10 = "GET /x HTTP/1.0\r\n\r\n";
    assert_eq!(route_bytes(&r, http10, sni), Some(0));
    assert_eq!(route_bytes(&r, http10, None), None);
    // An absolute-form target names the host itself (the parser has checked that
    // `Host` names the same), and its path is routed.
    let abs = get(
        "http://api.example.test:80/y?q",
        "Host: api.example.test:80",
    );
    assert_eq!(route_bytes(&r, &abs, None), Some(0));
    let abs = get("http://www.test/static/z", "Host: www.test");
    assert_eq!(route_bytes(&r, &abs, None), Some(1));
    let abs10 = "GET http://api.example.test/y HTTP/1.0\r\n\r\n";
    assert_eq!(route_bytes(&r, abs10, None), Some(0));
}

#[test]
fn each_route_has_a_name_and_an_index_in_its_target() {
    let mut r = Router::new();
    r.add(Some("API.example.test"), "/", 0).unwrap();
    r.add_target(None, "/up/", Target::group(1).max_body(10))
        .unwrap();
    // The same host and prefix again: replaced, the same name and index.
    r.add(Some("api.example.test"), "/", 2).unwrap();
    assert_eq!(r.route_names(), ["api.example.test/", "*/up/"]);
    let t = r.target(Some("api.example.test"), "/x").unwrap();
    assert_eq!((t.group, t.route, t.max_body), (2, Some(0), None));
    let t = r.target(Some("other"), "/up/f").unwrap();
    assert_eq!((t.group, t.route, t.max_body), (1, Some(1), Some(10)));
}
