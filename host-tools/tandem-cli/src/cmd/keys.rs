//! `tandem keys new`, `tandem sign`, `tandem verify`: Ed25519 keys and signed files
//! (docs/FORMAT.md, "Signatures").

use anyhow::Result;
use std::path::PathBuf;
use tandem_harness::keys;

/// Arguments of `tandem keys`.
#[derive(clap::Args, Debug)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum KeysCommand {
    /// Generate a key pair: DIR/tandem.key (secret, mode 0600) and DIR/tandem.pub.
    New {
        #[arg(long)]
        out: PathBuf,
    },
}

/// Arguments of `tandem sign`.
#[derive(clap::Args, Debug)]
pub struct SignArgs {
    /// A .tdm, a snapshot (any file: a trailer is appended), or a peer .onnx (its peer.sig).
    pub file: PathBuf,
    /// Secret key file (tandem keys new).
    #[arg(long)]
    pub key: PathBuf,
    /// Write here instead of in place (for a peer: instead of peer.sig).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

/// Arguments of `tandem verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    pub file: PathBuf,
    /// Public key file(s) to trust (repeat or comma separate).
    #[arg(long, value_delimiter = ',', required = true)]
    pub pubkey: Vec<PathBuf>,
}

pub fn keys(args: KeysArgs) -> Result<()> {
    match args.command {
        KeysCommand::New { out } => {
            let (secret, public, key) = keys::new_key_files(&out)?;
            println!("key id {}", key.public().key_id());
            println!("secret key {} (mode 0600: keep it private)", secret.display());
            println!("public key {}", public.display());
        }
    }
    Ok(())
}

pub fn sign(args: SignArgs) -> Result<()> {
    let written = keys::sign_file(&args.file, &args.key, args.out.as_deref())?;
    println!("signed {} -> {}", args.file.display(), written.display());
    Ok(())
}

pub fn verify(args: VerifyArgs) -> Result<()> {
    println!("{}", keys::verify_file(&args.file, &args.pubkey)?);
    Ok(())
}
