//! Checks that the ports a component will listen on are free before its container is made, so
//! that a clash is one clear line instead of a container in a restart loop.

use super::component::Component;
use super::settings::Settings;
use crate::Error;

/// Whether something already listens on `host:port` (or, with `udp`, has its UDP port). The
/// check binds as the servers will, with `SO_REUSEADDR`, so a port whose only sockets are
/// connections in TIME-WAIT (a platform just stopped) counts as free. A port this user may not
/// bind (below 1024 without root) counts as free: the container runs as root.
fn in_use(host: &str, port: u16, udp: bool) -> bool {
    let Ok(addrs) = std::net::ToSocketAddrs::to_socket_addrs(&(host, port)) else {
        return false;
    };
    addrs.into_iter().any(|addr| {
        let clash = |e: std::io::Error| e.kind() == std::io::ErrorKind::AddrInUse;
        listens(addr).is_err_and(clash)
            || (udp && std::net::UdpSocket::bind(addr).is_err_and(clash))
    })
}

/// Binds and listens on `addr` with `SO_REUSEADDR`, then lets go.
fn listens(addr: std::net::SocketAddr) -> std::io::Result<()> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1)
}

/// Fails when `host:port` is taken, naming the setting that moves it.
pub(crate) fn require_free(
    host: &str,
    port: u16,
    udp: bool,
    component: &str,
    setting: &str,
) -> Result<(), Error> {
    if in_use(host, port, udp) {
        return Err(Error::Message(format!(
            "port {port} on {host} is in use, so {component} cannot listen there; stop what uses it or choose another port ({setting})"
        )));
    }
    Ok(())
}

/// Checks every port of `component`.
pub(crate) fn require_all_free(settings: &Settings, component: Component) -> Result<(), Error> {
    for port in settings.ports.iter().filter(|p| p.component == component) {
        require_free(
            &settings.bind_host,
            port.number,
            port.udp,
            component.name(),
            &format!(
                "deisctl config {} set {}=<port>",
                component.name(),
                port.key
            ),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::in_use;

    #[test]
    fn a_listener_is_in_use_and_time_wait_is_not() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        assert!(in_use("127.0.0.1", port, false), "a listener");
        // A connection closed by the listening side first leaves it in TIME-WAIT.
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        drop(server);
        drop(listener);
        drop(client);
        assert!(!in_use("127.0.0.1", port, false), "only TIME-WAIT is left");
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().expect("address").port();
        assert!(in_use("127.0.0.1", port, true), "a UDP socket");
    }
}
