// The single-page app of the end-to-end test (cmd/stepup-demo's
// TestSPAKitBrowser): oidc-client-ts with its defaults
// (filterProtocolClaims: true, so user.profile has no acr) and the kit.
// The page that serves it sets window.STEPUP_E2E = {issuer, clientId, bank}.
import { UserManager, WebStorageStateStore } from "oidc-client-ts";
import { assurance, completeStepUp, createStepUpFetch, ladderFromMetadata, StepUpRedirectStarted } from "../src/index.js";

declare global {
  interface Window {
    STEPUP_E2E: { issuer: string; clientId: string; bank: string };
  }
}

const cfg = window.STEPUP_E2E;
const um = new UserManager({
  authority: cfg.issuer,
  client_id: cfg.clientId,
  redirect_uri: location.origin + "/callback",
  response_type: "code",
  scope: "openid",
  loadUserInfo: false,
  userStore: new WebStorageStateStore({ store: window.sessionStorage }),
});
const api = createStepUpFetch({
  userManager: um,
  onChallenge: (ch) => {
    sessionStorage.setItem("e2e.challenge", JSON.stringify(ch));
    return true;
  },
});

const $ = (id: string) => document.getElementById(id)!;

async function show(): Promise<void> {
  const user = await um.getUser();
  const a = assurance(user, await ladderFromMetadata(um));
  $("acr").textContent = a.acr ?? "";
  $("amr").textContent = a.amr.join(" ");
  $("profile-acr").textContent = String(user?.profile?.["acr"] ?? "(filtered)");
  $("challenge").textContent = sessionStorage.getItem("e2e.challenge") ?? "";
}

async function call(method: string, path: string, body?: string): Promise<void> {
  try {
    const init: RequestInit = { method };
    if (body !== undefined) init.body = body;
    if (body !== undefined) init.headers = { "Content-Type": "application/json" };
    const r = await api(cfg.bank + path, init);
    $("result").textContent = r.status + " " + (await r.text());
  } catch (e) {
    $("result").textContent = e instanceof StepUpRedirectStarted ? "stepping up" : "error " + String(e);
  }
}

async function main(): Promise<void> {
  if (location.pathname === "/callback") {
    const res = await completeStepUp(um);
    history.replaceState(null, "", "/");
    $("outcome").textContent = res.kind;
    if (res.kind === "retried") $("result").textContent = res.response.status + " " + (await res.response.text());
    if (res.kind === "unmet") $("result").textContent = "step-up not completed; level " + (res.assurance.acr ?? "none");
    if (res.kind === "error") $("result").textContent = "error " + res.error;
  }
  await show();
  $("signin").onclick = () => void um.signinRedirect();
  $("balance").onclick = () => void call("GET", "/api/balance");
  $("withdraw").onclick = () => void call("POST", "/api/withdraw", '{"amount":10}');
}

main()
  .catch((e) => {
    $("result").textContent = "error " + String(e);
  })
  .finally(() => {
    document.body.dataset["ready"] = "true";
  });
