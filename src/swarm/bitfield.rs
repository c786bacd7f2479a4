//! A fixed-size set of piece indices, in the wire's bit order (piece 0 = MSB of byte 0).

use bytes::Bytes;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitfield {
    bits: Vec<u8>,
    len: u32,
    ones: u32,
}

impl Bitfield {
    pub fn new(len: u32) -> Self {
        Self {
            bits: vec![0; (len as usize).div_ceil(8)],
            len,
            ones: 0,
        }
    }

    pub fn full(len: u32) -> Self {
        let mut b = Self::new(len);
        for i in 0..len {
            b.set(i);
        }
        b
    }

    /// Parses a received bitmap; `None` if its length is wrong or spare bits are set.
    pub fn from_wire(bytes: &[u8], len: u32) -> Option<Self> {
        if bytes.len() != (len as usize).div_ceil(8) {
            return None;
        }
        let spare = (8 - len % 8) % 8;
        if spare > 0
            && bytes
                .last()
                .is_some_and(|last| last & ((1u8 << spare) - 1) != 0)
        {
            return None;
        }
        let ones = bytes.iter().map(|b| b.count_ones()).sum();
        Some(Self {
            bits: bytes.to_vec(),
            len,
            ones,
        })
    }

    pub fn to_wire(&self) -> Bytes {
        Bytes::copy_from_slice(&self.bits)
    }

    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn count(&self) -> u32 {
        self.ones
    }

    pub fn is_complete(&self) -> bool {
        self.ones == self.len
    }

    pub fn get(&self, i: u32) -> bool {
        i < self.len && self.bits[(i / 8) as usize] & (0x80 >> (i % 8)) != 0
    }

    /// Sets bit `i`; returns true if it was not set before. Out-of-range indices are ignored.
    pub fn set(&mut self, i: u32) -> bool {
        if i >= self.len || self.get(i) {
            return false;
        }
        self.bits[(i / 8) as usize] |= 0x80 >> (i % 8);
        self.ones += 1;
        true
    }

    pub fn iter_ones(&self) -> impl Iterator<Item = u32> + '_ {
        self.bits
            .iter()
            .enumerate()
            .filter(|(_, b)| **b != 0)
            .flat_map(|(i, &b)| {
                (0..8u32)
                    .filter(move |bit| b & (0x80 >> bit) != 0)
                    .map(move |bit| i as u32 * 8 + bit)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_round_trip_and_validation() {
        let mut b = Bitfield::new(10);
        assert!(b.set(0) && b.set(9) && !b.set(9) && !b.set(10));
        assert_eq!(b.to_wire().as_ref(), &[0x80, 0x40]);
        assert_eq!(Bitfield::from_wire(&b.to_wire(), 10), Some(b.clone()));
        assert_eq!(b.count(), 2);
        assert_eq!(Bitfield::from_wire(&[0x80], 10), None, "too short");
        assert_eq!(
            Bitfield::from_wire(&[0x80, 0x41], 10),
            None,
            "spare bit set"
        );
        assert!(Bitfield::full(10).is_complete());
        assert_eq!(Bitfield::full(10).iter_ones().count(), 10);
    }
}
