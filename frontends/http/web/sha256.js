/*
 * sha256.js - a streaming SHA-256 (FIPS 180-4) for the web client.
 *
 * WebCrypto's digest() takes the whole input at once, so a file larger than
 * memory could not be hashed with it; this one takes the file piece by
 * piece (update() any number of times, then hex()). Checked against known
 * answers by tests/browser (and by selfTest() below at load).
 */
"use strict";

(function () {
	const K = new Uint32Array([
		0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
		0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
		0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
		0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
		0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
		0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
		0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
		0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
	]);

	class Sha256 {
		constructor() {
			this.h = new Int32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
				0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
			this.w = new Int32Array(64);
			this.buf = new Uint8Array(64); /* a partial block */
			this.nbuf = 0;
			this.len = 0; /* bytes so far */
		}

		/* Compress the 64-byte blocks of d from off: returns the bytes used. */
		blocks(d, off, end) {
			const w = this.w, h = this.h;
			const dv = new DataView(d.buffer, d.byteOffset, d.byteLength);
			let h0 = h[0], h1 = h[1], h2 = h[2], h3 = h[3], h4 = h[4], h5 = h[5], h6 = h[6], h7 = h[7];
			let p = off;
			while (end - p >= 64) {
				for (let i = 0; i < 16; i++, p += 4)
					w[i] = dv.getInt32(p);
				for (let i = 16; i < 64; i++) {
					const a = w[i - 15], b = w[i - 2];
					const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
					const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
					w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
				}
				let a = h0, b = h1, c = h2, e = h4, f = h5, g = h6, dd = h3, hh = h7;
				for (let i = 0; i < 64; i++) {
					const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
					const ch = (e & f) ^ (~e & g);
					const t1 = (hh + S1 + ch + K[i] + w[i]) | 0;
					const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
					const maj = (a & b) ^ (a & c) ^ (b & c);
					const t2 = (S0 + maj) | 0;
					hh = g; g = f; f = e; e = (dd + t1) | 0;
					dd = c; c = b; b = a; a = (t1 + t2) | 0;
				}
				h0 = (h0 + a) | 0; h1 = (h1 + b) | 0; h2 = (h2 + c) | 0; h3 = (h3 + dd) | 0;
				h4 = (h4 + e) | 0; h5 = (h5 + f) | 0; h6 = (h6 + g) | 0; h7 = (h7 + hh) | 0;
			}
			h[0] = h0; h[1] = h1; h[2] = h2; h[3] = h3; h[4] = h4; h[5] = h5; h[6] = h6; h[7] = h7;
			return p - off;
		}

		/* Feed bytes (a Uint8Array or an ArrayBuffer). */
		update(data) {
			const d = data instanceof Uint8Array ? data : new Uint8Array(data);
			let off = 0;
			this.len += d.length;
			if (this.nbuf) {
				const take = Math.min(64 - this.nbuf, d.length);
				this.buf.set(d.subarray(0, take), this.nbuf);
				this.nbuf += take;
				off = take;
				if (this.nbuf < 64)
					return this;
				this.blocks(this.buf, 0, 64);
				this.nbuf = 0;
			}
			off += this.blocks(d, off, d.length);
			if (off < d.length) {
				this.buf.set(d.subarray(off), 0);
				this.nbuf = d.length - off;
			}
			return this;
		}

		/* The digest as 64 lowercase hex digits; the object is spent. */
		hex() {
			const bits = this.len * 8;
			const pad = new Uint8Array(((this.nbuf < 56) ? 56 : 120) - this.nbuf + 8);
			pad[0] = 0x80;
			const n = pad.length;
			const hi = Math.floor(bits / 0x100000000), lo = bits >>> 0;
			pad[n - 8] = hi >>> 24; pad[n - 7] = hi >>> 16; pad[n - 6] = hi >>> 8; pad[n - 5] = hi;
			pad[n - 4] = lo >>> 24; pad[n - 3] = lo >>> 16; pad[n - 2] = lo >>> 8; pad[n - 1] = lo;
			this.update(pad);
			let s = "";
			for (let i = 0; i < 8; i++)
				s += (this.h[i] >>> 0).toString(16).padStart(8, "0");
			return s;
		}
	}

	function utf8(s) {
		return new TextEncoder().encode(s);
	}

	/* Known answers (FIPS 180-2 examples); false if the implementation is broken. */
	function selfTest() {
		const cases = [
			["", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
			["abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"],
			["abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
				"248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"],
		];
		for (const [m, want] of cases)
			if (new Sha256().update(utf8(m)).hex() !== want)
				return false;
		/* the same bytes fed in odd pieces */
		const big = new Uint8Array(1000);
		for (let i = 0; i < big.length; i++)
			big[i] = i & 0xff;
		const whole = new Sha256().update(big).hex();
		const parts = new Sha256();
		for (let i = 0; i < big.length; i += 37)
			parts.update(big.subarray(i, Math.min(i + 37, big.length)));
		return parts.hex() === whole;
	}

	window.Sha256 = Sha256;
	window.sha256SelfTest = selfTest;
})();
