//! `logstore completions SHELL`: the shell completion script, from the same definition of the
//! command line that parses it (clap_complete), so it never falls behind a flag.

use std::process::ExitCode;

use super::{CmdResult, Out};

/// Arguments of `completions`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Install, for example:
  bash: logstore completions bash > ~/.local/share/bash-completion/completions/logstore
  zsh:  logstore completions zsh > ~/.zfunc/_logstore   (with fpath+=~/.zfunc before compinit)
  fish: logstore completions fish > ~/.config/fish/completions/logstore.fish")]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Prints the completion script of `command` for the shell asked for.
pub fn run(mut command: clap::Command, args: Args) -> CmdResult {
    let mut out = Out::stdout();
    clap_complete::generate(args.shell, &mut command, "logstore", &mut out);
    std::io::Write::flush(&mut out)?;
    Ok(ExitCode::SUCCESS)
}
