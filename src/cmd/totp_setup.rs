//! `ftw totp-setup USER`: a new TOTP secret for a user, as the `otpauth://` URI and a QR
//! code to scan, and the exact line to put in the manifest.

use qrcode::QrCode;
use qrcode::render::unicode;

use crate::auth::totp;
use crate::error::{Error, Result};
use crate::manifest::names;

pub fn run(user: &str, issuer: &str) -> Result<()> {
    if !names::USER.allows(user) {
        return Err(Error::usage(format!(
            "{user:?} is not a user name ftw accepts: use {}",
            names::USER.describe()
        )));
    }
    let secret = totp::new_secret();
    let base32 = totp::to_base32(&secret);
    let uri = totp::uri(&secret, user, issuer).map_err(Error::runtime)?;
    let qr = QrCode::new(uri.as_bytes())
        .map_err(|e| Error::runtime(format!("cannot draw the QR code: {e}")))?
        .render::<unicode::Dense1x2>()
        .dark_color(unicode::Dense1x2::Light)
        .light_color(unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build();
    println!("Scan this with an authenticator app (or enter the secret by hand):\n");
    println!("{qr}\n");
    println!("Secret: {base32}");
    println!("URI:    {uri}\n");
    println!(
        "Then give {user} the secret in the manifest (better: in its users_file, mode 0600):\n"
    );
    println!("  {user} = {{ password = \"$argon2id$...\", totp = \"{base32}\" }}\n");
    println!("The secret is shown once; ftw keeps no copy.");
    Ok(())
}
