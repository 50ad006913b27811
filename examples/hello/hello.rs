//! The quick start's app: a web server with nothing but Rust's standard library, built as a
//! static binary so that its image needs no base (`FROM scratch`). It answers every request
//! with `$GREETING` (default "Hello from Deis") and the container's host name, on `$PORT`.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

fn main() {
    let port = std::env::var("PORT").unwrap_or_else(|_| "5000".to_owned());
    let listener = match TcpListener::bind(format!("0.0.0.0:{port}")) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("cannot listen on port {port}: {e}");
            std::process::exit(1);
        }
    };
    println!("hello: listening on port {port}");
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || answer(stream));
    }
}

fn answer(stream: TcpStream) {
    let Ok(reader) = stream.try_clone() else {
        return;
    };
    // Read the request line and headers, up to the blank line.
    let mut lines = BufReader::new(reader).lines();
    let Some(Ok(request)) = lines.next() else {
        return;
    };
    for line in lines.by_ref() {
        match line {
            Ok(l) if !l.is_empty() => continue,
            _ => break,
        }
    }
    let greeting = std::env::var("GREETING").unwrap_or_else(|_| "Hello from Deis".to_owned());
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    let body = format!("{greeting} ({host})\n");
    println!("hello: {request}");
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
