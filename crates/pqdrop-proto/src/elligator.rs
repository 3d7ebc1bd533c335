//! The RFC 9380 Elligator2 map onto Curve25519, u-coordinate only, as CPace
//! (draft-irtf-cfrg-cpace-21 §8.2) uses it to turn a password-derived hash into
//! a generator.
//!
//! curve25519-dalek keeps its Elligator2 private, so the map is written here.
//! The input is derived from the password, so every step runs in constant time:
//! the field arithmetic is fiat-crypto's formally verified GF(2^255-19) code,
//! exponents are fixed public constants, and the final choice between the two
//! candidate u-coordinates is a constant-time select, never a branch.
//!
//! The map, specialised from RFC 9380 §6.7.1 to Curve25519 (J = A = 486662,
//! K = 1, Z = 2):
//!
//! ```text
//! x1 = -A * inv0(1 + 2 * u^2)      (1 + 2u^2 is never 0: -1/2 is a non-square)
//! if x1 == 0: x1 = -A              (unreachable for this curve, kept for fidelity)
//! gx1 = x1^3 + A * x1^2 + x1
//! x2 = -x1 - A
//! return x1 if gx1 is square (or zero) else x2
//! ```
//!
//! RFC 9380 also computes the v-coordinate and fixes its sign; CPace discards v
//! (an X25519 ladder needs u alone), so that part is omitted.

use fiat_crypto::curve25519_64 as fiat;
use subtle::{Choice, ConstantTimeEq};

/// The Montgomery coefficient A of Curve25519 (v^2 = u^3 + A u^2 + u).
const CURVE_A: u64 = 486_662;

/// p - 2 = 2^255 - 21, little-endian: the exponent for inversion (Fermat).
/// Inverting 0 this way yields 0, which is exactly RFC 9380's `inv0`.
const P_MINUS_2: [u8; 32] = exponent_le(0xeb, 0x7f);

/// (p - 1) / 2 = 2^254 - 10, little-endian: the Euler criterion exponent.
/// x^((p-1)/2) is 1 for a non-zero square, p - 1 for a non-square, 0 for 0.
const P_MINUS_1_HALF: [u8; 32] = exponent_le(0xf6, 0x3f);

/// Builds a 32-byte little-endian constant of the form `lo, ff * 30, hi`, the
/// shape every exponent used here has.
const fn exponent_le(lo: u8, hi: u8) -> [u8; 32] {
    let mut e = [0xffu8; 32];
    e[0] = lo;
    e[31] = hi;
    e
}

/// A field element of GF(2^255 - 19) in fiat-crypto's tight (carried) form.
///
/// Only the operations the map needs are provided. Every operation is a fixed
/// sequence of fiat-crypto calls, so none of them depends on the value.
#[derive(Clone, Copy)]
struct Fe(fiat::fiat_25519_tight_field_element);

impl Fe {
    /// The element 0 (five zero limbs).
    const ZERO: Fe = Fe(fiat::fiat_25519_tight_field_element([0; 5]));
    /// The element 1 (limbs are radix 2^51, least significant first).
    const ONE: Fe = Fe(fiat::fiat_25519_tight_field_element([1, 0, 0, 0, 0]));
    /// The curve constant A; it fits in the lowest 51-bit limb.
    const A: Fe = Fe(fiat::fiat_25519_tight_field_element([CURVE_A, 0, 0, 0, 0]));

    /// decodeUCoordinate from RFC 7748 §5: clears bit 255 and reads the rest
    /// little-endian. Values in [p, 2^255) are accepted; they are congruent to
    /// their reduction and every later operation works modulo p.
    fn from_bytes(bytes: &[u8; 32]) -> Fe {
        let mut masked = *bytes;
        masked[31] &= 0x7f;
        let mut out = fiat::fiat_25519_tight_field_element([0; 5]);
        fiat::fiat_25519_from_bytes(&mut out, &masked);
        Fe(out)
    }

    /// The canonical (fully reduced, < p) little-endian encoding.
    fn to_bytes(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        fiat::fiat_25519_to_bytes(&mut out, &self.0);
        out
    }

