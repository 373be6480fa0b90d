/**
 * A fetch that answers RFC 9470 step-up challenges with oidc-client-ts.
 *
 * 1. stepUpFetch(url, init) sends the request with the user's access token.
 * 2. A `401` whose `WWW-Authenticate` is `Bearer
 *    error="insufficient_user_authentication"` starts a redirect to the
 *    provider with the challenge's `acr_values` and `max_age`
 *    (UserManager.signinRedirect), keeping the original request (method,
 *    URL, headers without Authorization, body) in the sign-in state, and
 *    rejects with StepUpRedirectStarted: the page is leaving.
 * 3. On the redirect URI, completeStepUp() finishes the sign-in and, when
 *    the new ID token meets the challenge, sends the original request
 *    again with the new token. When it does not (the user cancelled a
 *    voluntary step-up and stepup honestly issued the level reached), it
 *    does not retry: it reports `unmet` with the assurance reached, so the
 *    app shows the lower level instead of looping through the provider.
 */
import { assurance, ladderFromMetadata, satisfiesAny, type Assurance, type MetadataSource, type UserLike } from "./assurance.js";
import { stepUpChallenge, type StepUpChallenge } from "./challenge.js";

/** The user as oidc-client-ts returns it (the parts the kit reads). */
export interface SignedInUser extends UserLike {
  access_token: string;
  expired?: boolean;
  state?: unknown;
}

/** The arguments of UserManager.signinRedirect the kit sets. */
export interface SigninRedirectArgsLike {
  acr_values?: string;
  max_age?: number;
  state?: unknown;
  extraQueryParams?: Record<string, string | number | boolean>;
  [key: string]: unknown;
}

/** The part of an oidc-client-ts UserManager the kit uses. */
export interface UserManagerLike extends MetadataSource {
  getUser(): Promise<SignedInUser | null>;
  signinRedirect(args?: SigninRedirectArgsLike): Promise<void>;
  signinRedirectCallback(url?: string): Promise<SignedInUser>;
}

/** A request kept across the redirect, to be sent again. */
export interface SavedRequest {
  url: string;
  method: string;
  headers: [string, string][];
  body?: string;
}

/** What the kit keeps in the sign-in state (under STATE_KEY). */
export interface StepUpState {
  request: SavedRequest;
  acrValues: string[];
  maxAge?: number;
}

/** The key of the kit's data in oidc-client-ts's `state`. */
export const STATE_KEY = "stepup";

/** StepUpRedirectStarted: the browser is on its way to the provider. */
export class StepUpRedirectStarted extends Error {
  readonly challenge: StepUpChallenge;
  constructor(challenge: StepUpChallenge) {
    super("step-up: redirecting to the provider for " + (challenge.acrValues.join(" ") || "a fresh authentication"));
    this.name = "StepUpRedirectStarted";
    this.challenge = challenge;
  }
}

export interface StepUpFetchOptions {
  userManager: UserManagerLike;
  /** The fetch to use (default: globalThis.fetch). */
  fetch?: typeof fetch;
  /**
   * onChallenge is asked before the redirect; false keeps the page and
   * returns the 401 to the caller (e.g. after a confirmation dialog the
   * user declined).
   */
  onChallenge?: (challenge: StepUpChallenge, request: SavedRequest) => boolean | Promise<boolean>;
  /** More arguments for signinRedirect (e.g. extraQueryParams, prompt). */
  signinArgs?: SigninRedirectArgsLike;
}

/** createStepUpFetch returns a fetch that answers step-up challenges. */
export function createStepUpFetch(opts: StepUpFetchOptions): (input: RequestInfo | URL, init?: RequestInit) => Promise<Response> {
  const doFetch = opts.fetch ?? ((i: RequestInfo | URL, n?: RequestInit) => globalThis.fetch(i, n));
  return async (input, init) => {
    const req = new Request(input, init);
    const saved = await save(req);
    const user = await opts.userManager.getUser();
    const headers = new Headers(req.headers);
    if (user && user.access_token && !user.expired) headers.set("Authorization", "Bearer " + user.access_token);
    const resp = await doFetch(new Request(req, { headers }));
    if (resp.status !== 401) return resp;
    const challenge = stepUpChallenge(resp);
    if (!challenge) return resp;
    if (opts.onChallenge && !(await opts.onChallenge(challenge, saved))) return resp;
    const state: StepUpState = { request: saved, acrValues: challenge.acrValues };
    if (challenge.maxAge !== undefined) state.maxAge = challenge.maxAge;
    const args: SigninRedirectArgsLike = { ...opts.signinArgs, state: { [STATE_KEY]: state } };
    if (challenge.acrValues.length > 0) args.acr_values = challenge.acrValues.join(" ");
    if (challenge.maxAge !== undefined) args.max_age = challenge.maxAge;
    await opts.userManager.signinRedirect(args);
    throw new StepUpRedirectStarted(challenge);
  };
}

