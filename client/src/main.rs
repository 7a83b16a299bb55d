//! `client`: the desktop chat client.

use argh::FromArgs;
use chat_client::app::App;
use tracing_subscriber::EnvFilter;

/// A desktop chat client.
#[derive(FromArgs)]
struct Args {
    /// server address as host:port, or the nodes of one cluster comma-separated
    /// (a:1,b:2: the client moves to the next when one cannot be reached); tls://
    /// in front for TLS (default: the server of the last login, else 127.0.0.1:60000)
    #[argh(option)]
    server: Option<String>,
    /// name to log in with (default: the name of the last login to that server)
    #[argh(option)]
    name: Option<String>,
    /// log in at once instead of waiting on the Login screen
    #[argh(switch)]
    connect: bool,
    /// print the version and exit
    #[argh(switch)]
    version: bool,
}

fn main() -> iced::Result {
    let args: Args = argh::from_env();
    if args.version {
        println!("chat-client {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    let (name, server) = chat_client::settings::Settings::load()
        .login_defaults(args.name.as_deref(), args.server.as_deref());
    tracing_subscriber::fmt()
        .with_env_filter(
            // winit warns about things only a headless X server lacks (XSETTINGS, screen size).
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("warn,winit=error")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut app = iced::application(
        move || App::new(&name, &server, args.connect),
        App::update,
        App::view,
    )
    .title(App::title)
    .theme(App::theme)
    .subscription(App::subscription)
    .exit_on_close_request(false)
    .window(iced::window::Settings {
        size: iced::Size::new(900.0, 620.0),
        // Below this the log, the input and the member list no longer all fit.
        min_size: Some(iced::Size::new(520.0, 360.0)),
        exit_on_close_request: false,
        // The WM_CLASS (X11) and app id (Wayland) that the desktop entry names
        // (`StartupWMClass=chat-client`), so the window gets the menu entry's icon.
        platform_specific: iced::window::settings::PlatformSpecific {
            application_id: "chat-client".into(),
            ..iced::window::settings::PlatformSpecific::default()
        },
        ..iced::window::Settings::default()
    });
    for font in chat_client::fonts::ALL {
        app = app.font(font);
    }
    app.run()
}
