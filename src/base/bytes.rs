//! Big-endian integers read from bytes that came from the network: every
//! read is bounds-checked and answers `None` when the bytes are not there.

/// The big-endian u16 at `at`, if `bytes` holds it.
pub fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    let pair: [u8; 2] = bytes.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(u16::from_be_bytes(pair))
}

/// The big-endian u64 at `at`, if `bytes` holds it.
pub fn be64(bytes: &[u8], at: usize) -> Option<u64> {
    let chunk: [u8; 8] = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_be_bytes(chunk))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_what_is_there() {
        assert_eq!(be16(&[1, 2, 3], 1), Some(0x0203));
        assert_eq!(be16(&[1, 2], 1), None);
        assert_eq!(be16(&[1, 2], usize::MAX), None);
        assert_eq!(be64(&[0, 0, 0, 0, 0, 0, 1, 0], 0), Some(256));
        assert_eq!(be64(&[0; 7], 0), None);
        assert_eq!(be64(&[0; 9], usize::MAX - 2), None);
    }
}
