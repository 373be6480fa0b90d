/**
 * @stepup-dev/spa: step-up authentication for single-page apps with stepup
 * and oidc-client-ts. No framework; oidc-client-ts is a peer dependency.
 */
export {
  parseWWWAuthenticate,
  stepUpChallenge,
  INSUFFICIENT_USER_AUTHENTICATION,
  type AuthChallenge,
  type StepUpChallenge,
} from "./challenge.js";
export {
  assurance,
  satisfiesAny,
  ladderFromMetadata,
  decodeJWTPayload,
  type Assurance,
  type UserLike,
  type MetadataSource,
} from "./assurance.js";
export {
  createStepUpFetch,
  completeStepUp,
  StepUpRedirectStarted,
  STATE_KEY,
  type StepUpFetchOptions,
  type CompleteStepUpOptions,
  type StepUpResult,
  type StepUpState,
  type SavedRequest,
  type SignedInUser,
  type SigninRedirectArgsLike,
  type UserManagerLike,
} from "./stepup-fetch.js";