    /// Converts a loose result back to tight form with a carry pass.
    fn carry(loose: &fiat::fiat_25519_loose_field_element) -> Fe {
        let mut out = fiat::fiat_25519_tight_field_element([0; 5]);
        fiat::fiat_25519_carry(&mut out, loose);
        Fe(out)
    }

    /// The loose view of a tight element, as fiat's multiplier expects.
    fn relax(self) -> fiat::fiat_25519_loose_field_element {
        let mut out = fiat::fiat_25519_loose_field_element([0; 5]);
        fiat::fiat_25519_relax(&mut out, &self.0);
        out
    }

    /// self + rhs.
    fn add(self, rhs: Fe) -> Fe {
        let mut loose = fiat::fiat_25519_loose_field_element([0; 5]);
        fiat::fiat_25519_add(&mut loose, &self.0, &rhs.0);
        Fe::carry(&loose)
    }

    /// self - rhs.
    fn sub(self, rhs: Fe) -> Fe {
        let mut loose = fiat::fiat_25519_loose_field_element([0; 5]);
        fiat::fiat_25519_sub(&mut loose, &self.0, &rhs.0);
        Fe::carry(&loose)
    }

    /// -self.
    fn neg(self) -> Fe {
        let mut loose = fiat::fiat_25519_loose_field_element([0; 5]);
        fiat::fiat_25519_opp(&mut loose, &self.0);
        Fe::carry(&loose)
    }

    /// self * rhs.
    fn mul(self, rhs: Fe) -> Fe {
        let mut out = fiat::fiat_25519_tight_field_element([0; 5]);
        fiat::fiat_25519_carry_mul(&mut out, &self.relax(), &rhs.relax());
        Fe(out)
    }

    /// self^2.
    fn square(self) -> Fe {
        let mut out = fiat::fiat_25519_tight_field_element([0; 5]);
        fiat::fiat_25519_carry_square(&mut out, &self.relax());
        Fe(out)
    }

    /// self^exp for a public, fixed exponent given little-endian.
    ///
    /// Left-to-right square-and-multiply. The branch is on the bits of the
    /// exponent, which are compile-time constants of this module, never on
    /// the (secret) base, so the sequence of operations is the same for every
    /// input.
    fn pow(self, exp_le: &[u8; 32]) -> Fe {
        let mut acc = Fe::ONE;
        for byte in exp_le.iter().rev() {
            for bit in (0..8).rev() {
                acc = acc.square();
                if (byte >> bit) & 1 == 1 {
                    acc = acc.mul(self);
                }
            }
        }
        acc
    }

    /// Constant-time equality, on the canonical encodings (the limb form is
    /// not unique).
    fn ct_eq(self, rhs: Fe) -> Choice {
        self.to_bytes().ct_eq(&rhs.to_bytes())
    }

    /// Constant-time select: `a` if `choice` is 0, `b` if it is 1.
    fn select(a: Fe, b: Fe, choice: Choice) -> Fe {
        let mut out = [0u64; 5];
        fiat::fiat_25519_selectznz(&mut out, choice.unwrap_u8(), &a.0 .0, &b.0 .0);
        Fe(fiat::fiat_25519_tight_field_element(out))
    }

    /// Whether self is a square in GF(p) (0 counts as a square, as RFC 9380's
    /// `is_square` defines it), in constant time.
    fn is_square(self) -> Choice {
        let chi = self.pow(&P_MINUS_1_HALF);
        chi.ct_eq(Fe::ONE) | self.ct_eq(Fe::ZERO)
    }
}

