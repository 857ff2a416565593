// The Warden console's only script: CSRF on htmx requests, live updates from the
// server-sent event stream, approval countdowns, and signing approvals in the browser
// with the approver's own Ed25519 key (WebCrypto; the key never leaves the page).
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf"]');
  return meta ? meta.content : "";
}

document.addEventListener("htmx:configRequest", (e) => {
  e.detail.headers["X-CSRF-Token"] = csrfToken();
});

// -- live updates ------------------------------------------------------------------------
function startLive() {
  if (!document.body.dataset.live || !window.EventSource) return;
  const status = document.getElementById("live-status");
  const source = new EventSource("/api/stream");
  source.addEventListener("open", () => {
    if (status) { status.textContent = "● live"; status.classList.add("on"); }
  });
  source.addEventListener("error", () => {
    if (status) { status.textContent = "○ reconnecting"; status.classList.remove("on"); }
  });
  source.addEventListener("warden", (message) => {
    if (!window.htmx) return;
    let stream = "";
    try { stream = JSON.parse(message.data).stream || ""; } catch (err) { stream = ""; }
    // Pages reload their parts only for what they show: incidents and controls.
    if (stream.startsWith("incident-") || stream === "control") {
      window.htmx.trigger(document.body, "warden-event");
    }
  });
}

// -- countdowns ----------------------------------------------------------------------------
function tick() {
  for (const el of document.querySelectorAll("[data-expires]")) {
    const left = Math.round((Date.parse(el.dataset.expires) - Date.now()) / 1000);
    if (Number.isNaN(left)) continue;
    el.textContent = left > 0
      ? `closes in ${Math.floor(left / 60)}m ${String(left % 60).padStart(2, "0")}s`
      : "approval window closed";
    el.classList.toggle("late", left <= 60);
  }
}

// -- keys ----------------------------------------------------------------------------------
const PKCS8_ED25519 = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65,
  0x70, 0x04, 0x22, 0x04, 0x20];
let signingKey = null;

function fromBase64(text) {
  return Uint8Array.from(atob(text.replace(/\s+/g, "")), (c) => c.charCodeAt(0));
}

function toBase64(bytes) {
  let text = "";
  for (const b of new Uint8Array(bytes)) text += String.fromCharCode(b);
  return btoa(text);
}

// The 32-byte seed of an unencrypted OpenSSH ed25519 private key.
function opensshSeed(raw) {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const magic = "openssh-key-v1\0";
  if (new TextDecoder().decode(raw.slice(0, magic.length)) !== magic) {
    throw new Error("not an OpenSSH private key");
  }
  let at = magic.length;
  const text = () => {
    const n = view.getUint32(at); at += 4;
    const out = raw.slice(at, at + n); at += n;
    return out;
  };
  const cipher = new TextDecoder().decode(text());
  if (cipher !== "none") throw new Error("the key has a passphrase: use an unencrypted copy or a PEM key");
  text(); text(); // kdf name and options
  at += 4; // number of keys
  text(); // public key
  const secret = text();
  const inner = new DataView(secret.buffer, secret.byteOffset, secret.byteLength);
  let i = 8; // two check integers
  const part = () => {
    const n = inner.getUint32(i); i += 4;
    const out = secret.slice(i, i + n); i += n;
    return out;
  };
  const type = new TextDecoder().decode(part());
  if (type !== "ssh-ed25519") throw new Error(`only Ed25519 keys are accepted, not ${type}`);
  part(); // public half
  return part().slice(0, 32);
}

async function readKey(file) {
  const text = await file.text();
  let der;
  if (text.includes("OPENSSH PRIVATE KEY")) {
    const body = text.replace(/-----[^-]+-----/g, "");
    der = new Uint8Array([...PKCS8_ED25519, ...opensshSeed(fromBase64(body))]);
  } else if (text.includes("BEGIN PRIVATE KEY")) {
    der = fromBase64(text.replace(/-----[^-]+-----/g, ""));
  } else {
    throw new Error("give an OpenSSH or PEM (PKCS#8) Ed25519 private key");
  }
  return crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, false, ["sign"]);
}

function say(id, text, bad) {
  const el = document.getElementById(id);
  if (!el) return;
  el.textContent = text;
  el.classList.toggle("error", Boolean(bad));
}

document.addEventListener("change", async (e) => {
  if (e.target.id !== "key-file" || !e.target.files.length) return;
  try {
    signingKey = await readKey(e.target.files[0]);
    say("key-status", `key loaded: ${e.target.files[0].name}`);
  } catch (err) {
    signingKey = null;
    say("key-status", `cannot use that key: ${err.message || err}`, true);
  }
});

async function postJson(url, body) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json", "x-csrf-token": csrfToken() },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = answer.error || (answer.detail && JSON.stringify(answer.detail)) || response.statusText;
    throw new Error(answer.fix ? `${detail} (${answer.fix})` : detail);
  }
  return answer;
}

async function decide(form, decision) {
  const incident = form.dataset.incident;
  const reason = form.elements.reason.value.trim();
  if (!signingKey) {
    say("decide-status", "load your private key first (above): approvals are signed", true);
    return;
  }
  say("decide-status", `${decision === "approve" ? "approving" : "rejecting"} ${incident.slice(0, 12)}…`);
  try {
    const prepared = await postJson(`/api/approvals/${incident}/prepare`, { decision, reason });
    if (prepared.step_hash !== form.dataset.stepHash) {
      throw new Error("the step awaiting approval changed; look at it again");
    }
    const signature = await crypto.subtle.sign(
      { name: "Ed25519" }, signingKey, new TextEncoder().encode(prepared.payload));
    const done = await postJson(`/api/approvals/${incident}/${decision}`, {
      step_hash: prepared.step_hash,
      signed_at: prepared.signed_at,
      nonce: prepared.nonce,
      signature: toBase64(signature),
      reason,
    });
    const pending = done.pending;
    const tally = pending ? ` (${pending.counted.length} of ${pending.needed})` : "";
    say("decide-status", `${decision === "approve" ? "approved" : "rejected"} step ${prepared.step_hash.slice(0, 12)} of ${incident.slice(0, 12)}${tally}`);
  } catch (err) {
    say("decide-status", `${decision} refused: ${err.message || err}`, true);
  }
  if (window.htmx) window.htmx.trigger(document.body, "warden-event");
}

document.addEventListener("submit", (e) => {
  const form = e.target;
  if (!form.classList.contains("decide")) return;
  e.preventDefault();
  const decision = e.submitter && e.submitter.value === "reject" ? "reject" : "approve";
  decide(form, decision);
});

// A reason being typed survives the inbox reloading around it.
let keptReasons = {};
document.addEventListener("htmx:beforeSwap", (e) => {
  keptReasons = {};
  for (const form of e.detail.target.querySelectorAll("form.decide")) {
    keptReasons[form.dataset.stepHash] = form.elements.reason.value;
  }
});
document.addEventListener("htmx:afterSwap", (e) => {
  for (const form of e.detail.target.querySelectorAll("form.decide")) {
    const kept = keptReasons[form.dataset.stepHash];
    if (kept) form.elements.reason.value = kept;
  }
  tick();
});

document.addEventListener("DOMContentLoaded", () => {
  startLive();
  tick();
  setInterval(tick, 1000);
});
