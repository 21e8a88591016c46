// insitu steward console: WebAuthn glue and live progress. The forms it drives work with the
// passkey only: they carry the assertion the browser makes, and the server verifies it.
"use strict";
(function () {
  function b64u(buf) {
    var s = "", b = new Uint8Array(buf);
    for (var i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function unb64u(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function unhex(h) {
    var out = new Uint8Array(h.length / 2);
    for (var i = 0; i < out.length; i++) out[i] = parseInt(h.substr(2 * i, 2), 16);
    return out;
  }
  function concat(parts) {
    var n = 0, i;
    for (i = 0; i < parts.length; i++) n += parts[i].length;
    var out = new Uint8Array(n), o = 0;
    for (i = 0; i < parts.length; i++) { out.set(parts[i], o); o += parts[i].length; }
    return out;
  }
  function set(form, name, value) { form.querySelector('input[name="' + name + '"]').value = value; }
  function fail(form, err) {
    var p = form.querySelector(".problem");
    if (!p) { p = document.createElement("p"); p.className = "problem"; p.setAttribute("role", "alert"); form.appendChild(p); }
    p.textContent = String(err && err.message ? err.message : err);
  }

  // The challenge of a form: given (sign-in), the manifest hash (approve), or for a rejection the
  // SHA-256 of the rejection context, a zero byte, the manifest hash and the reason.
  function challengeOf(form) {
    if (form.dataset.challenge) return Promise.resolve(unb64u(form.dataset.challenge));
    if (form.dataset.challengeHex) return Promise.resolve(unhex(form.dataset.challengeHex));
    var reason = new TextEncoder().encode(form.querySelector("textarea[name=reason]").value);
    var msg = concat([new TextEncoder().encode("insitu job rejection v1"), new Uint8Array([0]), unhex(form.dataset.rejectHex), reason]);
    return crypto.subtle.digest("SHA-256", msg).then(function (d) { return new Uint8Array(d); });
  }

  function onGet(form, ev) {
    ev.preventDefault();
    if (!form.reportValidity()) return;
    challengeOf(form).then(function (challenge) {
      var opts = { challenge: challenge, userVerification: "required", timeout: 120000 };
      if (form.dataset.rpid) opts.rpId = form.dataset.rpid;
      if (form.dataset.credentials) {
        opts.allowCredentials = form.dataset.credentials.split(",").filter(Boolean).map(function (c) {
          return { type: "public-key", id: unb64u(c) };
        });
      }
      return navigator.credentials.get({ publicKey: opts });
    }).then(function (cred) {
      set(form, "credential_id", b64u(cred.rawId));
      set(form, "authenticator_data", b64u(cred.response.authenticatorData));
      set(form, "client_data_json", b64u(cred.response.clientDataJSON));
      set(form, "signature", b64u(cred.response.signature));
      form.submit();
    }).catch(function (err) { fail(form, err); });
  }

  function onCreate(form, ev) {
    ev.preventDefault();
    var d = form.dataset;
    navigator.credentials.create({ publicKey: {
      challenge: unb64u(d.challenge),
      rp: { id: d.rpid, name: "insitu" },
      user: { id: unb64u(d.user), name: d.name, displayName: d.name },
      pubKeyCredParams: [{ type: "public-key", alg: -7 }],
      authenticatorSelection: { residentKey: "required", userVerification: "required" },
      attestation: "none", timeout: 120000
    } }).then(function (cred) {
      set(form, "credential_id", b64u(cred.rawId));
      set(form, "authenticator_data", b64u(cred.response.getAuthenticatorData()));
      set(form, "client_data_json", b64u(cred.response.clientDataJSON));
      form.submit();
    }).catch(function (err) { fail(form, err); });
  }

  function poll(el) {
    fetch(el.dataset.progressUrl, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (p) {
      el.querySelectorAll("[data-field]").forEach(function (dd) {
        var v = p[dd.dataset.field];
        dd.textContent = v === undefined ? "" : String(v);
      });
      if (p.state === "running" || p.state === "queued" || p.state === "approved" || p.state === "succeeded") {
        setTimeout(function () { poll(el); }, 2000);
      } else if (p.state === "released") {
        location.reload();
      }
    }).catch(function () { setTimeout(function () { poll(el); }, 5000); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll('form[data-webauthn="get"]').forEach(function (f) {
      f.addEventListener("submit", function (ev) { onGet(f, ev); });
    });
    document.querySelectorAll('form[data-webauthn="create"]').forEach(function (f) {
      f.addEventListener("submit", function (ev) { onCreate(f, ev); });
    });
    var pr = document.getElementById("progress");
    if (pr) setTimeout(function () { poll(pr); }, 1000);
  });
})();