/// RFC 9380 Elligator2 map onto Curve25519, u-coordinate only, as CPace uses it.
/// `u` is the field element as 32 little-endian bytes; bit 255 is masked and the value reduced mod p
/// (this is CPace's decodeUCoordinate). Returns the canonical little-endian u-coordinate of the point.
///
/// Runs in constant time with respect to `u`. The result is always a point on
/// Curve25519 itself (never on the twist), which is what makes it usable as a
/// CPace generator.
pub fn map_to_curve_elligator2_curve25519(u: &[u8; 32]) -> [u8; 32] {
    let u = Fe::from_bytes(u);

    // x1 = -A / (1 + Z u^2) with Z = 2. Inversion by p-2 maps 0 to 0 (inv0).
    let two_u2 = u.square().add(u.square());
    let denom = Fe::ONE.add(two_u2);
    let x1 = Fe::A.mul(denom.pow(&P_MINUS_2)).neg();
    // RFC 9380 step "if x1 == 0, set x1 = -A". 1 + 2u^2 = 0 has no solution in
    // GF(2^255-19), so this never fires, but it costs one select to be exact.
    let x1 = Fe::select(x1, Fe::A.neg(), x1.ct_eq(Fe::ZERO));

    // gx1 = x1^3 + A x1^2 + x1 = x1 * (x1 * (x1 + A) + 1).
    let gx1 = x1.mul(x1.mul(x1.add(Fe::A)).add(Fe::ONE));
    // x2 = -x1 - A: the other root, whose g(x2) = Z u^2 g(x1) is square exactly
    // when g(x1) is not.
    let x2 = x1.neg().sub(Fe::A);

    Fe::select(x2, x1, gx1.is_square()).to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes 32 bytes of hex.
    fn h32(s: &str) -> [u8; 32] {
        let v = hex::decode(s).expect("hex");
        v.try_into().expect("32 bytes")
    }

    /// Decodes a big-endian hex field element (RFC 9380 vector style) into the
    /// little-endian bytes the map takes.
    fn be(s: &str) -> [u8; 32] {
        let mut b = h32(s);
        b.reverse();
        b
    }

    /// g(x) = x^3 + A x^2 + x, the right-hand side of the curve equation.
    fn curve_rhs(x: Fe) -> Fe {
        x.mul(x.mul(x.add(Fe::A)).add(Fe::ONE))
    }

    /// Map-only vectors: u -> Q.x for curve25519_XMD:SHA-512_ELL2_{NU,RO}_ from
    /// the hash-to-curve reference implementation (poc/vectors in
    /// cfrg/draft-irtf-cfrg-hash-to-curve). Q is map_to_curve(u) before
    /// cofactor clearing; on this suite Q.x is the Montgomery u-coordinate.
    /// Values are big-endian there, as in RFC 9380 Appendix J.
    #[test]
    fn rfc9380_map_vectors() {
        let vectors = [
            // NU_, msg "": u, Q.x
            (
                "573b55aefc52e0cb47dfe59b7352d0f775b79e8dfcf37f1b3e104a6993553f0f",
                "0decd247491ce194e8e887289bd8d769de7b502d59efb75300504458651984be",
            ),
            // NU_, msg "abc"
            (
                "70eb21469f3e2fe6c03b6adc1b826278d0732813e7f4d5c44adf46a5389ae258",
                "7776f671b2f3e9ec358f7f634d1694ba4036d2ee7178b691e44f1b36d129a812",
            ),
            // NU_, msg "abcdef0123456789"
            (
                "08a0f35daa8999ee5263641be2f44d1628044f939c34e98471d3810301767c65",
                "36260a425965973ecce5a673b31c3d71f80c184bad5937005a901398e1d0cb0b",
            ),
            // RO_, msg "": u[0] -> Q0.x, u[1] -> Q1.x
            (
                "0ee65264ee7fd5f177f17f00d9f669169cc3071e4edd56a27f5654911b30fb45",
                "71ce39805cdf4a5877f05ecbc1e0bab4d5c427ef27432a1724ce22512d707ace",
            ),
            (
                "65fabaa0d2ddbb06318adc118325ffb69c2cf04ffb2b3c2240415067659530e4",
                "0f6ec145dd4faf417e82a555e767d3f8d799fb1d183405148ae988a08bf59eb4",
            ),
        ];
        for (u, qx) in vectors {
            assert_eq!(map_to_curve_elligator2_curve25519(&be(u)), be(qx), "u = {u}");
        }
    }

    /// draft-irtf-cfrg-cpace-21 Appendix B.1.1: the decoded field element of
    /// the generator-string hash maps to the generator g.
    #[test]
    fn cpace_generator_vector() {
        let g = h32("d04bf6d41f6a289632a2e929fa29bebd51092512a7829fdde7d314b62f05a73f");
        // The raw hash: its last byte is 0xd3, i.e. bit 255 set.
        let hash = h32("03998087bdb1a2617bbe25ef5a7c18cd4f84f902328701790958755ee4aed1d3");
        // The same value after decodeUCoordinate cleared bit 255.
        let decoded = h32("03998087bdb1a2617bbe25ef5a7c18cd4f84f902328701790958755ee4aed153");
        assert_eq!(map_to_curve_elligator2_curve25519(&decoded), g);
        assert_eq!(map_to_curve_elligator2_curve25519(&hash), g, "bit 255 must be ignored");
    }

    /// Non-canonical inputs in [p, 2^255) map like their reduction.
    #[test]
    fn non_canonical_input_is_reduced() {
        // p + 5, little-endian: 0xed + 5 = 0xf2 in the low byte.
        let mut p_plus_5 = [0xffu8; 32];
        p_plus_5[0] = 0xf2;
        p_plus_5[31] = 0x7f;
        let mut five = [0u8; 32];
        five[0] = 5;
        assert_eq!(map_to_curve_elligator2_curve25519(&p_plus_5), map_to_curve_elligator2_curve25519(&five));
        // p itself is 0.
        let p = exponent_le(0xed, 0x7f);
        assert_eq!(map_to_curve_elligator2_curve25519(&p), map_to_curve_elligator2_curve25519(&[0u8; 32]));
    }

    /// Field sanity: the exponent constants really are p - 2 and (p - 1) / 2.
    #[test]
    fn field_helpers() {
        let three = Fe::ONE.add(Fe::ONE).add(Fe::ONE);
        assert!(bool::from(three.mul(three.pow(&P_MINUS_2)).ct_eq(Fe::ONE)));
        assert!(bool::from(Fe::ZERO.pow(&P_MINUS_2).ct_eq(Fe::ZERO)), "inv0(0) = 0");
        // 2 is a non-square mod p (p = 5 mod 8), 4 is a square, -1 is a square.
        let two = Fe::ONE.add(Fe::ONE);
        assert!(!bool::from(two.is_square()));
        assert!(bool::from(two.square().is_square()));
        assert!(bool::from(Fe::ONE.neg().is_square()));
        assert!(bool::from(Fe::ZERO.is_square()));
        assert!(bool::from(Fe::select(Fe::ONE, two, Choice::from(1)).ct_eq(two)));
        assert!(bool::from(Fe::select(Fe::ONE, two, Choice::from(0)).ct_eq(Fe::ONE)));
        assert!(bool::from(two.sub(Fe::ONE).ct_eq(Fe::ONE)));
        assert_eq!(Fe::ONE.neg().to_bytes(), exponent_le(0xec, 0x7f), "-1 = p - 1 canonically");
    }

    /// For many inputs (small values, edge values and hash outputs) the output
    /// is canonical and a valid Curve25519 u-coordinate: u^3 + A u^2 + u is a
    /// square, so the point is on the curve and not on its twist.
    #[test]
    fn outputs_are_on_the_curve() {
        let mut inputs: Vec<[u8; 32]> = Vec::new();
        for i in 0u8..16 {
            let mut b = [0u8; 32];
            b[0] = i;
            inputs.push(b);
        }
        inputs.push([0xff; 32]);
        inputs.push(exponent_le(0xec, 0x7f)); // p - 1
        for i in 0u32..400 {
            let h = crate::primitives::sha512(&[b"elligator test", &i.to_le_bytes()]);
            let mut b = [0u8; 32];
            b.copy_from_slice(&h[..32]);
            inputs.push(b);
        }
        for input in &inputs {
            let out = map_to_curve_elligator2_curve25519(input);
            let x = Fe::from_bytes(&out);
            assert_eq!(x.to_bytes(), out, "output must be canonical");
            assert!(bool::from(curve_rhs(x).is_square()), "input {}", hex::encode(input));
        }
    }
}
