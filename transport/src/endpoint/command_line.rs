//! Credentials do not belong on a command line, where other users of the
//! machine can read them (`ps`): the binaries refuse one that holds any.

use super::options::redact_raw;
use super::Endpoint;

/// The first of `args` (a process's command line) that holds a credential:
/// a NATS URL with an inline token or password, or any URL with a password
/// in its user info (`redis://:PASSWORD@…`). Returned with the secret
/// replaced by `***`, to name it in the error that refuses it: other users
/// of the machine can read a command line (`ps`), so credentials belong in
/// the environment or in files.
pub fn secret_on_command_line(args: impl IntoIterator<Item = String>) -> Option<String> {
    args.into_iter().find_map(|arg| {
        let value = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => value.to_string(),
            _ => arg,
        };
        let (_, rest) = value.split_once("://")?;
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let password_in_userinfo = authority
            .rsplit_once('@')
            .and_then(|(userinfo, _)| userinfo.split_once(':'))
            .is_some_and(|(_, password)| !password.is_empty());
        let inline = password_in_userinfo
            || value
                .parse::<Endpoint>()
                .is_ok_and(|e| e.has_inline_secret());
        inline.then(|| redact_raw(&value))
    })
}

/// Why this process refuses its command line, if an argument holds a
/// credential ([`secret_on_command_line`]); binaries print it and exit 2.
pub fn command_line_secret_error() -> Option<String> {
    secret_on_command_line(std::env::args().skip(1)).map(|arg| {
        format!(
            "`{arg}` puts a credential on the command line, where other users can read it: set the URL in the environment (WRPC_NATS_URL, WRPC_LISTEN, WRPC_TARGET, REDIS_URL, …), or read the secret from the environment (?token_env=VAR, ?password_env=VAR) or a file (?creds=FILE, ?nkey=FILE)"
        )
    })
}
