// RFC 9470 challenges as resource servers write them, and the RFC 7235
// grammar around them: several challenges, quoted-strings with escapes,
// tokens, token68, odd spacing and case, and headers that are not step-up.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseWWWAuthenticate, stepUpChallenge } from "../dist/index.js";

test("RFC 9470 §3 example 1: acr_values, quoted", () => {
  const h = 'Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="myACR"';
  assert.deepEqual(stepUpChallenge(h), { acrValues: ["myACR"], description: "A different authentication level is required" });
});

test("RFC 9470 §3 example 2: max_age quoted", () => {
  const h = 'Bearer error="insufficient_user_authentication", error_description="More recent authentication is required", max_age="5"';
  assert.deepEqual(stepUpChallenge(h), { acrValues: [], maxAge: 5, description: "More recent authentication is required" });
});

test("stepup's rs challenge: several acr values and max_age", () => {
  const h = 'Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="http://schemas.openid.net/pape/policies/2007/06/multi-factor phr", max_age="300"';
  const ch = stepUpChallenge(h);
  assert.deepEqual(ch.acrValues, ["http://schemas.openid.net/pape/policies/2007/06/multi-factor", "phr"]);
  assert.equal(ch.maxAge, 300);
});

test("token values, case-insensitive scheme and names, spaces around =", () => {
  const ch = stepUpChallenge("bearer ERROR = insufficient_user_authentication ,Max_Age=60,acr_values=phr");
  assert.deepEqual(ch, { acrValues: ["phr"], maxAge: 60 });
});

test("an unquoted value that is not a token is not cut down to its first part", () => {
  // ":" is not a tchar: acr_values=urn:stepup:loa:1fa is malformed, and
  // must not become the acr "urn".
  const ch = stepUpChallenge("Bearer error=insufficient_user_authentication, max_age=60, acr_values=urn:stepup:loa:1fa");
  assert.deepEqual(ch, { acrValues: [], maxAge: 60 });
});

test("quoted-pair escapes and commas inside quotes", () => {
  const cs = parseWWWAuthenticate('Bearer realm="a \\"b\\", c", error="insufficient_user_authentication"');
  assert.equal(cs.length, 1);
  assert.equal(cs[0].params.realm, 'a "b", c');
  assert.equal(cs[0].params.error, "insufficient_user_authentication");
});

test("several challenges: the Bearer step-up one is found after another scheme", () => {
  const h = 'Basic realm="x", DPoP algs="ES256 PS256", Bearer error="insufficient_user_authentication", acr_values="phr"';
  const cs = parseWWWAuthenticate(h);
  assert.deepEqual(cs.map((c) => c.scheme), ["basic", "dpop", "bearer"]);
  assert.deepEqual(cs[1].params, { algs: "ES256 PS256" });
  assert.deepEqual(stepUpChallenge(h).acrValues, ["phr"]);
});

test("token68 and bare schemes", () => {
  const cs = parseWWWAuthenticate("Negotiate, Basic dXNlcjpwYXNz==, Bearer");
  assert.deepEqual(cs.map((c) => [c.scheme, c.token68]), [["negotiate", undefined], ["basic", "dXNlcjpwYXNz=="], ["bearer", undefined]]);
});

test("not step-up: other errors, other schemes, nothing", () => {
  assert.equal(stepUpChallenge('Bearer error="invalid_token"'), undefined);
  assert.equal(stepUpChallenge('Basic error="insufficient_user_authentication"'), undefined);
  assert.equal(stepUpChallenge('Bearer realm="api"'), undefined);
  assert.equal(stepUpChallenge(""), undefined);
  assert.equal(stepUpChallenge(null), undefined);
});

test("max_age that is not a non-negative integer is dropped, not guessed", () => {
  for (const v of ['"-1"', '"1e3"', '"5 "', '"abc"', '""', '"12345678901"']) {
    const ch = stepUpChallenge(`Bearer error="insufficient_user_authentication", max_age=${v}`);
    assert.ok(ch, v);
    assert.equal(ch.maxAge, undefined, v);
  }
});

test("malformed headers end the parse without throwing and keep what was read", () => {
  assert.deepEqual(parseWWWAuthenticate('Bearer error="unterminated').map((c) => c.scheme), ["bearer"]);
  // A parameter followed by junk is not trusted; the ones before it are.
  assert.deepEqual(parseWWWAuthenticate('Bearer realm="r", error="insufficient_user_authentication" junk').at(0).params, { realm: "r" });
  assert.deepEqual(parseWWWAuthenticate("=oops"), []);
  assert.deepEqual(parseWWWAuthenticate('"quoted"'), []);
  // A repeated parameter: the first wins (a later copy cannot override it).
  assert.deepEqual(stepUpChallenge('Bearer error="insufficient_user_authentication", acr_values="a", acr_values="b"').acrValues, ["a"]);
});

test("reads a Response's header", () => {
  const r = new Response(null, { status: 401, headers: { "WWW-Authenticate": 'Bearer error="insufficient_user_authentication", acr_values="phr"' } });
  assert.deepEqual(stepUpChallenge(r).acrValues, ["phr"]);
});
