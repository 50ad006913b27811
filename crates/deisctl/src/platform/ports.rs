//! Checks that the ports a component will listen on are free before its container is made, so
//! that a clash is one clear line instead of a container in a restart loop.

use super::component::Component;
use super::settings::Settings;
use crate::Error;

/// Whether something already listens on `host:port` (`udp` too). A port this user may not
/// bind (below 1024 without root) counts as free: the container runs as root.
fn in_use(host: &str, port: u16, udp: bool) -> bool {
    let clash = |e: std::io::Error| e.kind() == std::io::ErrorKind::AddrInUse;
    if let Err(e) = std::net::TcpListener::bind((host, port))
        && clash(e)
    {
        return true;
    }
    udp && std::net::UdpSocket::bind((host, port)).is_err_and(clash)
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
