// The step-up loop with a fake UserManager (it records signinRedirect and
// hands the saved state back on the callback) and a fake resource server.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createStepUpFetch, completeStepUp, StepUpRedirectStarted, STATE_KEY } from "../dist/index.js";

const ONE = "urn:stepup:loa:1fa";
const MFA = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
const ladder = [ONE, MFA, "phr", "phrh"];
const b64url = (s) => Buffer.from(s).toString("base64url");
const idToken = (claims) => b64url('{"alg":"ES256"}') + "." + b64url(JSON.stringify(claims)) + ".sig";
const now = () => Math.floor(Date.now() / 1000);

function fakeUserManager(user) {
  const um = {
    user,
    redirects: [],
    next: null, // what the callback returns: a user, or an error to throw
    async getUser() { return um.user; },
    async signinRedirect(args) { um.redirects.push(args); },
    async signinRedirectCallback() {
      if (um.next instanceof Error) throw um.next;
      um.user = um.next;
      return um.next;
    },
    metadataService: { getMetadata: async () => ({ acr_values_supported: ladder }) },
  };
  return um;
}

// bank: /withdraw needs MFA within 300 s, judged by the bearer token's name.
function fakeBank() {
  const calls = [];
  const fetch = async (req) => {
    const body = req.method === "POST" ? await req.text() : undefined;
    calls.push({ method: req.method, url: req.url, auth: req.headers.get("Authorization"), type: req.headers.get("Content-Type"), body });
    if (req.headers.get("Authorization") === "Bearer mfa-token") return Response.json({ ok: true });
    return new Response(null, { status: 401, headers: { "WWW-Authenticate": `Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="${MFA}", max_age="300"` } });
  };
  return { fetch, calls };
}

test("a 401 step-up challenge starts signinRedirect with acr_values, max_age and the request in state", async () => {
  const um = fakeUserManager({ access_token: "1fa-token", id_token: idToken({ acr: ONE, auth_time: now() }) });
  const bank = fakeBank();
  const f = createStepUpFetch({ userManager: um, fetch: bank.fetch, signinArgs: { extraQueryParams: { ui_locales: "en" } } });
  await assert.rejects(
    f("https://bank.example/api/withdraw", { method: "POST", headers: { "Content-Type": "application/json", Authorization: "Bearer stale" }, body: '{"amount":10}' }),
    (e) => e instanceof StepUpRedirectStarted && e.challenge.maxAge === 300,
  );
  assert.equal(bank.calls[0].auth, "Bearer 1fa-token", "the user's token replaces the caller's");
  assert.equal(um.redirects.length, 1);
  const args = um.redirects[0];
  assert.equal(args.acr_values, MFA);
  assert.equal(args.max_age, 300);
  assert.deepEqual(args.extraQueryParams, { ui_locales: "en" });
  const saved = args.state[STATE_KEY];
  assert.equal(saved.request.method, "POST");
  assert.equal(saved.request.url, "https://bank.example/api/withdraw");
  assert.equal(saved.request.body, '{"amount":10}');
  assert.ok(!saved.request.headers.some(([k]) => k === "authorization"), "no credential is kept in the state store");
  assert.deepEqual(saved.acrValues, [MFA]);
});

test("completeStepUp retries the original request with the new token when the level is met", async () => {
  const um = fakeUserManager({ access_token: "1fa-token", id_token: idToken({ acr: ONE, auth_time: now() }) });
  const bank = fakeBank();
  const f = createStepUpFetch({ userManager: um, fetch: bank.fetch });
  await assert.rejects(f("https://bank.example/api/withdraw", { method: "POST", headers: { "Content-Type": "application/json" }, body: '{"amount":10}' }));
  um.next = { access_token: "mfa-token", id_token: idToken({ acr: MFA, amr: ["pwd", "otp", "mfa"], auth_time: now() }), profile: {}, state: um.redirects[0].state };
  const res = await completeStepUp(um, { fetch: bank.fetch });
  assert.equal(res.kind, "retried");
  assert.equal(res.response.status, 200);
  assert.equal(res.assurance.acr, MFA);
  const retry = bank.calls.at(-1);
  assert.deepEqual([retry.method, retry.auth, retry.type, retry.body], ["POST", "Bearer mfa-token", "application/json", '{"amount":10}']);
});

