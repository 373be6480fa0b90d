/**
 * What a signed-in user's authentication is worth: the ID token's `acr`,
 * `amr` and `auth_time`, and whether they meet a requirement, ranked on
 * the issuer's ladder.
 *
 * oidc-client-ts removes `acr`, `amr` and `auth_time` from `user.profile`
 * by default (`filterProtocolClaims: true`), so an app that reads the
 * profile sees no level at all and cannot tell a cancelled step-up from a
 * completed one. assurance() reads the claims from the ID token itself
 * (`user.id_token`), whatever `filterProtocolClaims` says; the profile is
 * the fallback when there is no ID token string.
 *
 * This is the app's view for its own screens: the ID token was checked by
 * oidc-client-ts when it arrived over TLS from the token endpoint, but the
 * decision that protects data belongs to the resource server, which checks
 * the access token's claims itself.
 */

/** The part of an oidc-client-ts `User` that assurance reads. */
export interface UserLike {
  id_token?: string;
  profile?: Record<string, unknown>;
}

/** The claims of one authentication, and a test against a requirement. */
export interface Assurance {
  /** The level reached (`acr`), or undefined when the token has none. */
  acr?: string;
  /** How it was reached (`amr`, RFC 8176). */
  amr: string[];
  /** When the user last authenticated (`auth_time`, seconds since the epoch). */
  authTime?: number;
  /** The acr's rank on the ladder (0 = lowest), or -1 when the ladder does not know it. */
  rank: number;
  /**
   * satisfies says whether this authentication meets `acr` (by rank: a
   * higher level satisfies a lower one; an acr the ladder does not know
   * satisfies nothing and is satisfied by nothing) and, when given,
   * `maxAge` seconds of freshness at `now` (milliseconds, default
   * Date.now()). Either may be omitted.
   */
  satisfies(acr?: string, maxAge?: number, now?: number): boolean;
}

/**
 * assurance reads `user`'s ID token claims and ranks them on `ladder`
 * (the issuer's `acr_values_supported`, lowest first, as stepup lists it:
 * see ladderFromMetadata).
 */
export function assurance(user: UserLike | null | undefined, ladder: readonly string[]): Assurance {
  const c = claims(user);
  const acr = typeof c["acr"] === "string" ? c["acr"] : undefined;
  const amr = Array.isArray(c["amr"]) ? c["amr"].filter((v): v is string => typeof v === "string") : [];
  const authTime = typeof c["auth_time"] === "number" && Number.isFinite(c["auth_time"]) ? c["auth_time"] : undefined;
  const rank = acr === undefined ? -1 : ladder.indexOf(acr);
  return {
    acr,
    amr,
    authTime,
    rank,
    satisfies(required?: string, maxAge?: number, now: number = Date.now()): boolean {
      if (required !== undefined) {
        const need = ladder.indexOf(required);
        if (need < 0 || rank < 0 || rank < need) return false;
      }
      if (maxAge !== undefined) {
        if (authTime === undefined) return false;
        // Whole seconds, as the resource server compares them.
        if (Math.floor(now / 1000) - authTime > maxAge) return false;
      }
      return true;
    },
  };
}

/**
 * satisfiesAny: a challenge lists acceptable acr values; any one of them
 * will do (an empty list asks only for freshness).
 */
export function satisfiesAny(a: Assurance, acrValues: readonly string[], maxAge?: number, now?: number): boolean {
  if (acrValues.length === 0) return a.satisfies(undefined, maxAge, now);
  return acrValues.some((acr) => a.satisfies(acr, maxAge, now));
}

/** The part of an oidc-client-ts `UserManager` that ladderFromMetadata reads. */
export interface MetadataSource {
  metadataService: { getMetadata(): Promise<{ acr_values_supported?: string[] }> };
}

/**
 * ladderFromMetadata reads the ladder from the issuer's discovery document
 * (`acr_values_supported`, which stepup lists lowest first). An issuer
 * without it yields an empty ladder, on which nothing is satisfied: fail
 * closed rather than guess an order.
 */
export async function ladderFromMetadata(um: MetadataSource): Promise<string[]> {
  const md = await um.metadataService.getMetadata();
  return Array.isArray(md.acr_values_supported) ? md.acr_values_supported.filter((v) => typeof v === "string") : [];
}

/** claims: the ID token's payload, else the profile. */
function claims(user: UserLike | null | undefined): Record<string, unknown> {
  if (!user) return {};
  if (typeof user.id_token === "string") {
    const payload = decodeJWTPayload(user.id_token);
    if (payload) return payload;
  }
  return user.profile ?? {};
}

/** decodeJWTPayload returns a compact JWS's payload, or undefined. */
export function decodeJWTPayload(jwt: string): Record<string, unknown> | undefined {
  const parts = jwt.split(".");
  if (parts.length !== 3 || !parts[1]) return undefined;
  try {
    const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    const v: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
