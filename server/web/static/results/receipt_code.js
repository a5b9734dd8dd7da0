// A ballot's short receipt (回执码, XXXXX-XXXXX): how it is typed, shown and derived from the
// ballot's full receipts (server/ballot/receipts.py ballot_receipt_code does the same), so a page
// shown the receipts a code stands for checks that the code names exactly them.
(function () {
  "use strict";
  var ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  var LABEL = "evote-ballot-receipt/1\n";

  // The stored form (10 characters) of what was typed, or null: case, spaces and hyphens are
  // ignored; I/L read as 1 and O as 0 (Crockford).
  function normalize(text) {
    var s = String(text || "").replace(/[\s-]/g, "").toUpperCase().replace(/[IL]/g, "1").replace(/O/g, "0");
    if (s.length !== 10) return null;
    for (var i = 0; i < s.length; i++) if (ALPHABET.indexOf(s[i]) < 0) return null;
    return s;
  }
  function format(code) { return code.slice(0, 5) + "-" + code.slice(5); }

  function hexToBytes(hex) {
    var out = new Uint8Array(hex.length / 2);
    for (var i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
    return out;
  }

  // SHA-256 of the label and the receipts (32 bytes each, sorted); the first 50 bits in base32.
  function derive(receiptsHex) {
    var sorted = receiptsHex.map(function (h) { return h.toLowerCase(); }).sort();
    var label = new TextEncoder().encode(LABEL);
    var data = new Uint8Array(label.length + 32 * sorted.length);
    data.set(label, 0);
    sorted.forEach(function (h, i) { data.set(hexToBytes(h), label.length + 32 * i); });
    return crypto.subtle.digest("SHA-256", data).then(function (digest) {
      var bytes = new Uint8Array(digest), bits = "";
      for (var i = 0; i < 7; i++) bits += ("0000000" + bytes[i].toString(2)).slice(-8);
      var out = "";
      for (var j = 0; j < 10; j++) out += ALPHABET[parseInt(bits.substr(5 * j, 5), 2)];
      return out;
    });
  }

  // Whether a short-code proof answer (GET …/receipts/{code}/proof) shows every receipt of the
  // ballot in the tree whose signed root is `root`, and the code is the one derived from them.
  function ballotProofHolds(code, answer, root) {
    var merkle = window.evoteMerkle;
    var receipts = answer.receipts || [];
    if (!receipts.length) return Promise.resolve(false);
    return derive(receipts.map(function (r) { return r.receipt; })).then(function (derived) {
      if (derived !== normalize(code)) return false;
      return Promise.all(receipts.map(function (r) {
        return merkle.proofReaches(r.receipt, { leaf_index: r.leaf_index, tree_size: answer.tree_size,
                                                proof: r.proof }, root);
      })).then(function (oks) { return oks.every(Boolean); });
    });
  }

  window.evoteReceiptCode = { normalize: normalize, format: format, derive: derive, ballotProofHolds: ballotProofHolds };
})();