/** The outcome of completeStepUp. */
export type StepUpResult =
  /** A sign-in that was not a step-up of the kit. */
  | { kind: "signed-in"; user: SignedInUser; assurance: Assurance }
  /** The step-up met the challenge; the original request was sent again. */
  | { kind: "retried"; user: SignedInUser; assurance: Assurance; response: Response; request: SavedRequest }
  /** The user came back at a level that does not meet the challenge (e.g. cancelled): not retried. */
  | { kind: "unmet"; user: SignedInUser; assurance: Assurance; request: SavedRequest; acrValues: string[]; maxAge?: number }
  /** The provider answered an error (access_denied, unmet_authentication_requirements for an essential level…). */
  | { kind: "error"; error: string; description?: string; request?: SavedRequest };

export interface CompleteStepUpOptions {
  /** The fetch to retry with (default: globalThis.fetch). */
  fetch?: typeof fetch;
  /** The ladder, lowest first (default: the issuer's acr_values_supported). */
  ladder?: readonly string[];
  /** The callback URL (default: the current location, as oidc-client-ts reads it). */
  url?: string;
}

/** completeStepUp runs on the redirect URI: finish the sign-in, then retry. */
export async function completeStepUp(um: UserManagerLike, opts: CompleteStepUpOptions = {}): Promise<StepUpResult> {
  let user: SignedInUser;
  try {
    user = await um.signinRedirectCallback(opts.url);
  } catch (e) {
    const err = e as { error?: unknown; error_description?: unknown; state?: unknown };
    if (typeof err?.error === "string") {
      const out: StepUpResult = { kind: "error", error: err.error };
      if (typeof err.error_description === "string") out.description = err.error_description;
      const st = kitState(err.state);
      if (st) out.request = st.request;
      return out;
    }
    throw e;
  }
  const ladder = opts.ladder ?? (await ladderFromMetadata(um));
  const a = assurance(user, ladder);
  const st = kitState(user.state);
  if (!st) return { kind: "signed-in", user, assurance: a };
  if (!satisfiesAny(a, st.acrValues, st.maxAge)) {
    const out: StepUpResult = { kind: "unmet", user, assurance: a, request: st.request, acrValues: st.acrValues };
    if (st.maxAge !== undefined) out.maxAge = st.maxAge;
    return out;
  }
  const doFetch = opts.fetch ?? ((i: RequestInfo | URL, n?: RequestInit) => globalThis.fetch(i, n));
  const headers = new Headers(st.request.headers);
  headers.set("Authorization", "Bearer " + user.access_token);
  const init: RequestInit = { method: st.request.method, headers };
  if (st.request.body !== undefined) init.body = st.request.body;
  const response = await doFetch(new Request(st.request.url, init));
  return { kind: "retried", user, assurance: a, response, request: st.request };
}

/** save keeps what is needed to send req again, without its credentials. */
async function save(req: Request): Promise<SavedRequest> {
  const headers: [string, string][] = [];
  req.headers.forEach((v, k) => {
    if (k !== "authorization") headers.push([k, v]);
  });
  const out: SavedRequest = { url: req.url, method: req.method, headers };
  if (req.method !== "GET" && req.method !== "HEAD" && req.body !== null) out.body = await req.clone().text();
  return out;
}

function kitState(state: unknown): StepUpState | undefined {
  if (state === null || typeof state !== "object") return undefined;
  const st = (state as Record<string, unknown>)[STATE_KEY];
  if (st === null || typeof st !== "object") return undefined;
  const s = st as Partial<StepUpState>;
  if (!s.request || typeof s.request.url !== "string" || !Array.isArray(s.acrValues)) return undefined;
  return s as StepUpState;
}