test("a cancelled step-up comes back lower: reported unmet, not retried", async () => {
  const um = fakeUserManager({ access_token: "1fa-token", id_token: idToken({ acr: ONE, auth_time: now() }) });
  const bank = fakeBank();
  const f = createStepUpFetch({ userManager: um, fetch: bank.fetch });
  await assert.rejects(f("https://bank.example/api/withdraw", { method: "POST", body: "{}" }));
  const calls = bank.calls.length;
  um.next = { access_token: "1fa-token-2", id_token: idToken({ acr: ONE, amr: ["pwd"], auth_time: now() }), profile: {}, state: um.redirects[0].state };
  const res = await completeStepUp(um, { fetch: bank.fetch });
  assert.equal(res.kind, "unmet");
  assert.equal(res.assurance.acr, ONE);
  assert.deepEqual(res.acrValues, [MFA]);
  assert.equal(bank.calls.length, calls, "nothing was sent again");
});

test("an old authentication does not meet max_age even at the right level", async () => {
  const um = fakeUserManager(null);
  um.next = { access_token: "x", id_token: idToken({ acr: MFA, auth_time: now() - 301 }), state: { [STATE_KEY]: { request: { url: "https://bank.example/x", method: "GET", headers: [] }, acrValues: [MFA], maxAge: 300 } } };
  const res = await completeStepUp(um, { fetch: async () => assert.fail("must not retry"), ladder });
  assert.equal(res.kind, "unmet");
});

test("provider errors (an essential level refused, access_denied) are reported with the request", async () => {
  const um = fakeUserManager(null);
  const err = Object.assign(new Error("unmet"), { error: "unmet_authentication_requirements", error_description: "no", state: { [STATE_KEY]: { request: { url: "u", method: "POST", headers: [] }, acrValues: [MFA] } } });
  um.next = err;
  const res = await completeStepUp(um, { ladder });
  assert.deepEqual([res.kind, res.error, res.description, res.request.url], ["error", "unmet_authentication_requirements", "no", "u"]);
  um.next = new TypeError("network down");
  await assert.rejects(completeStepUp(um, { ladder }), TypeError);
});

test("a plain sign-in callback is not a step-up", async () => {
  const um = fakeUserManager(null);
  um.next = { access_token: "t", id_token: idToken({ acr: ONE, auth_time: now() }), state: undefined };
  const res = await completeStepUp(um);
  assert.equal(res.kind, "signed-in");
  assert.equal(res.assurance.acr, ONE);
});

test("other answers pass through: 200, a 401 invalid_token, a declined onChallenge", async () => {
  const um = fakeUserManager({ access_token: "mfa-token", id_token: idToken({ acr: MFA }) });
  const f = createStepUpFetch({ userManager: um, fetch: fakeBank().fetch });
  assert.equal((await f("https://bank.example/api/withdraw", { method: "POST", body: "{}" })).status, 200);
  const invalid = createStepUpFetch({ userManager: um, fetch: async () => new Response(null, { status: 401, headers: { "WWW-Authenticate": 'Bearer error="invalid_token"' } }) });
  assert.equal((await invalid("https://bank.example/")).status, 401);
  const um2 = fakeUserManager({ access_token: "1fa-token" });
  let asked;
  const declined = createStepUpFetch({ userManager: um2, fetch: fakeBank().fetch, onChallenge: (ch) => { asked = ch; return false; } });
  assert.equal((await declined("https://bank.example/api/withdraw", { method: "POST", body: "{}" })).status, 401);
  assert.deepEqual(asked.acrValues, [MFA]);
  assert.equal(um2.redirects.length, 0);
});

test("no user: the request goes out without a token; an expired token is not sent", async () => {
  const seen = [];
  const fetch = async (req) => { seen.push(req.headers.get("Authorization")); return Response.json({}); };
  await createStepUpFetch({ userManager: fakeUserManager(null), fetch })("https://bank.example/");
  await createStepUpFetch({ userManager: fakeUserManager({ access_token: "old", expired: true }), fetch })("https://bank.example/");
  assert.deepEqual(seen, [null, null]);
});
