// stepup: the WebAuthn ceremonies of the hosted pages, and nothing else.
// No framework, no CDN. An element with data-ceremony="get|create",
// data-begin, data-finish and data-csrf holds a data-action="passkey"
// button; the server's JSON answers {"redirect": url} or {"error": text}.
(function () {
  "use strict";

  function toBuffer(s) {
    var b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function toB64URL(buf) {
    var bytes = new Uint8Array(buf);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function decodeOptions(pk) {
    pk.challenge = toBuffer(pk.challenge);
    if (pk.user && typeof pk.user.id === "string") pk.user.id = toBuffer(pk.user.id);
    ["excludeCredentials", "allowCredentials"].forEach(function (k) {
      (pk[k] || []).forEach(function (c) { c.id = toBuffer(c.id); });
    });
    return pk;
  }

  function encodeCredential(cred) {
    var r = cred.response;
    var out = {
      id: cred.id,
      rawId: toB64URL(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: { clientDataJSON: toB64URL(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = toB64URL(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = toB64URL(r.authenticatorData);
      out.response.signature = toB64URL(r.signature);
      if (r.userHandle) out.response.userHandle = toB64URL(r.userHandle);
    }
    return out;
  }

  function post(url, csrf, body) {
    // The page's language, so the server's error texts match it.
    var init = { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf, "Accept-Language": document.documentElement.lang || "en" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(function (resp) {
      return resp.json().then(function (j) { return { ok: resp.ok, json: j }; });
    });
  }

  function alertBox(box) {
    var el = document.querySelector("[data-passkey-error]");
    if (!el) {
      el = document.createElement("p");
      el.className = "alert";
      el.setAttribute("role", "alert");
      el.setAttribute("data-passkey-error", "");
      box.parentNode.insertBefore(el, box);
    }
    return el;
  }

  // msg is a text of the page's language, given by the template as
  // data-msg-<name> on the ceremony's element.
  function msg(box, name, fallback) {
    return box.getAttribute("data-msg-" + name) || fallback;
  }

  function show(box, text) {
    var el = alertBox(box);
    el.textContent = text;
    el.hidden = false;
  }

  function answer(box, res) {
    if (res.json.redirect && (res.ok || !res.json.error)) {
      window.location.assign(res.json.redirect);
      return;
    }
    if (res.json.error) show(box, res.json.error);
    if (res.json.redirect) window.location.assign(res.json.redirect);
  }

  function run(box, conditional, signal) {
    var kind = box.getAttribute("data-ceremony");
    var csrf = box.getAttribute("data-csrf");
    var begin = box.getAttribute("data-begin") + (conditional ? "?mediation=conditional" : "");
    return post(begin, csrf).then(function (res) {
      if (!res.ok || !res.json.publicKey) {
        answer(box, res);
        return null;
      }
      var req = { publicKey: decodeOptions(res.json.publicKey) };
      if (conditional) req.mediation = "conditional";
      if (signal) req.signal = signal;
      var p = kind === "create" ? navigator.credentials.create(req) : navigator.credentials.get(req);
      return p.then(function (cred) {
        if (!cred) return null;
        // A conditional request the button has since replaced must not
        // finish too: one sign-in, one answer.
        if (signal && signal.aborted) return null;
        if (conditional) box.setAttribute("data-passkey-busy", "");
        var finish = box.getAttribute("data-finish");
        var nameInput = box.querySelector("[data-passkey-name-input]");
        if (nameInput && nameInput.value) finish += "?name=" + encodeURIComponent(nameInput.value);
        return post(finish, csrf, encodeCredential(cred)).then(function (r) {
          answer(box, r);
          if (!r.json.redirect) box.removeAttribute("data-passkey-busy");
        });
      });
    }).catch(function (err) {
      if (err && err.name === "AbortError") return;
      if (err && err.name === "NotAllowedError") {
        show(box, msg(box, "cancelled", "The passkey request was cancelled or timed out."));
      } else if (err && err.name === "InvalidStateError") {
        show(box, msg(box, "registered", "This passkey is already registered."));
      } else {
        show(box, msg(box, "failed", "Passkeys could not be used:") + " " + (err && err.message ? err.message : err));
      }
    });
  }

  function setUp(box) {
    var button = box.querySelector('[data-action="passkey"]');
    if (!window.PublicKeyCredential || !navigator.credentials) {
      if (button) button.disabled = true;
      show(box, msg(box, "unsupported", "This browser does not support passkeys."));
      return;
    }
    var pending = null;
    if (box.hasAttribute("data-conditional") && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
        if (!ok) return;
        pending = new AbortController();
        run(box, true, pending.signal);
      });
    }
    if (button) {
      button.addEventListener("click", function () {
        // The autofill (conditional) sign-in is already finishing.
        if (box.hasAttribute("data-passkey-busy")) return;
        if (pending) {
          pending.abort();
          pending = null;
        }
        button.disabled = true;
        run(box, false).then(function () { button.disabled = false; });
      });
    }
    // For automation: the ceremony can be started now.
    box.setAttribute("data-passkey-ready", "");
  }

  function init() {
    var boxes = document.querySelectorAll("[data-ceremony]");
    for (var i = 0; i < boxes.length; i++) setUp(boxes[i]);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
