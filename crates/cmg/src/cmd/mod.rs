//! One module per subcommand.

pub mod cert;
pub mod client;
pub mod demo;
pub mod generate;
pub mod role;
pub mod site;
pub mod token;
