/**
 * Parsing of `WWW-Authenticate` (RFC 9110 §11.6.1, the grammar of RFC 7235
 * §2.1 and §4.1) and recognition of the RFC 9470 step-up challenge:
 *
 *     Bearer error="insufficient_user_authentication",
 *            error_description="A different authentication level is required",
 *            acr_values="urn:stepup:loa:1fa phr", max_age="300"
 *
 * A header may hold several challenges, separated by commas like their
 * parameters; parameter values are tokens or quoted-strings (with `\`
 * escapes); names and schemes are case-insensitive. A malformed header
 * yields the challenges parsed before the fault, never an exception:
 * the header comes from the network.
 */

/** One challenge of a `WWW-Authenticate` header. */
export interface AuthChallenge {
  /** The auth-scheme, lower-cased (`bearer`). */
  scheme: string;
  /** auth-params by lower-cased name (the first of repeated names wins). */
  params: Record<string, string>;
  /** The token68 form (`Basic dXNlcg==`), when the challenge has one. */
  token68?: string;
}

/** An RFC 9470 challenge: the resource needs a stronger or fresher authentication. */
export interface StepUpChallenge {
  /** Acceptable acr values, in the server's order (any one of them will do). */
  acrValues: string[];
  /** The largest acceptable age of the authentication, in seconds. */
  maxAge?: number;
  /** The server's `error_description`, for people. */
  description?: string;
}

/** The RFC 9470 error code. */
export const INSUFFICIENT_USER_AUTHENTICATION = "insufficient_user_authentication";

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN68CHAR = /[-._~+/0-9A-Za-z]/;

/** parseWWWAuthenticate returns every challenge of a header value. */
export function parseWWWAuthenticate(header: string | null | undefined): AuthChallenge[] {
  const out: AuthChallenge[] = [];
  if (!header) return out;
  const s = header;
  let i = 0;
  const ws = () => {
    while (i < s.length && (s[i] === " " || s[i] === "\t")) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < s.length && TCHAR.test(s[i]!)) i++;
    return s.slice(start, i);
  };
  const quoted = (): string | undefined => {
    // at '"'
    let v = "";
    i++;
    while (i < s.length) {
      const c = s[i]!;
      if (c === "\\") {
        if (i + 1 >= s.length) return undefined;
        v += s[i + 1];
        i += 2;
        continue;
      }
      if (c === '"') {
        i++;
        return v;
      }
      v += c;
      i++;
    }
    return undefined; // unterminated
  };
  // skipSeparators moves over OWS and empty list elements (RFC 9110 §5.6.1).
  const skipSeparators = () => {
    for (;;) {
      ws();
      if (s[i] === ",") {
        i++;
        continue;
      }
      return;
    }
  };

  for (;;) {
    skipSeparators();
    if (i >= s.length) return out;
    const scheme = token();
    if (!scheme) return out; // not a token where a scheme must start
    const ch: AuthChallenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(ch);
    const afterScheme = i;
    ws();
    if (i >= s.length) return out;
    if (i === afterScheme && s[i] !== ",") return out; // the scheme must end with a space or a comma
    if (s[i] === ",") continue; // a challenge without parameters

    // token68: 1*tchar68 *"=" then the end or a comma. A parameter cannot
    // look like that: its "=" is followed by a value.
    {
      const start = i;
      while (i < s.length && TOKEN68CHAR.test(s[i]!)) i++;
      while (i < s.length && s[i] === "=") i++;
      const end = i;
      ws();
      if (end > start && (i >= s.length || s[i] === ",")) {
        ch.token68 = s.slice(start, end);
        continue;
      }
      i = start;
    }

    // #auth-param
    for (;;) {
      ws();
      const save = i;
      const name = token();
      if (!name) return out;
      ws();
      if (s[i] !== "=") {
        // Not a parameter: the next challenge's scheme.
        i = save;
        break;
      }
      i++;
      ws();
      let value: string | undefined;
      if (s[i] === '"') value = quoted();
      else {
        value = token();
        if (value === "") value = undefined;
      }
      if (value === undefined) return out;
      ws();
      // A value must end at a comma or the end: "urn:x" unquoted is not a
      // token, and its first part ("urn") must not pass for the value.
      if (i < s.length && s[i] !== ",") return out;
      const key = name.toLowerCase();
      if (!(key in ch.params)) ch.params[key] = value;
      if (i >= s.length) return out;
      skipSeparators();
      if (i >= s.length) return out;
      // After a comma comes another parameter or another challenge:
      // a parameter is `token BWS "="`.
      const look = i;
      token();
      ws();
      const isParam = s[i] === "=" && i > look;
      i = look;
      if (!isParam) break;
    }
  }
}

/**
 * stepUpChallenge finds the RFC 9470 challenge in a header value (or a
 * Response's `WWW-Authenticate`), or returns undefined. `acr_values` is a
 * space-separated list; `max_age` a non-negative integer, as a token or a
 * quoted-string (RFC 9470's examples quote it). An invalid `max_age` is
 * dropped rather than guessed.
 */
export function stepUpChallenge(from: string | null | undefined | { headers: { get(name: string): string | null } }): StepUpChallenge | undefined {
  const header = typeof from === "object" && from !== null ? from.headers.get("WWW-Authenticate") : from;
  for (const ch of parseWWWAuthenticate(header)) {
    if (ch.scheme !== "bearer" || ch.params["error"] !== INSUFFICIENT_USER_AUTHENTICATION) continue;
    const out: StepUpChallenge = {
      acrValues: (ch.params["acr_values"] ?? "").split(/[ \t]+/).filter(Boolean),
    };
    const ma = ch.params["max_age"];
    if (ma !== undefined && /^[0-9]{1,10}$/.test(ma)) out.maxAge = Number(ma);
    if (ch.params["error_description"] !== undefined) out.description = ch.params["error_description"];
    return out;
  }
  return undefined;
}
