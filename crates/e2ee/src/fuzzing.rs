//! Entry points for the fuzz targets (`fuzz/fuzz_targets/e2ee_*.rs`): the
//! decoders of peer input that are not public on their own.

use crate::error::DecodeError;
use crate::keys::from_json;
use crate::olm::ToDevicePlaintext;

/// Decodes the plaintext of a to-device message (what a peer wrote inside
/// Olm) and encodes it back, as [`crate::Device::decrypt_to_device`] does
/// before checking it.
pub fn decode_to_device_plaintext(json: &str) -> Result<String, DecodeError> {
    let plaintext: ToDevicePlaintext = from_json(json)?;
    Ok(crate::keys::to_json(&plaintext))
}
