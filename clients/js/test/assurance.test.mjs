// assurance() reads the ID token even when oidc-client-ts filtered the
// protocol claims out of the profile, and ranks acr on the ladder.
import { test } from "node:test";
import assert from "node:assert/strict";
import { assurance, satisfiesAny, ladderFromMetadata, decodeJWTPayload } from "../dist/index.js";

const ONE = "urn:stepup:loa:1fa";
const MFA = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
const ladder = [ONE, MFA, "phr", "phrh"];

const b64url = (s) => Buffer.from(s).toString("base64url");
const idToken = (claims) => b64url('{"alg":"ES256"}') + "." + b64url(JSON.stringify(claims)) + ".sig";

test("claims come from the ID token when filterProtocolClaims stripped the profile", () => {
  // What oidc-client-ts's default leaves: no acr, amr, auth_time in profile.
  const user = { id_token: idToken({ sub: "u", acr: MFA, amr: ["pwd", "otp", "mfa"], auth_time: 1000 }), profile: { sub: "u" } };
  const a = assurance(user, ladder);
  assert.equal(a.acr, MFA);
  assert.deepEqual(a.amr, ["pwd", "otp", "mfa"]);
  assert.equal(a.authTime, 1000);
  assert.equal(a.rank, 1);
});

test("the profile is the fallback without an ID token string", () => {
  const a = assurance({ profile: { acr: ONE, amr: ["pwd"], auth_time: 5 } }, ladder);
  assert.equal(a.acr, ONE);
  assert.equal(a.authTime, 5);
});

test("satisfies ranks on the ladder: higher meets lower, lower never meets higher", () => {
  const phr = assurance({ id_token: idToken({ acr: "phr", auth_time: 100 }) }, ladder);
  assert.ok(phr.satisfies(ONE));
  assert.ok(phr.satisfies(MFA));
  assert.ok(phr.satisfies("phr"));
  assert.ok(!phr.satisfies("phrh"));
  const one = assurance({ id_token: idToken({ acr: ONE, auth_time: 100 }) }, ladder);
  assert.ok(!one.satisfies(MFA), "a cancelled step-up stays visibly lower");
});

test("unknown acr values satisfy nothing and are satisfied by nothing", () => {
  const odd = assurance({ id_token: idToken({ acr: "urn:other", auth_time: 1 }) }, ladder);
  assert.equal(odd.rank, -1);
  assert.ok(!odd.satisfies(ONE));
  const top = assurance({ id_token: idToken({ acr: "phrh", auth_time: 1 }) }, ladder);
  assert.ok(!top.satisfies("urn:other"));
  assert.ok(!assurance({ id_token: idToken({ acr: MFA }) }, []).satisfies(ONE), "an empty ladder fails closed");
});

test("max_age is checked against auth_time in whole seconds", () => {
  const a = assurance({ id_token: idToken({ acr: MFA, auth_time: 1000 }) }, ladder);
  assert.ok(a.satisfies(MFA, 300, 1300 * 1000 + 999));
  assert.ok(!a.satisfies(MFA, 300, 1301 * 1000));
  assert.ok(a.satisfies(undefined, 0, 1000 * 1000));
  assert.ok(!assurance({ id_token: idToken({ acr: MFA }) }, ladder).satisfies(MFA, 300), "no auth_time: not fresh");
});

test("no user, broken tokens, wrong claim types: nothing is satisfied", () => {
  for (const u of [null, undefined, { id_token: "not.a.jwt!" }, { id_token: idToken({ acr: 7, amr: "pwd", auth_time: "1" }) }]) {
    const a = assurance(u, ladder);
    assert.equal(a.acr, undefined);
    assert.deepEqual(a.amr, []);
    assert.equal(a.authTime, undefined);
    assert.ok(!a.satisfies(ONE));
  }
  assert.equal(decodeJWTPayload("a.b"), undefined);
  assert.equal(decodeJWTPayload("a." + b64url("[1]") + ".c"), undefined);
});

test("satisfiesAny: any listed value will do; an empty list asks only freshness", () => {
  const a = assurance({ id_token: idToken({ acr: MFA, auth_time: 10 }) }, ladder);
  assert.ok(satisfiesAny(a, ["phr", MFA]));
  assert.ok(!satisfiesAny(a, ["phr", "phrh"]));
  assert.ok(satisfiesAny(a, [], 5, 15 * 1000));
  assert.ok(!satisfiesAny(a, [], 5, 16 * 1000));
});

test("ladderFromMetadata reads acr_values_supported in the issuer's order", async () => {
  assert.deepEqual(await ladderFromMetadata({ metadataService: { getMetadata: async () => ({ acr_values_supported: ladder }) } }), ladder);
  assert.deepEqual(await ladderFromMetadata({ metadataService: { getMetadata: async () => ({}) } }), []);
});
